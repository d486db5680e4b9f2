# synthtune: `make demo` runs the sample problem set offline; `make test` runs the test suite;
# `make bench` measures the Generate stage against the emulator, the Assemble step's memory and
# throughput on synthetic runs, and whole `synthtune run`s (minutes; not part of `make test`).
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
	$(BIN)/python benchmarks/local_run.py $(LOCAL_RUN_BENCH_ARGS)

# checkov pins boto3==1.35.49 and packaging<24, which the layer (boto3>=1.40) and pytest 9 cannot share with
# it, so it gets a virtualenv of its own. Pinned: a new release brings new checks, added here on purpose.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.checkov-$(CHECKOV_VERSION)

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet "checkov==$(CHECKOV_VERSION)"
	@touch $(CHECKOV_STAMP)

# checkov scans template.yaml offline (no download, no update check, no API key); what it skips and why
# is in .checkov.yaml and beside each resource.
lint: install $(CHECKOV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml

check: lint test

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache .hypothesis
