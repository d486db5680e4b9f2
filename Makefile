# synthtune: `make demo` runs the sample problem set offline; `make test` runs the test suite;
# `make bench` measures the Generate stage against the emulator and the Assemble step's memory and
# throughput on synthetic runs (minutes; not part of `make test`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench lint check clean

$(STAMP): pyproject.toml layers/core/requirements.txt cli/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "synthtune needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/synthtune run events/problem-set.sample.jsonl

test: install
	$(BIN)/python -m pytest -n auto

bench: install
	$(BIN)/python benchmarks/generation.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/assembly.py $(ASSEMBLY_BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check: lint test

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache .hypothesis
