"""Fixtures of the Flyte 2 suite (run in ``.venv-flyte2`` by ``make test-flyte2``; the flytekit suite skips this
folder): the shared ones (:mod:`flyte_bigquery_core.testing.fixtures`: a demo-seeded local BigQuery for the
session, the environment pointing at it, fresh settings per test, ``bq_client``, the ``integration`` mark).

``DO_NOT_TRACK=1`` is set before flyte is imported: flyte reports errors to an outside tracker otherwise.
"""

from __future__ import annotations

import os

os.environ["DO_NOT_TRACK"] = "1"

from flyte_bigquery_core.testing import fixtures as shared

emulator = shared.emulator
fresh_settings = shared.fresh_settings
bq_client = shared.bq_client
dataset = shared.dataset
pytest_collection_modifyitems = shared.pytest_collection_modifyitems
