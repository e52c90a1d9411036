# flytekitplugins-bigquery developer tasks (GNU make).
#
# Two virtualenvs, because the plugin and the emulator cannot share an interpreter:
#   .venv           - the project (flytekit needs Python 3.10-3.12)
#   .venv-emulator  - the offline BigQuery emulator `local-bigquery` (needs Python >= 3.13)
# a third for `make core-check` only:
#   .venv-core      - packages/flyte-bigquery-core alone (plus pytest), to prove it needs no Flyte SDK
# and a fourth for the Flyte 2 line (flyte and flytekit register the same Prometheus metric names, so each SDK
# gets its own venv and process):
#   .venv-flyte2    - packages/flyteplugins-bigquery (import flyteplugins.bigquery) on flyte 2, for `make test-flyte2`
# All are stamped so that repeated `make` runs do not reinstall anything: the project venv is
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
# httpfs: load jobs read gs:// from the GCS stand-in (tests' GcsEmulator) through DuckDB's httpfs; avro: extract
# jobs write Avro through DuckDB's avro extension.
DUCKDB_PKGS := duckdb==$(DUCKDB_VERSION) duckdb-extension-icu==$(DUCKDB_VERSION) \
	duckdb-extension-ducklake==$(DUCKDB_VERSION) duckdb-extension-spatial==$(DUCKDB_VERSION) \
	duckdb-extension-httpfs==$(DUCKDB_VERSION) duckdb-extension-avro==$(DUCKDB_VERSION)

# The upstream plugin, for `make bench` only (never a dependency of ours). pandas and pyarrow are added
# because upstream does not declare them although flytekit's bq:// handlers and the demo need them, and so
# that imports compare like for like; pyarrow<22 because later releases need numpy 2 and upstream pins numpy<2.
PEER_VENV := .venv-peer
UPSTREAM_VERSION := 1.16.31
PEER_PKGS := flytekitplugins-bigquery==$(UPSTREAM_VERSION) 'flytekit[connector]==$(UPSTREAM_VERSION)' pandas 'pyarrow<22'
PEER_STAMP := $(PEER_VENV)/.stamp-upstream$(UPSTREAM_VERSION)-pandas

CORE_DIR := packages/flyte-bigquery-core
PYPROJECT_HASH := $(shell cat pyproject.toml $(CORE_DIR)/pyproject.toml | sha256sum | cut -c1-12)
VENV_STAMP := $(VENV)/.stamp-$(PYPROJECT_HASH)
EMU_STAMP := $(EMU_VENV)/.stamp-lbq$(LOCAL_BIGQUERY_VERSION)-duckdb$(DUCKDB_VERSION)-httpfs-avro
LOCAL_BIGQUERY_BIN := $(abspath $(EMU_VENV))/bin/local-bigquery

# The core-only venv: flyte-bigquery-core and what its tests need (cloudpickle makes test pickles), nothing else.
CORE_VENV := .venv-core
CORE_TEST_PKGS := pytest pytest-timeout cloudpickle
CORE_VENV_STAMP := $(CORE_VENV)/.stamp-$(shell echo $(CORE_TEST_PKGS) | cat - $(CORE_DIR)/pyproject.toml | sha256sum | cut -c1-12)
# The Flyte 2 venv: our flyteplugins-bigquery and the core, editable, on flyte 2 (never upstream's plugin).
FLYTE2_VENV := .venv-flyte2
FLYTE2_DIR := packages/flyteplugins-bigquery
FLYTE_VERSION := 2.12.1
FLYTE2_PKGS := 'flyte[connector]==$(FLYTE_VERSION)' pandas polars pyarrow pytest pytest-asyncio pytest-timeout mypy 'gcp-storage-emulator>=2024.8'
FLYTE2_STAMP := $(FLYTE2_VENV)/.stamp-$(shell echo $(FLYTE2_PKGS) | cat - $(CORE_DIR)/pyproject.toml $(FLYTE2_DIR)/pyproject.toml | sha256sum | cut -c1-12)
# Upstream's Flyte 2 plugin, in its own venv, only to (re)generate the committed compatibility fixtures
# (tests/flyte2/fixtures, `make flyte2-fixtures`); never a dependency and not needed by `make test`.
FLYTE2_PEER_VENV := .venv-flyte2-peer
FLYTE2_PEER_PKGS := flyteplugins-bigquery==$(FLYTE_VERSION) 'flyte[connector]==$(FLYTE_VERSION)' pandas
FLYTE2_PEER_STAMP := $(FLYTE2_PEER_VENV)/.stamp-upstream$(FLYTE_VERSION)
# `make unit` points the emulator harness at a binary that does not exist, so a test that tries to start
# an emulator without being marked `integration` fails instead of silently needing .venv-emulator.
NO_EMULATOR_BIN := $(abspath .no-emulator-in-unit-tests)/local-bigquery

