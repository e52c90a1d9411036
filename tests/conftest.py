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

Service fixtures (module-scoped, so each test module gets its own processes): ``service`` runs
``python -m flytekitplugins.bigquery.service`` against the emulator, ``proxied_service`` a second instance
whose BigQuery traffic goes through ``proxy`` (a :class:`~flyte_bigquery_core.testing.faultproxy.FaultProxy`);
``agents`` and ``agents_via_proxy`` are flyteidl stubs for them, and ``faults`` is the proxy, cleared before and
after a test. A module can override ``service_env`` to change the services' environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import grpc
import pytest
from flyte_bigquery_core.settings import current_settings
from flyte_bigquery_core.testing.faultproxy import FaultProxy
from flyteidl.service.agent_pb2_grpc import AsyncAgentServiceStub

from flytekitplugins.bigquery.testing import Emulator
from flytekitplugins.bigquery.testing.service_process import GRPC_OPTIONS, ServiceProcess

from .helpers import SERVICE_RETRY_SECONDS

#: The Flyte 2 suite runs in its own venv (``make test-flyte2``): flyte and flytekit cannot share a process.
collect_ignore = ["flyte2"]

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


def _started(env: dict[str, str]) -> Iterator[ServiceProcess]:
    service = ServiceProcess(env).start()
    try:
        yield service
        # SIGTERM must be a clean, graceful stop (exit 0), not a death by signal.
        assert service.stop() == 0, service.log_text()[-3000:]
        assert "connector service stopped" in service.log_text()
    finally:
        service.cleanup()


@pytest.fixture(scope="module")
def service_env() -> dict[str, str]:
    """Environment of the module's service processes (override in a module to change it)."""
    return {"FLYTEKITPLUGINS_BIGQUERY_RETRY_SECONDS": SERVICE_RETRY_SECONDS}


@pytest.fixture(scope="module")
def service(emulator: Emulator, service_env: dict[str, str]) -> Iterator[ServiceProcess]:
    """The connector service, talking to the emulator directly."""
    yield from _started(service_env)


@pytest.fixture(scope="module")
def proxy(emulator: Emulator) -> Iterator[FaultProxy]:
    with FaultProxy(emulator.rest_url) as p:
        yield p


@pytest.fixture(scope="module")
def proxied_service(emulator: Emulator, proxy: FaultProxy, service_env: dict[str, str]) -> Iterator[ServiceProcess]:
    """A second service instance whose BigQuery traffic goes through the fault proxy."""
    yield from _started({**service_env, "BIGQUERY_EMULATOR_HOST": proxy.url})


@pytest.fixture
def faults(proxy: FaultProxy) -> Iterator[FaultProxy]:
    proxy.clear()
    yield proxy
    proxy.clear()


@pytest.fixture(scope="module")
def agents(service: ServiceProcess) -> Iterator[AsyncAgentServiceStub]:
    with grpc.insecure_channel(service.target, options=GRPC_OPTIONS) as channel:
        yield AsyncAgentServiceStub(channel)


@pytest.fixture(scope="module")
def agents_via_proxy(proxied_service: ServiceProcess) -> Iterator[AsyncAgentServiceStub]:
    with grpc.insecure_channel(proxied_service.target, options=GRPC_OPTIONS) as channel:
        yield AsyncAgentServiceStub(channel)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the emulator as ``integration``."""
    for item in items:
        if "emulator" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
