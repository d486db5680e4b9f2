# synthtune: `make demo` runs the sample problem set offline; `make test` runs the test suite;
# `make bench` measures the Generate stage against the emulator, the Assemble step's memory and
# throughput on synthetic runs, and whole `synthtune run`s (minutes; not part of `make test`);
# `make bench-knowledge` runs the three knowledge policies side by side.
#
# Everything installs from lock files with hashes, so the demo, the tests and the Lambda layer run the same
# versions: requirements.lock (what the demo and the synthtune command need), requirements-dev.lock (that and
# the dev tools: `make test` and `make lint` add them to the same .venv), layers/core/requirements.lock (the
# layer, for Lambda's Python 3.13 on arm64). `make lock` regenerates all three from the unpinned
# requirements in layers/core/requirements.txt, cli/requirements.txt and pyproject.toml's dev extra.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# --no-deps: a lock lists every package, so pip resolves nothing and installs exactly what it pins.
PIP_LOCKED := $(BIN)/python -m pip install --quiet --require-hashes --no-deps

.PHONY: install install-dev demo test bench bench-knowledge lint check lock layer build clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "synthtune needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(PIP_LOCKED) -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@rm -f $(DEV_STAMP)
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.lock
	$(PIP_LOCKED) -r requirements-dev.lock
	@touch $(DEV_STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

demo: install
	$(BIN)/synthtune run events/problem-set.sample.jsonl

test: install-dev
	$(BIN)/python -m pytest -n auto

bench: install-dev
	$(BIN)/python benchmarks/generation.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/assembly.py $(ASSEMBLY_BENCH_ARGS)
	$(BIN)/python benchmarks/local_run.py $(LOCAL_RUN_BENCH_ARGS)

# keep_all vs drop_unknown vs abstain_unknown on one problem set, offline (about two minutes).
bench-knowledge: install-dev
	$(BIN)/python benchmarks/knowledge_policies.py $(KNOWLEDGE_BENCH_ARGS)

# checkov pins boto3==1.35.49 and packaging<24, which the dev tools (boto3>=1.40) and pytest 9 cannot share with
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
lint: install-dev $(CHECKOV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml

check: lint test

# The locks, resolved once by uv (pinned, in a virtualenv of its own). The demo and dev locks hold for every
# Python from 3.11 on, one version of each package for all of them (fewest forks), so the layer lock, made
# for Lambda's 3.13 under the demo lock's constraints, pins the same versions the tests ran.
UV_VERSION := 0.13.8
LOCK_VENV := .venv-lock
LOCK_STAMP := $(LOCK_VENV)/.uv-$(UV_VERSION)
UV_COMPILE := $(LOCK_VENV)/bin/uv pip compile --quiet --generate-hashes --custom-compile-command "make lock"

$(LOCK_STAMP):
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"
	@touch $(LOCK_STAMP)

lock: $(LOCK_STAMP)
	$(UV_COMPILE) --universal --fork-strategy fewest --python-version 3.11 \
		layers/core/requirements.txt cli/requirements.txt -o requirements.lock
	$(UV_COMPILE) --universal --fork-strategy fewest --python-version 3.11 \
		pyproject.toml --extra dev -c requirements.lock -o requirements-dev.lock
	$(UV_COMPILE) --python-version 3.13 --python-platform aarch64-manylinux_2_28 \
		--no-emit-package boto3 --no-emit-package botocore --no-emit-package s3transfer \
		layers/core/requirements.txt -c requirements.lock -o layers/core/requirements.lock

# The layer as `sam build` makes it (layers/core/Makefile), into .aws-sam/layer, checked: built for Lambda's
# Python and architecture, exactly the locked packages, no boto3. Uses the package registry, so not in `make test`.
LAYER_DIR := .aws-sam/layer

layer: install
	rm -rf $(LAYER_DIR)
	$(MAKE) -C layers/core build-CoreLayer ARTIFACTS_DIR=$(abspath $(LAYER_DIR)) PYTHON=$(abspath $(BIN)/python)
	$(BIN)/python .ci/check_layer.py $(LAYER_DIR) layers/core/requirements.lock

# `sam build` itself, with the SAM CLI pinned in a virtualenv of its own (its dependencies pin boto3 and
# others apart from ours), then the same check on the layer it built. No container and no Python 3.13 needed.
SAM_CLI_VERSION := 1.170.0
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.sam-$(SAM_CLI_VERSION)

$(SAM_STAMP):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet "aws-sam-cli==$(SAM_CLI_VERSION)"
	@touch $(SAM_STAMP)

build: install $(SAM_STAMP)
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build
	$(BIN)/python .ci/check_layer.py .aws-sam/build/CoreLayer layers/core/requirements.lock

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache .hypothesis .aws-sam
