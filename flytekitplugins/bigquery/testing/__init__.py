"""Test support, kept at its old import path: the offline BigQuery harness lives in
:mod:`flyte_bigquery_core.testing`; ``from flytekitplugins.bigquery.testing import Emulator`` and
``python -m flytekitplugins.bigquery.testing.emulator`` keep working."""

from flyte_bigquery_core.testing import (
    DEFAULT_PROJECT,
    DEMO_DATASET,
    DEMO_ROWS,
    DEMO_TABLE,
    Emulator,
    EmulatorError,
    find_binary,
)

__all__ = ["DEFAULT_PROJECT", "DEMO_DATASET", "DEMO_ROWS", "DEMO_TABLE", "Emulator", "EmulatorError", "find_binary"]
