"""``python -m flyteplugins.bigquery.service`` over real gRPC: what it serves, how it fails, where it listens.

The launcher runs as a subprocess on a free loopback port, serving the echo connector of
``tests/flyte2/service_helpers.py`` (a real flyte ``AsyncConnector``, no BigQuery) next to whatever the
``flyte.connectors`` entry points register; clients are ``grpc.aio`` stubs of flyteidl2.
"""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.request
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
import pytest_asyncio
from flyte_bigquery_core.testing.service_process import ServiceProcess
from flyte_bigquery_core.testing.sockets import is_loopback, listening_addresses, reachable_off_loopback
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_pb2_grpc import AsyncConnectorServiceStub, ConnectorMetadataServiceStub
from flyteidl2.core.execution_pb2 import TaskExecution
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .service_helpers import (
    ECHO_CATEGORY,
    ECHO_CONNECTOR,
    ECHO_TASK_TYPE,
    FAILING_TASK,
    FAILURE_SECRET,
    GRPC_OPTIONS,
    LOG_LINES,
    create_request,
    launch,
    service_process,
)


@pytest.fixture(scope="module")
def service() -> Iterator[ServiceProcess]:
    process = service_process().start()
    try:
        yield process
        assert process.stop() == 0, process.log_text()[-3000:]  # SIGTERM is a graceful stop
        assert "connector service stopped" in process.log_text()
    finally:
        process.cleanup()


@pytest_asyncio.fixture
async def channel(service: ServiceProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(service.target, options=GRPC_OPTIONS) as channel:
        yield channel


@pytest.fixture
def connectors(channel: grpc.aio.Channel) -> AsyncConnectorServiceStub:
    return AsyncConnectorServiceStub(channel)


@pytest.fixture
def metadata(channel: grpc.aio.Channel) -> ConnectorMetadataServiceStub:
    return ConnectorMetadataServiceStub(channel)


async def _status_of(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value.code(), info.value.details() or ""


async def _echo_meta(connectors: AsyncConnectorServiceStub) -> bytes:
    created = await connectors.CreateTask(create_request(), timeout=30)
    return bytes(created.resource_meta)


async def _assert_still_serving(connectors: AsyncConnectorServiceStub) -> None:
    """A bad request must not take the service down: a good one still runs end to end."""
    meta = await _echo_meta(connectors)
    got = await connectors.GetTask(pb.GetTaskRequest(task_category=ECHO_CATEGORY, resource_meta=meta), timeout=30)
    assert got.resource.phase == TaskExecution.SUCCEEDED


# --- health and metadata ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        "grpc.health.v1.Health",
        "flyteidl2.connector.AsyncConnectorService",
        "flyteidl2.connector.ConnectorMetadataService",
    ],
)
@pytest.mark.asyncio
async def test_health_reports_serving(channel: grpc.aio.Channel, name: str) -> None:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.asyncio
async def test_list_connectors_names_each_connector_and_its_task_category(
    metadata: ConnectorMetadataServiceStub,
) -> None:
    listed = (await metadata.ListConnectors(pb.ListConnectorsRequest(), timeout=10)).connectors
    echo = [c for c in listed if c.name == ECHO_CONNECTOR]
    assert [[(t.name, t.version) for t in c.supported_task_categories] for c in echo] == [[(ECHO_TASK_TYPE, 0)]]


@pytest.mark.asyncio
async def test_get_connector_by_name(metadata: ConnectorMetadataServiceStub) -> None:
    got = (await metadata.GetConnector(pb.GetConnectorRequest(name=ECHO_CONNECTOR), timeout=10)).connector
    assert got.name == ECHO_CONNECTOR
    assert [(t.name, t.version) for t in got.supported_task_categories] == [(ECHO_TASK_TYPE, 0)]


@pytest.mark.asyncio
async def test_get_connector_of_an_unknown_name_is_not_found(metadata: ConnectorMetadataServiceStub) -> None:
    code, details = await _status_of(metadata.GetConnector(pb.GetConnectorRequest(name="No Such"), timeout=10))
    assert code == grpc.StatusCode.NOT_FOUND
    assert "No Such" in details