# pip here warns about every unreachable extra index ("Location 'file:///...' is ignored"); drop
# those lines and the expected duckdb resolver complaint so real errors stay visible.
PIP_FILTER := sed -u -e "/^WARNING: Location 'file:/d" \
	-e "/^ERROR: pip's dependency resolver does not currently take into account/d" \
	-e "/^local-bigquery [0-9.]* requires duckdb>=2/d"

LINT_PATHS ?= flytekitplugins packages tests examples benchmarks deploy
PYTEST_ARGS ?=

.PHONY: help venv emulator-venv core-venv peer-venv duckdb-extensions lint format types unit core-check test demo \
	demo-checks clean bench bench-service soak flyte2-venv flyte2-peer-venv types-flyte2 test-flyte2 flyte2-fixtures

help:
	@echo "targets: venv emulator-venv core-venv peer-venv lint format types unit core-check test demo bench bench-service clean"
	@echo "  make unit                  # the tests that need no emulator (no .venv-emulator needed), in seconds"
	@echo "  make core-check            # flyte-bigquery-core alone in .venv-core: no flytekit/flyteidl/flyte, tests/core"
	@echo "  make test                  # build the venvs, lint, type-check, core-check, run all of pytest (both SDKs)"
	@echo "  make test-flyte2           # the Flyte 2 plugin alone, in .venv-flyte2 (tests/flyte2)"
	@echo "  make test PYTEST_ARGS='-k emulator -x'"
	@echo "  make demo                  # examples/demo_workflow.py and transfer_workflow.py (flytekit) and examples/flyte2_demo.py (Flyte 2)"
	@echo "  make demo-checks           # run examples/typed_result_check.py (sensor, typed result, check)"
	@echo "  make bench                 # ours vs upstream 1.16.31, side by side (about 10 minutes)"

# --- project venv -------------------------------------------------------------------------------

venv: $(VENV_STAMP)
	@:

$(VENV_STAMP): pyproject.toml $(CORE_DIR)/pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; \
	    sys.exit(0 if (3, 10) <= v <= (3, 12) else f"$(PYTHON) is Python {v[0]}.{v[1]}; flytekit needs 3.10-3.12 (set PYTHON=...)")'
	@test -x $(VENV)/bin/python || { echo "creating $(VENV) with $$($(PYTHON) --version)"; $(PYTHON) -m venv $(VENV); }
	@rm -f $(VENV)/.stamp-*
	@echo "installing -e $(CORE_DIR) -e '.[dev]' into $(VENV)"
	@$(VENV)/bin/pip install -q -e $(CORE_DIR) -e '.[dev]' 2>&1 | $(PIP_FILTER)
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
	@$(EMU_VENV)/bin/python packages/flyte-bigquery-core/flyte_bigquery_core/testing/duckdb_extensions.py

# --- core-only venv -----------------------------------------------------------------------------

core-venv: $(CORE_VENV_STAMP)
	@:

$(CORE_VENV_STAMP): $(CORE_DIR)/pyproject.toml
	@test -x $(CORE_VENV)/bin/python || { echo "creating $(CORE_VENV) with $$($(PYTHON) --version)"; $(PYTHON) -m venv $(CORE_VENV); }
	@rm -f $(CORE_VENV)/.stamp-*
	@echo "installing -e $(CORE_DIR) $(CORE_TEST_PKGS) into $(CORE_VENV)"
	@$(CORE_VENV)/bin/pip install -q -e $(CORE_DIR) $(CORE_TEST_PKGS) 2>&1 | $(PIP_FILTER)
	@touch $@

# --- Flyte 2 venvs ------------------------------------------------------------------------------

flyte2-venv: $(FLYTE2_STAMP)
	@:

$(FLYTE2_STAMP): $(CORE_DIR)/pyproject.toml $(FLYTE2_DIR)/pyproject.toml
	@test -x $(FLYTE2_VENV)/bin/python || { echo "creating $(FLYTE2_VENV) with $$($(PYTHON) --version)"; $(PYTHON) -m venv $(FLYTE2_VENV); }
	@rm -f $(FLYTE2_VENV)/.stamp-*
	@echo "installing -e $(CORE_DIR) -e $(FLYTE2_DIR) flyte==$(FLYTE_VERSION) into $(FLYTE2_VENV)"
	@$(FLYTE2_VENV)/bin/pip install -q -e $(CORE_DIR) -e $(FLYTE2_DIR) $(FLYTE2_PKGS) 2>&1 | $(PIP_FILTER)
	@touch $@

flyte2-peer-venv: $(FLYTE2_PEER_STAMP)
	@:

