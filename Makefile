# Every target bootstraps its own virtualenv from python3 + pip, installing the pinned lock file.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
export INTENTVISION_HOME ?= $(CURDIR)/.intentvision
export DAGSTER_HOME ?= $(INTENTVISION_HOME)/dagster_home

.PHONY: help setup demo test test-fast ui bench bench-nab bench-alerts bench-m4 bench-capacity lint format lock clean

help:  ## Show the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)  ## Create .venv with the pinned dependencies

demo: $(STAMP)  ## Generate demo data and run the whole pipeline through Dagster; prints where to look
	$(BIN)/intentvision demo

test: $(STAMP)  ## Run the whole test suite (slow end-to-end tests included; real-Prometheus tests skip without it)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)  ## Run the suite without the slow end-to-end tests
	$(BIN)/python -m pytest -q -m "not slow"

UI_PORT ?= 3000

ui: $(STAMP)  ## Dagster webserver + daemon on http://127.0.0.1:3000 (UI_PORT) against $INTENTVISION_HOME
	@# Create the instance's SQLite storage in one process first: webserver and daemon starting on an empty
	@# DAGSTER_HOME would both stamp the schema at once (docs/deployment.md).
	$(BIN)/python -c "import dagster as dg; from intentvision_dagster.settings import load_settings, prepare_dagster_home; dg.DagsterInstance.from_config(str(prepare_dagster_home(load_settings()))).dispose()"
	$(BIN)/dagster-daemon run -w workspace.yaml & daemon=$$!; \
	trap 'kill $$daemon 2>/dev/null; wait $$daemon' EXIT INT TERM; \
	$(BIN)/dagster-webserver -w workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

bench: $(STAMP)  ## Nightly-job throughput benchmark (N=10000 series by default; BENCH_ARGS to override)
	$(BIN)/python bench/nightly.py $(BENCH_ARGS)

bench-nab: $(STAMP)  ## Anomaly pages scored like NAB (dev subset + synthetic ops series, tune/report split) vs a rolling z-score baseline
	$(BIN)/python bench/nab.py $(BENCH_ARGS)

bench-alerts: $(STAMP)  ## Two-week alert replay (demo + NAB) with Slack failures injected; notifications per incident
	$(BIN)/python bench/alerts_replay.py $(BENCH_ARGS)

bench-m4: $(STAMP)  ## M4 Hourly forecast accuracy + speed: ours vs seasonal naive, AutoETS, Prophet
	$(BIN)/python bench/m4.py $(BENCH_ARGS)

bench-capacity: $(STAMP)  ## Capacity pages (breach within 72 h) on labelled scenarios: ours vs Prophet, predict_linear
	$(BIN)/python bench/capacity.py $(BENCH_ARGS)

lint: $(STAMP)  ## ruff check + format check + architecture contracts (import-linter, see pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(STAMP)  ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lock: $(STAMP)  ## Re-resolve the lock file from pyproject.toml in a scratch virtualenv
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[dev,distributed]'
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^intentvision' > requirements.lock
	rm -rf .lock-venv

clean:  ## Remove generated state (keeps .venv)
	rm -rf $(INTENTVISION_HOME) .pytest_cache .ruff_cache

.PHONY: api prometheus-server postgres-server chromium bench-ingest bench-hardening bench-lake bench-distributed

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

api: $(STAMP)  ## HTTP API (ingest + reads) on http://127.0.0.1:8080, docs at /docs
	$(BIN)/intentvision api --host 127.0.0.1 --port 8080

prometheus-server:  ## Install the Prometheus server (Debian package, sudo apt) the API tests run against, if missing
	@command -v prometheus >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus; }

postgres-server:  ## Install PostgreSQL (Debian package, sudo apt) the distributed-profile tests start a throwaway cluster of, if missing
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends postgresql; }

bench-distributed: $(STAMP)  ## Model fitting at 1 and 2 Dask workers vs the local forkserver pool (series/s, 2w/1w ratio)
	$(BIN)/python bench/dask_compute.py $(BENCH_ARGS)

chromium:  ## Install headless Chromium (Debian package, sudo apt) the Dagster UI screenshot test drives, if missing
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

bench-hardening: $(STAMP)  ## Hostile-tenant reproductions: fine-step run, landing flood, readers vs writer
	for case in fine-step landing-flood readers-writer; do $(BIN)/python bench/hardening.py $$case; done

bench-lake: $(STAMP)  ## Storage: 10k series written, rewritten and read through Delta Lake vs the DuckDB warehouse
	$(BIN)/python bench/lake.py $(BENCH_ARGS)

bench-ingest: $(STAMP)  ## Ingest API throughput: remote_write and JSON, p50/p99, lost-sample check
	$(BIN)/python bench/ingest.py $(BENCH_ARGS)
