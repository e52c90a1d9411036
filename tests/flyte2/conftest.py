"""Fixtures of the Flyte 2 suite (run in ``.venv-flyte2`` by ``make test-flyte2``; the flytekit suite skips this
folder): the shared ones (:mod:`flyte_bigquery_core.testing.fixtures`: a demo-seeded local BigQuery for the
session, the environment pointing at it, fresh settings per test, ``bq_client``, the ``integration`` mark), with
``gs://`` in the session's GCS stand-in (``gcs``, bucket :data:`~.helpers.BUCKET`) as in the flytekit suite.

``DO_NOT_TRACK=1`` is set before flyte is imported: flyte reports errors to an outside tracker otherwise.
"""

from __future__ import annotations

import os

os.environ["DO_NOT_TRACK"] = "1"

from collections.abc import Iterator

import pytest
from flyte_bigquery_core.testing import Emulator
from flyte_bigquery_core.testing import fixtures as shared
from flyte_bigquery_core.testing._gcs_process import GCS_CLIENT_ENV, GcsEmulator

from .helpers import BUCKET

for _key, _value in GCS_CLIENT_ENV.items():  # no probe of the GCE metadata server for storage credentials
    os.environ.setdefault(_key, _value)

fresh_settings = shared.fresh_settings
bq_client = shared.bq_client
dataset = shared.dataset
pytest_collection_modifyitems = shared.pytest_collection_modifyitems


@pytest.fixture(scope="session")
def gcs() -> Iterator[GcsEmulator]:
    """The session's GCS stand-in (in memory, on loopback) with bucket :data:`~.helpers.BUCKET`; the local
    BigQuery's load and extract jobs read and write ``gs://`` there."""
    with GcsEmulator() as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture(scope="session")
def emulator(gcs: GcsEmulator) -> Iterator[Emulator]:
    """The shared session emulator (:mod:`flyte_bigquery_core.testing.fixtures`), with ``gs://`` in ``gcs``."""
    yield from shared.running_emulator(gcs)