$(FLYTE2_PEER_STAMP):
	@test -x $(FLYTE2_PEER_VENV)/bin/python || { echo "creating $(FLYTE2_PEER_VENV) with $$($(PYTHON) --version)"; $(PYTHON) -m venv $(FLYTE2_PEER_VENV); }
	@rm -f $(FLYTE2_PEER_VENV)/.stamp-*
	@echo "installing upstream flyteplugins-bigquery==$(FLYTE_VERSION) into $(FLYTE2_PEER_VENV)"
	@$(FLYTE2_PEER_VENV)/bin/pip install -q $(FLYTE2_PEER_PKGS) 2>&1 | $(PIP_FILTER)
	@touch $@

# --- checks -------------------------------------------------------------------------------------

lint: venv
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

format: venv
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)

types: venv
	$(VENV)/bin/mypy

# Every test that needs no emulator (`integration` marks the others, see tests/conftest.py).
unit: venv
	LOCAL_BIGQUERY_BIN=$(NO_EMULATOR_BIN) $(VENV)/bin/pytest -m "not integration" $(PYTEST_ARGS)

# The core package on its own: the Flyte SDKs must not be importable, and tests/core must pass without them.
# --confcutdir keeps pytest from loading tests/conftest.py (which needs flytekit).
core-check: core-venv
	@$(CORE_VENV)/bin/python -I -c 'import importlib.util as u, sys; \
	    found = [m for m in ("flytekit", "flyteidl", "flyte") if u.find_spec(m) is not None]; \
	    sys.exit(f"$(CORE_VENV) must not have {found}: flyte-bigquery-core depends on no Flyte SDK" if found else 0)'
	@echo "$(CORE_VENV): flytekit, flyteidl and flyte are not importable"
	LOCAL_BIGQUERY_BIN=$(NO_EMULATOR_BIN) $(CORE_VENV)/bin/pytest -q -p no:cacheprovider --confcutdir=tests/core tests/core

test: venv emulator-venv lint types core-check test-flyte2
	LOCAL_BIGQUERY_BIN=$(LOCAL_BIGQUERY_BIN) $(VENV)/bin/pytest $(PYTEST_ARGS)

# The Flyte 2 package type-checked in its own venv (flyte is not in .venv; ruff lints it with the rest).
types-flyte2: flyte2-venv
	MYPYPATH=$(FLYTE2_DIR):$(CORE_DIR) $(FLYTE2_VENV)/bin/mypy -p flyteplugins.bigquery

# The Flyte 2 suite (tests/flyte2) in .venv-flyte2. --confcutdir keeps pytest from loading tests/conftest.py
# (which needs flytekit); DO_NOT_TRACK=1 keeps flyte from reporting to an outside error tracker.
test-flyte2: flyte2-venv emulator-venv lint types-flyte2
	DO_NOT_TRACK=1 LOCAL_BIGQUERY_BIN=$(LOCAL_BIGQUERY_BIN) $(FLYTE2_VENV)/bin/pytest -p no:cacheprovider \
	    -o asyncio_default_fixture_loop_scope=function --confcutdir=tests/flyte2 tests/flyte2 $(PYTEST_ARGS)

# Regenerates tests/flyte2/fixtures: templates serialized by upstream's flyteplugins-bigquery (in its own venv),
# ours, and what upstream's connector did with ours against a local BigQuery. Not part of `make test`.
flyte2-fixtures: flyte2-venv flyte2-peer-venv emulator-venv
	DO_NOT_TRACK=1 $(FLYTE2_VENV)/bin/python -m tests.flyte2.fixtures.make_ours
	DO_NOT_TRACK=1 LOCAL_BIGQUERY_BIN=$(LOCAL_BIGQUERY_BIN) $(FLYTE2_VENV)/bin/python -m flyte_bigquery_core.testing.emulator \
	    run --seed demo -- $(FLYTE2_PEER_VENV)/bin/python tests/flyte2/fixtures/make_upstream.py

# The transfer example (load -> query -> extract) gets a local GCS with this bucket. Its query reads the loaded
# partition by the name the local BigQuery gives it: it keeps a partition decorator as part of the table's name.
DEMO_BUCKET := flyte-demo

demo: venv emulator-venv flyte2-venv
	LOCAL_BIGQUERY_BIN=$(LOCAL_BIGQUERY_BIN) TRANSFER_DEMO_BUCKET=$(DEMO_BUCKET) \
	TRANSFER_DEMO_TABLE='samples.downloads_by_day$$20250601' \
	$(VENV)/bin/python -m flytekitplugins.bigquery.testing.emulator run --seed demo --gcs-bucket $(DEMO_BUCKET) -- \
	    bash -c '$(VENV)/bin/pyflyte run examples/demo_workflow.py wf && \
	             $(VENV)/bin/pyflyte run examples/transfer_workflow.py wf --day 2025-06-01'
	DO_NOT_TRACK=1 LOCAL_BIGQUERY_BIN=$(LOCAL_BIGQUERY_BIN) $(FLYTE2_VENV)/bin/python -m flyte_bigquery_core.testing.emulator \
	    run --seed demo -- $(FLYTE2_VENV)/bin/python examples/flyte2_demo.py

