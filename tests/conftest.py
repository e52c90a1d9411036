"""Shared fixtures: one offline BigQuery emulator for the whole test session.

Starting ``local-bigquery`` takes a couple of seconds, so integration tests share one server, seeded
with the demo data (``samples.daily_downloads``). Tests that need isolation should create their own
dataset (e.g. named after the test) rather than start another emulator.

While the session emulator runs, ``os.environ`` points at it (``BIGQUERY_EMULATOR_HOST``,
``FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST``, ``GOOGLE_CLOUD_PROJECT``, loopback in ``NO_PROXY``),
so code under test that builds its own clients from the environment reaches the emulator too. The
previous values are restored when the session ends.

Every test that uses the ``emulator`` fixture (directly or through ``bq_client``) is marked
``integration`` automatically, so ``pytest -m "not integration"`` runs the unit tests alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from flytekitplugins.bigquery.testing import Emulator

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
        try:
            yield emu
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


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
