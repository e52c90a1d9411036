"""Test support, kept at its old import path: the offline BigQuery harness lives in
:mod:`flyte_bigquery_core.testing`; ``from flytekitplugins.bigquery.testing import Emulator`` and
``python -m flytekitplugins.bigquery.testing.emulator`` keep working."""

from flyte_bigquery_core.testing import *  # noqa: F403
from flyte_bigquery_core.testing import __all__ as __all__