# A sensor, a typed result, a conditional and a data-quality check (examples/typed_result_check.py).
demo-checks: venv emulator-venv
	LOCAL_BIGQUERY_BIN=$(LOCAL_BIGQUERY_BIN) $(VENV)/bin/python -m flytekitplugins.bigquery.testing.emulator \
	    run --seed demo -- $(VENV)/bin/pyflyte run examples/typed_result_check.py wf

clean:
	rm -rf $(VENV) $(EMU_VENV) $(CORE_VENV) $(PEER_VENV) $(FLYTE2_VENV) $(FLYTE2_PEER_VENV) .stamps .emulator build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +

# --- benchmarks ---------------------------------------------------------------------------------

# Upstream's venv for the side-by-side benchmark (Python 3.10-3.12, as flytekit needs).
peer-venv: $(PEER_STAMP)
	@:

$(PEER_STAMP):
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; \
	    sys.exit(0 if (3, 10) <= v <= (3, 12) else f"$(PYTHON) is Python {v[0]}.{v[1]}; flytekit needs 3.10-3.12 (set PYTHON=...)")'
	@test -x $(PEER_VENV)/bin/python || { echo "creating $(PEER_VENV) with $$($(PYTHON) --version)"; $(PYTHON) -m venv $(PEER_VENV); }
	@rm -f $(PEER_VENV)/.stamp-*
	@echo "installing upstream flytekitplugins-bigquery==$(UPSTREAM_VERSION) into $(PEER_VENV)"
	@$(PEER_VENV)/bin/pip install -q $(PEER_PKGS) 2>&1 | $(PIP_FILTER)
	@touch $@

# Ours vs upstream 1.16.31, side by side (benchmarks/compare.py): connector service throughput and latency,
# CPU per call, bq:// reads into pandas, import cost and the demo workflow end to end. Prints the tables and
# the targets, writes benchmarks/results/compare.json and compare.png. Not part of `make test`.
# BENCH_ARGS passes options, e.g. BENCH_ARGS='--only service percall' or BENCH_ARGS='--quick'.
BENCH_ARGS ?=

bench: venv emulator-venv peer-venv
	LOCAL_BIGQUERY_BIN=$(LOCAL_BIGQUERY_BIN) $(VENV)/bin/python -m benchmarks.compare $(BENCH_ARGS)

# Our service alone under closed-loop load (benchmarks/service_bench.py -> benchmarks/results/service.json), with
# the request Flyte's maintainers send (upstream's template, no InputTypes) unless BENCH_ARGS says otherwise
# (BENCH_ARGS='--shape ours').
bench-service: venv
	$(VENV)/bin/python -m benchmarks.service_bench --shape upstream $(BENCH_ARGS)

# --- soak ---------------------------------------------------------------------------------------------

# Not part of `make test`. Mixed create/get/delete load (failing queries and bad input included) through
# the connector service, with the fault proxy failing SOAK_FAULT_RATE (0.2) of BigQuery requests, at
# SOAK_CONCURRENCY (16) for SOAK_SECONDS (600). Prints throughput, outcomes and errors by kind, faults by
# endpoint, duplicate jobs (must be 0) and the service's RSS/fds at start and end (RSS within 10 %); exits
# non-zero if a promise is broken. E.g. make soak SOAK_SECONDS=120. Other knobs: SOAK_SEED, SOAK_RETRY_SECONDS.
SOAK_SECONDS ?= 600

soak: venv emulator-venv
	SOAK_SECONDS=$(SOAK_SECONDS) LOCAL_BIGQUERY_BIN=$(LOCAL_BIGQUERY_BIN) $(VENV)/bin/python -m tests.soak

# --- the connector image ------------------------------------------------------------------------------------

# Not part of `make test` (it downloads Debian packages and ~100 wheels: 3-6 minutes the first time). Builds
# deploy/Dockerfile with buildah and runs it with podman where they work, else installs the image's pinned
# requirements into a fresh venv as an unprivileged user and starts deploy/entrypoint.sh; then gRPC health and one
# task against the local BigQuery (deploy/smoke.sh). SMOKE_MODE=image|venv forces one.
SMOKE_MODE ?= auto

.PHONY: image-smoke
image-smoke: venv emulator-venv
	LOCAL_BIGQUERY_BIN=$(LOCAL_BIGQUERY_BIN) VENV_PY=$(abspath $(VENV))/bin/python bash deploy/smoke.sh $(SMOKE_MODE)