# --- the task calls ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_create_get_delete_run_through_the_connector(connectors: AsyncConnectorServiceStub) -> None:
    meta = await _echo_meta(connectors)
    request = pb.GetTaskRequest(task_category=ECHO_CATEGORY, resource_meta=meta)
    resource = (await connectors.GetTask(request, timeout=30)).resource
    assert resource.phase == TaskExecution.SUCCEEDED
    await connectors.DeleteTask(pb.DeleteTaskRequest(task_category=ECHO_CATEGORY, resource_meta=meta), timeout=30)


@pytest.mark.asyncio
async def test_get_task_logs_streams_every_message_the_connector_yields(connectors: AsyncConnectorServiceStub) -> None:
    meta = await _echo_meta(connectors)
    stream = connectors.GetTaskLogs(pb.GetTaskLogsRequest(task_category=ECHO_CATEGORY, resource_meta=meta), timeout=30)
    lines = [line.message async for response in stream for line in response.body.lines]
    assert lines == list(LOG_LINES)


@pytest.mark.asyncio
async def test_a_call_the_connector_does_not_implement_is_unimplemented(connectors: AsyncConnectorServiceStub) -> None:
    meta = await _echo_meta(connectors)
    request = pb.GetTaskMetricsRequest(task_category=ECHO_CATEGORY, resource_meta=meta)
    code, details = await _status_of(connectors.GetTaskMetrics(request, timeout=30))
    assert code == grpc.StatusCode.UNIMPLEMENTED
    assert ECHO_TASK_TYPE in details


@pytest.mark.asyncio
async def test_an_unknown_task_type_is_not_found_on_every_call(connectors: AsyncConnectorServiceStub) -> None:
    unknown = pb.TaskCategory(name="no_such_task_type", version=0)
    calls = [
        connectors.CreateTask(create_request(task_type="no_such_task_type"), timeout=30),
        connectors.GetTask(pb.GetTaskRequest(task_category=unknown, resource_meta=b"{}"), timeout=30),
        connectors.DeleteTask(pb.DeleteTaskRequest(task_category=unknown, resource_meta=b"{}"), timeout=30),
        connectors.GetTaskMetrics(pb.GetTaskMetricsRequest(task_category=unknown, resource_meta=b"{}"), timeout=30),
    ]
    for call in calls:
        code, details = await _status_of(call)
        assert (code, "no_such_task_type" in details) == (grpc.StatusCode.NOT_FOUND, True)
    stream = connectors.GetTaskLogs(pb.GetTaskLogsRequest(task_category=unknown, resource_meta=b"{}"), timeout=30)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        [r async for r in stream]
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    await _assert_still_serving(connectors)


