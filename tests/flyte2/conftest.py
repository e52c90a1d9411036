"""Fixtures of the Flyte 2 suite (run in ``.venv-flyte2`` by ``make test-flyte2``; the flytekit suite skips this
folder): one demo-seeded local BigQuery for the session, with the environment pointing at it meanwhile.

``DO_NOT_TRACK=1`` is set before flyte is imported: flyte reports errors to an outside tracker otherwise.
Every test that uses ``emulator`` is marked ``integration``.
"""

from __future__ import annotations

import os

os.environ["DO_NOT_TRACK"] = "1"

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from flyte_bigquery_core.settings import current_settings
from flyte_bigquery_core.testing import Emulator

if TYPE_CHECKING:
    from google.cloud import bigquery


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """A running, demo-seeded emulator shared by the session; the environment points at it meanwhile."""
    with Emulator() as emu:
        emu.seed_demo()
        env = emu.env()
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        current_settings.cache_clear()
        try:
            yield emu
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            current_settings.cache_clear()


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Every test reads the environment as it is when it starts (the emulator's variables included)."""
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the emulator as ``integration``."""
    for item in items:
        if "emulator" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
