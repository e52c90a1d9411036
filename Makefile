# flytekitplugins-bigquery developer tasks (GNU make).
#
# Two virtualenvs, because the plugin and the emulator cannot share an interpreter:
#   .venv           - the project (flytekit needs Python 3.10-3.12)
#   .venv-emulator  - the offline BigQuery emulator `local-bigquery` (needs Python >= 3.13)
# Both are stamped so that repeated `make` runs do not reinstall anything: the project venv is
# rebuilt when the *content* of pyproject.toml changes, the emulator venv when its pins change.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
EMU_VENV := .venv-emulator
# Interpreter for the emulator venv; empty = auto-detect a Python 3.13 (see find-python313 below).
EMU_PYTHON ?=

LOCAL_BIGQUERY_VERSION := 0.4.0
# local-bigquery asks for duckdb>=2, which cannot download its extensions offline. DuckDB 1.5.5 ships
# its extensions as wheels, so we pin it and install the extensions from those wheels (pip prints a
# resolver-conflict error for this; it is expected and filtered out).
DUCKDB_VERSION := 1.5.5
DUCKDB_PKGS := duckdb==$(DUCKDB_VERSION) duckdb-extension-icu==$(DUCKDB_VERSION) \
	duckdb-extension-ducklake==$(DUCKDB_VERSION) duckdb-extension-spatial==$(DUCKDB_VERSION)

PYPROJECT_HASH := $(shell sha256sum pyproject.toml | cut -c1-12)
VENV_STAMP := $(VENV)/.stamp-$(PYPROJECT_HASH)
EMU_STAMP := $(EMU_VENV)/.stamp-lbq$(LOCAL_BIGQUERY_VERSION)-duckdb$(DUCKDB_VERSION)
LOCAL_BIGQUERY_BIN := $(abspath $(EMU_VENV))/bin/local-bigquery

# pip here warns about every unreachable extra index ("Location 'file:///...' is ignored"); drop
# those lines and the expected duckdb resolver complaint so real errors stay visible.
PIP_FILTER := sed -u -e "/^WARNING: Location 'file:/d" \
	-e "/^ERROR: pip's dependency resolver does not currently take into account/d" \
	-e "/^local-bigquery [0-9.]* requires duckdb>=2/d"

LINT_PATHS ?= flytekitplugins tests examples
PYTEST_ARGS ?=

.PHONY: help venv emulator-venv duckdb-extensions lint format types test demo clean bench

help:
	@echo "targets: venv emulator-venv lint format types test demo clean"
	@echo "  make test                  # build both venvs, lint, type-check, run pytest"
	@echo "  make test PYTEST_ARGS='-k emulator -x'"
	@echo "  make demo                  # run examples/demo_workflow.py against a seeded emulator"

# --- project venv -------------------------------------------------------------------------------

venv: $(VENV_STAMP)
	@:

$(VENV_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; \
	    sys.exit(0 if (3, 10) <= v <= (3, 12) else f"$(PYTHON) is Python {v[0]}.{v[1]}; flytekit needs 3.10-3.12 (set PYTHON=...)")'
	@test -x $(VENV)/bin/python || { echo "creating $(VENV) with $$($(PYTHON) --version)"; $(PYTHON) -m venv $(VENV); }
	@rm -f $(VENV)/.stamp-*
	@echo "installing -e '.[dev]' into $(VENV)"
	@$(VENV)/bin/pip install -q -e '.[dev]' 2>&1 | $(PIP_FILTER)
	@touch $@

# --- emulator venv ------------------------------------------------------------------------------

# Prints the path of a Python >= 3.13: $(EMU_PYTHON) if set (and nothing else), else pyenv's 3.13.0,
# else python3.13 on PATH, else ~/.pyenv/versions/3.13.*. The real executable is printed, not a shim.
define find-python313
for c in $(if $(EMU_PYTHON),"$(EMU_PYTHON)","env PYENV_VERSION=3.13.0 python3.13" "python3.13" \
	$(sort $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.13.*/bin/python3.13 \
	                  /root/.pyenv/versions/3.13.*/bin/python3.13))); do \
  if exe=$$($$c -c 'import sys; assert sys.version_info >= (3, 13); print(sys.executable)' 2>/dev/null); then \
    echo "$$exe"; exit 0; fi; \
done; \
echo "no Python >= 3.13 found for the BigQuery emulator: install one (e.g. pyenv install 3.13.0) or set EMU_PYTHON=/path/to/python3.13" >&2; \
exit 1
endef

emulator-venv: $(EMU_STAMP) duckdb-extensions
	@:

$(EMU_STAMP):
	@test -x $(EMU_VENV)/bin/python || { \
	  py=$$($(find-python313)); \
	  echo "creating $(EMU_VENV) with $$($$py --version)"; \
	  "$$py" -m venv $(EMU_VENV); }
	@rm -f $(EMU_VENV)/.stamp-*
	@echo "installing local-bigquery==$(LOCAL_BIGQUERY_VERSION) + duckdb $(DUCKDB_VERSION) extensions into $(EMU_VENV)"
	@$(EMU_VENV)/bin/pip install -q local-bigquery==$(LOCAL_BIGQUERY_VERSION) 2>&1 | $(PIP_FILTER)
	@$(EMU_VENV)/bin/pip install -q $(DUCKDB_PKGS) 2>&1 | $(PIP_FILTER)
	@touch $@

# DuckDB installs extensions into ~/.duckdb/extensions, outside the venv, so this step is not
# stamped: it re-checks on every run (well under a second) and installs only what is missing.
duckdb-extensions: $(EMU_STAMP)
	@$(EMU_VENV)/bin/python flytekitplugins/bigquery/testing/duckdb_extensions.py

# --- checks -------------------------------------------------------------------------------------

lint: venv
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

format: venv
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)

types: venv
	$(VENV)/bin/mypy

test: venv emulator-venv lint types
	LOCAL_BIGQUERY_BIN=$(LOCAL_BIGQUERY_BIN) $(VENV)/bin/pytest $(PYTEST_ARGS)

demo: venv emulator-venv
	LOCAL_BIGQUERY_BIN=$(LOCAL_BIGQUERY_BIN) $(VENV)/bin/python -m flytekitplugins.bigquery.testing.emulator \
	    run --seed demo -- $(VENV)/bin/pyflyte run examples/demo_workflow.py wf

clean:
	rm -rf $(VENV) $(EMU_VENV) .stamps .emulator build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +

# --- benchmarks ---------------------------------------------------------------------------------

# Connector gRPC service under closed-loop load against a loopback BigQuery stand-in (100 ms latency):
# req/s, p50/p99 and the service's CPU and peak RSS at concurrency 16 and 64. Writes
# benchmarks/results/service.json. BENCH_ARGS passes options, e.g. BENCH_ARGS='--duration 5'.
BENCH_ARGS ?=

bench: venv
	$(VENV)/bin/python -m benchmarks.service_bench $(BENCH_ARGS)