@pytest.mark.parametrize(
    "garbage", [b"\x00\xffnot json", b"[1, 2]", b'{"no_such_field": 1}'], ids=["bytes", "list", "keys"]
)
@pytest.mark.asyncio
async def test_garbage_resource_meta_is_invalid_argument(connectors: AsyncConnectorServiceStub, garbage: bytes) -> None:
    request = pb.GetTaskRequest(task_category=ECHO_CATEGORY, resource_meta=garbage)
    code, details = await _status_of(connectors.GetTask(request, timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "resource_meta is not an encoded EchoMeta" in details
    await _assert_still_serving(connectors)


@pytest.mark.asyncio
async def test_an_unexpected_connector_error_is_internal_and_never_echoes_its_message(
    connectors: AsyncConnectorServiceStub, service: ServiceProcess
) -> None:
    code, details = await _status_of(connectors.CreateTask(create_request(name=FAILING_TASK), timeout=30))
    assert code == grpc.StatusCode.INTERNAL
    assert "unexpected RuntimeError" in details
    assert FAILURE_SECRET not in details
    assert FAILURE_SECRET not in service.log_text()
    assert "RuntimeError" in service.log_text()  # the operator still learns what and where
    await _assert_still_serving(connectors)


# --- where it listens, and how it starts -------------------------------------------------------------------


def test_listens_on_loopback_only_by_default(service: ServiceProcess) -> None:
    addresses = listening_addresses(service.pid)
    assert service.port in {port for _, port in addresses}, addresses
    assert all(is_loopback(address) for address, _ in addresses), addresses
    assert not reachable_off_loopback(service.port)


def test_metrics_are_off_unless_asked_for(service: ServiceProcess) -> None:
    assert len(listening_addresses(service.pid)) == 1


def test_metrics_when_asked_for_listen_on_the_same_host_only() -> None:
    with service_process(args=["--prometheus-port", "0"]) as process:
        addresses = listening_addresses(process.pid)
        assert len(addresses) == 2 and all(is_loopback(a) for a, _ in addresses), addresses
        [metrics_port] = [port for _, port in addresses if port != process.port]
        with grpc.insecure_channel(process.target, options=GRPC_OPTIONS) as channel:
            AsyncConnectorServiceStub(channel).CreateTask(create_request(), timeout=30)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as reply:
            text = reply.read().decode()
    assert f'flyte_connector_requests_success_total{{operation="create",task_type="{ECHO_TASK_TYPE}"}} 1.0' in text


def test_a_host_given_in_the_environment_is_used() -> None:
    with service_process(env={"FLYTEPLUGINS_BIGQUERY_SERVICE_HOST": "localhost"}) as process:
        assert all(is_loopback(a) for a, _ in listening_addresses(process.pid))


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--port", "http"], {}, "--port='http' is malformed"),
        (["--port", "70000"], {}, "--port='70000' is malformed (at most 65535)"),
        ([], {"FLYTEPLUGINS_BIGQUERY_SERVICE_PORT": "-1"}, "FLYTEPLUGINS_BIGQUERY_SERVICE_PORT='-1' is malformed"),
        ([], {"FLYTEPLUGINS_BIGQUERY_SERVICE_WORKERS": "0"}, "FLYTEPLUGINS_BIGQUERY_SERVICE_WORKERS='0' is malformed"),
        (["--host", "not a host!"], {}, "--host='not a host!' is malformed; expected an IP address or a host name"),
        (["--grace", "soon"], {}, "--grace='soon' is malformed"),
        ([], {"FLYTEKITPLUGINS_BIGQUERY_MAX_WORKERS": "many"}, "FLYTEKITPLUGINS_BIGQUERY_MAX_WORKERS='many'"),
    ],
    ids=["port-word", "port-range", "port-env", "workers-env", "host", "grace", "plugin-setting"],
)
def test_a_malformed_setting_exits_2_naming_it(args: list[str], env: dict[str, str], named: str) -> None:
    done = launch(*args, env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert named in done.stderr
    assert "Traceback" not in done.stderr


def test_a_flag_wins_over_its_environment_variable() -> None:
    done = launch("--port", "x", env={"FLYTEPLUGINS_BIGQUERY_SERVICE_PORT": "0"})
    assert done.returncode == 2 and "--port='x'" in done.stderr


def test_a_second_service_on_a_busy_port_fails_to_start(service: ServiceProcess) -> None:
    done = launch("--port", str(service.port))
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"cannot listen on 127.0.0.1:{service.port}" in done.stderr


def test_a_module_that_cannot_be_loaded_fails_the_start() -> None:
    done = launch("--port", "0", "--modules", "no_such_connector_module")
    assert done.returncode == 1, done.stderr[-2000:]
    assert "cannot load the connector module 'no_such_connector_module'" in done.stderr


def test_calls_in_flight_finish_after_sigterm() -> None:
    async def scenario(process: ServiceProcess) -> list[str]:
        async with grpc.aio.insecure_channel(process.target, options=GRPC_OPTIONS) as channel:
            stub = AsyncConnectorServiceStub(channel)
            meta = (await stub.CreateTask(create_request(), timeout=30)).resource_meta
            stream = stub.GetTaskLogs(pb.GetTaskLogsRequest(task_category=ECHO_CATEGORY, resource_meta=meta))
            responses = [await stream.read()]
            os.kill(process.pid, signal.SIGTERM)
            while (response := await stream.read()) is not grpc.aio.EOF:
                responses.append(response)
            return [line.message for r in responses for line in r.body.lines]

    with service_process() as process:
        assert asyncio.run(scenario(process)) == list(LOG_LINES)
        assert process.wait() == 0
