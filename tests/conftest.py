"""Shared fixtures: one offline BigQuery emulator for the whole test session.

Starting ``local-bigquery`` takes a couple of seconds, so integration tests share one server, seeded
with the demo data (``samples.daily_downloads``). Tests that need isolation should create their own
dataset (e.g. named after the test) rather than start another emulator.

``emulator`` (here with ``gs://`` in the session's GCS stand-in, ``gcs``), ``fresh_settings``, ``bq_client`` and
the hook that marks every test using the emulator ``integration`` (so ``pytest -m "not integration"`` runs the
unit tests alone) are shared with the Flyte 2 suite: see :mod:`flyte_bigquery_core.testing.fixtures`. While the
session emulator runs, ``os.environ`` points at it, so code under test that builds its own clients from the
environment reaches the emulator too.

Service fixtures (module-scoped, so each test module gets its own processes): ``service`` runs
``python -m flytekitplugins.bigquery.service`` against the emulator, ``proxied_service`` a second instance
whose BigQuery traffic goes through ``proxy`` (a :class:`~flyte_bigquery_core.testing.faultproxy.FaultProxy`);
``agents`` and ``agents_via_proxy`` are flyteidl stubs for them, and ``faults`` is the proxy, cleared before and
after a test. A module can override ``service_env`` to change the services' environment.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import grpc
import pytest
from flyte_bigquery_core.testing import fixtures as shared
from flyte_bigquery_core.testing._gcs_process import GCS_CLIENT_ENV
from flyte_bigquery_core.testing.emulator import GcsEmulator
from flyte_bigquery_core.testing.faultproxy import FaultProxy
from flyteidl.service.agent_pb2_grpc import AsyncAgentServiceStub

from flytekitplugins.bigquery.testing import Emulator
from flytekitplugins.bigquery.testing.service_process import GRPC_OPTIONS, ServiceProcess

from .helpers import BUCKET, SERVICE_RETRY_SECONDS, transfer_frame

#: The Flyte 2 suite runs in its own venv (``make test-flyte2``): flyte and flytekit cannot share a process.
collect_ignore = ["flyte2"]

# Read when gcsfs and google-auth are imported (which may come before the session's GCS stand-in starts): no
# bucket-type probe over gRPC, no probe of the GCE metadata server. Harmless without a GCS stand-in.
for _key, _value in GCS_CLIENT_ENV.items():
    os.environ.setdefault(_key, _value)

# The fixtures every suite against the local BigQuery shares (fresh_settings, bq_client) and its hook.
fresh_settings = shared.fresh_settings
bq_client = shared.bq_client
dataset = shared.dataset
pytest_collection_modifyitems = shared.pytest_collection_modifyitems


@pytest.fixture(scope="session")
def gcs() -> Iterator[GcsEmulator]:
    """The session's GCS stand-in (in memory, on loopback) with bucket :data:`~.helpers.BUCKET`; the local
    BigQuery's load and extract jobs and flytekit's ``gs://`` access both use it."""
    with GcsEmulator() as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture(scope="session")
def emulator(gcs: GcsEmulator) -> Iterator[Emulator]:
    """The shared session emulator (:mod:`flyte_bigquery_core.testing.fixtures`), with ``gs://`` in ``gcs``."""
    yield from shared.running_emulator(gcs)


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


@pytest.fixture(scope="module")
def transfer_dataset(emulator: Emulator) -> Iterator[str]:
    """A dataset of the module's own holding ``source`` (:func:`~.helpers.transfer_frame`'s rows), for load,
    extract and copy tests; deleted after the module."""
    yield from shared.downloads_dataset(emulator, "transfer", transfer_frame().to_dict("records"))


@pytest.fixture
def gs_folder(gcs: GcsEmulator) -> str:
    """A fresh ``gs://`` folder in the GCS stand-in's bucket."""
    return f"gs://{BUCKET}/{uuid.uuid4().hex[:10]}"
