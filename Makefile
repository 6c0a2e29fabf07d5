# Every target installs what it needs: `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export ANONYMIZED_TELEMETRY ?= False

.PHONY: install system-deps run test test-fast eval bench lint clean

install: $(STAMP) system-deps

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@# the CPU build of torch first: an unpinned torch pulls gigabytes of CUDA packages
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

run: install
	RAG_AUTH_DISABLED=$${RAG_AUTH_DISABLED:-true} RAG_SAMPLES_DIR=$${RAG_SAMPLES_DIR:-data/samples} \
		$(BIN)/rag serve --host 127.0.0.1 --port $${PORT:-8000}

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

eval: install
	$(BIN)/rag eval --all --baseline eval/baselines

bench: install
	$(BIN)/python -m eval.bench $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy rag ingest api eval

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
