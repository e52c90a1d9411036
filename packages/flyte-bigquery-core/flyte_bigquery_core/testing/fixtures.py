"""pytest fixtures every suite against the local BigQuery shares (the flytekit suite's ``tests/conftest.py`` and
the Flyte 2 suite's ``tests/flyte2/conftest.py`` import them by name; imports pytest, so only tests import this):

* ``emulator`` (session): one running, demo-seeded local BigQuery; ``os.environ`` points at it meanwhile
  (``BIGQUERY_EMULATOR_HOST``, the Storage host, ``GOOGLE_CLOUD_PROJECT``, loopback in ``NO_PROXY``) and is
  restored afterwards, so code that builds its own clients from the environment reaches it too;
* ``fresh_settings`` (autouse): the process's settings are read anew for every test;
* ``bq_client``: a real google-cloud-bigquery client (anonymous credentials) aimed at the emulator;
* ``dataset``: a fresh dataset for a test's tables, deleted with them afterwards;
* :func:`downloads_dataset`: a dataset holding a ``source`` table of download rows (load, extract and copy
  tests of both suites), deleted afterwards;
* :func:`pytest_collection_modifyitems`: every test that uses ``emulator`` is marked ``integration``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from flyte_bigquery_core.settings import current_settings
from flyte_bigquery_core.testing._gcs_process import GcsEmulator
from flyte_bigquery_core.testing.emulator import Emulator

if TYPE_CHECKING:
    from google.cloud import bigquery

__all__ = [
    "bq_client",
    "downloads_dataset",
    "emulator",
    "fresh_settings",
    "pytest_collection_modifyitems",
    "running_emulator",
]


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """A running, demo-seeded emulator shared by the session; the environment points at it meanwhile."""
    yield from running_emulator()


def running_emulator(storage: GcsEmulator | None = None) -> Iterator[Emulator]:
    """A demo-seeded emulator, ``os.environ`` pointing at it until the generator ends; with ``storage`` (a GCS
    stand-in) its load and extract jobs use that for ``gs://``, and the environment points clients at it too
    (a suite whose interpreter has ``gcp-storage-emulator`` overrides ``emulator`` with this)."""
    with Emulator(storage_emulator_host=storage.url if storage is not None else None) as emu:
        emu.seed_demo()
        env = {**emu.env(), **(storage.env() if storage is not None else {})}
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            yield emu
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Every test reads the environment as it is when the test starts (the session emulator's variables
    included): the process-wide settings cache is emptied before and after each test. A test that changes
    the environment afterwards calls ``reload_settings()``."""
    current_settings.cache_clear()
    yield
    current_settings.cache_clear()


@pytest.fixture
def bq_client(emulator: Emulator) -> Iterator[bigquery.Client]:
    """A real google-cloud-bigquery client (anonymous credentials) aimed at the session emulator."""
    if not emulator.running:
        pytest.fail(f"the session's BigQuery emulator died; its log ends with:\n{emulator.log_tail()}")
    client = emulator.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def dataset(bq_client: bigquery.Client) -> Iterator[str]:
    """A fresh dataset for the test's tables (its name), deleted with its contents afterwards."""
    name = f"scratch_{uuid.uuid4().hex[:10]}"
    bq_client.create_dataset(name)
    try:
        yield name
    finally:
        bq_client.delete_dataset(name, delete_contents=True, not_found_ok=True)


def downloads_dataset(emulator: Emulator, prefix: str, rows: list[dict[str, Any]]) -> Iterator[str]:
    """A new dataset (its name) holding table ``source`` with ``rows`` (package STRING, downloads INT64, day DATE,
    the day a ``date``); the dataset and its tables are deleted when the generator is closed. For a module-scoped
    fixture: ``yield from downloads_dataset(emulator, "transfer", rows)``."""
    from google.cloud import bigquery

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    client = emulator.client()
    client.create_dataset(name)
    records = [{**row, "day": row["day"].isoformat()} for row in rows]
    schema = [bigquery.SchemaField(n, t) for n, t in (("package", "STRING"), ("downloads", "INT64"), ("day", "DATE"))]
    try:
        client.load_table_from_json(
            records, f"{name}.source", job_config=bigquery.LoadJobConfig(schema=schema)
        ).result()
        yield name
    finally:
        client.delete_dataset(name, delete_contents=True, not_found_ok=True)
        client.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the emulator as ``integration``."""
    for item in items:
        if "emulator" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
