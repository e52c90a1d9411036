"""Run the offline BigQuery emulator (``local-bigquery``) for tests, benchmarks and the demo.

Why a subprocess and not an in-process server: ``local-bigquery`` needs Python >= 3.13 while flytekit
needs 3.10-3.12, so the emulator lives in its own virtualenv (``.venv-emulator``, built by ``make
emulator-venv``) and we talk to it over the network exactly like a client talks to BigQuery:

* REST (jobs, tables, datasets) on ``http://127.0.0.1:<port>``; the real ``google-cloud-bigquery``
  client reaches it through ``BIGQUERY_EMULATOR_HOST`` or an explicit ``api_endpoint``.
* The BigQuery Storage Read API (gRPC) on ``127.0.0.1:<grpc port>``. The Storage client ignores
  ``BIGQUERY_EMULATOR_HOST``, so we publish it as ``FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST``.

Both ports are picked free on loopback and the server is always bound to ``127.0.0.1`` (its own default
is ``0.0.0.0``, which would expose an unauthenticated BigQuery to the network). Every emulator gets a
private temporary data directory, runs in its own process group, and is torn down on ``stop()``, on
leaving the ``with`` block, at interpreter exit, and on SIGTERM/SIGHUP, so nothing is left running.

Command line (used by ``make demo``)::

    python -m flyte_bigquery_core.testing.emulator run [--project P] [--seed demo] -- CMD ARGS...
    python -m flyte_bigquery_core.testing.emulator serve [--project P] [--seed demo]

``run`` starts an emulator, seeds it, runs CMD with the emulator's environment (plus
``GOOGLE_CLOUD_PROJECT``), stops the emulator and exits with CMD's exit code. ``serve`` prints the
``export`` lines for a shell and keeps the emulator up until interrupted.

The parts live in private modules, one job each: the process (:mod:`._emulator_process`), its health
probes (:mod:`._emulator_health`), teardown on signals (:mod:`._emulator_signals`), the environment and
loopback ports (:mod:`._emulator_env`), finding the binary (:mod:`._emulator_binary`), errors
(:mod:`._emulator_errors`), the demo data set (:mod:`._demo_data`) and the command line
(:mod:`._emulator_cli`). :class:`GcsEmulator` (:mod:`._gcs_process`) is a GCS stand-in for ``gs://``: load and
extract jobs and flytekit's file access (``run --gcs-bucket NAME`` starts one). This module is the public face and
the ``-m`` entry point.
"""

from __future__ import annotations

import sys

from flyte_bigquery_core.testing._demo_data import DEMO_DATASET, DEMO_ROWS, DEMO_TABLE
from flyte_bigquery_core.testing._emulator_binary import find_binary
from flyte_bigquery_core.testing._emulator_cli import main
from flyte_bigquery_core.testing._emulator_env import DEFAULT_PROJECT, ENV_BINARY, ENV_REST_HOST, ENV_STORAGE_HOST
from flyte_bigquery_core.testing._emulator_errors import EmulatorError
from flyte_bigquery_core.testing._emulator_process import Emulator
from flyte_bigquery_core.testing._gcs_process import GcsEmulator

__all__ = [
    "DEFAULT_PROJECT",
    "DEMO_DATASET",
    "DEMO_ROWS",
    "DEMO_TABLE",
    "ENV_BINARY",
    "ENV_REST_HOST",
    "ENV_STORAGE_HOST",
    "Emulator",
    "EmulatorError",
    "GcsEmulator",
    "find_binary",
    "main",
]


if __name__ == "__main__":
    sys.exit(main())
