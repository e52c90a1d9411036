"""The BigQuery connector behind ``python -m flyteplugins.bigquery.service``, as Flyte 2's backend calls it.

Real parts only: the launcher in its own process (loading the connector through the ``flyte.connectors`` entry
point), flyteidl2 ``grpc.aio`` stubs over loopback, templates and inputs from Flyte 2's serializer, the real
google-cloud-bigquery client inside the service, and the local BigQuery.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from flyte.io import DataFrame
from flyte_bigquery_core.testing.service_process import ServiceProcess
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_pb2_grpc import AsyncConnectorServiceStub, ConnectorMetadataServiceStub
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteplugins.bigquery import BigQueryConfig, BigQueryConnector, BigQueryMetadata, BigQueryTask
from flyteplugins.bigquery.connector import TASK_TYPE
from google.cloud import bigquery

from .helpers import PROJECT, TERMINAL, execution_metadata, new_execution, rows_of, template_of
from .service_helpers import GRPC_OPTIONS, MaliciousPickle, inputs_of, service_process

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

CATEGORY = pb.TaskCategory(name=TASK_TYPE, version=0)


@pytest.fixture(scope="module")
def service(emulator: Any) -> Iterator[ServiceProcess]:
    """The launcher, its environment pointing at the session's local BigQuery."""
    with service_process(env={"FLYTEKITPLUGINS_BIGQUERY_RETRY_SECONDS": "5"}) as process:
        yield process
        assert process.stop() == 0, process.log_text()[-3000:]


@pytest_asyncio.fixture
async def stub(service: ServiceProcess) -> AsyncIterator[AsyncConnectorServiceStub]:
    async with grpc.aio.insecure_channel(service.target, options=GRPC_OPTIONS) as channel:
        yield AsyncConnectorServiceStub(channel)


def _task(sql: str, inputs: dict[str, type] | None = None, output: bool = True) -> BigQueryTask:
    return BigQueryTask(
        name="svc_query",
        query_template=sql,
        plugin_config=BigQueryConfig(ProjectID=PROJECT),
        inputs=inputs,
        output_dataframe_type=DataFrame if output else None,
    )


async def _request(task: BigQueryTask, **inputs: tuple[type, Any]) -> pb.CreateTaskRequest:
    """The CreateTask Flyte 2's backend sends for ``task`` with ``inputs`` (name → (type, value))."""
    return pb.CreateTaskRequest(
        template=template_of(task),
        inputs=await inputs_of(inputs),
        output_prefix="s3://bucket/prefix",
        task_execution_metadata=execution_metadata(new_execution()),
    )


async def _run(stub: AsyncConnectorServiceStub, request: pb.CreateTaskRequest) -> tuple[bytes, pb.Resource]:
    """CreateTask, then GetTask until the attempt ends."""
    meta = (await stub.CreateTask(request, timeout=60)).resource_meta
    deadline = time.monotonic() + 60
    while True:
        got = await stub.GetTask(pb.GetTaskRequest(task_category=CATEGORY, resource_meta=meta), timeout=60)
        if got.resource.phase in TERMINAL or time.monotonic() > deadline:
            return meta, got.resource
        await asyncio.sleep(0.1)


def _results_uri(resource: pb.Resource) -> str:
    [named] = [o for o in resource.outputs.literals if o.name == "results"]
    return str(named.value.scalar.structured_dataset.uri)


async def test_the_bigquery_connector_is_served_from_its_entry_point(service: ServiceProcess) -> None:
    async with grpc.aio.insecure_channel(service.target, options=GRPC_OPTIONS) as channel:
        listed = (await ConnectorMetadataServiceStub(channel).ListConnectors(pb.ListConnectorsRequest())).connectors
    [ours] = [c for c in listed if c.name == BigQueryConnector.name]
    assert [(t.name, t.version) for t in ours.supported_task_categories] == [(TASK_TYPE, 0)]


async def test_create_get_returns_the_results_table(
    stub: AsyncConnectorServiceStub, bq_client: bigquery.Client
) -> None:
    _, resource = await _run(stub, await _request(_task("SELECT @n * 6 AS answer", {"n": int}), n=(int, 7)))
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    uri = _results_uri(resource)
    assert uri.startswith(f"bq://{PROJECT}:")
    assert rows_of(bq_client, uri) == [{"answer": 42}]


async def test_pickled_parameters_reach_bigquery_as_their_types(
    stub: AsyncConnectorServiceStub, bq_client: bigquery.Client
) -> None:
    task = _task(
        "SELECT @amount AS amount, @blob AS blob, @at AS at",
        {"amount": decimal.Decimal, "blob": bytes, "at": datetime.time},
    )
    request = await _request(
        task,
        amount=(decimal.Decimal, decimal.Decimal("-12345.678901234")),
        blob=(bytes, b"\x00\xffbin"),
        at=(datetime.time, datetime.time(12, 30, 15)),
    )
    _, resource = await _run(stub, request)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert rows_of(bq_client, _results_uri(resource)) == [
        {"amount": decimal.Decimal("-12345.678901234"), "blob": b"\x00\xffbin", "at": datetime.time(12, 30, 15)}
    ]


async def test_a_malicious_pickle_is_refused_before_any_job(stub: AsyncConnectorServiceStub, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    request = await _request(
        _task("SELECT @n AS n", {"n": decimal.Decimal}), n=(MaliciousPickle, MaliciousPickle(marker))
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateTask(request, timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (info.value.details() or "").startswith("task 'svc_query': input 'n': Pickled input: refusing to unpickle")
    assert not marker.exists()


async def test_a_failed_query_is_failed_with_bigquerys_reason(stub: AsyncConnectorServiceStub) -> None:
    _, resource = await _run(stub, await _request(_task("SELECT * FROM svc_missing_dataset.t", output=False)))
    assert resource.phase == TaskExecution.FAILED
    assert "svc_missing_dataset" in resource.message


async def test_delete_cancels_idempotently(stub: AsyncConnectorServiceStub) -> None:
    # The job is left to finish first: the local BigQuery ignores cancel, and cancelling one of its jobs while
    # it runs sometimes answers 400 "invalidQuery: Connection already closed!" (its DuckDB connection racing
    # the cancel), which real BigQuery never does. A cancel of a finished job is answered as BigQuery does.
    meta, _ = await _run(stub, await _request(_task("SELECT 1 AS one", output=False)))
    delete = pb.DeleteTaskRequest(task_category=CATEGORY, resource_meta=meta)
    await stub.DeleteTask(delete, timeout=60)
    await stub.DeleteTask(delete, timeout=60)  # again: not an error
    got = await stub.GetTask(pb.GetTaskRequest(task_category=CATEGORY, resource_meta=meta), timeout=60)
    assert got.resource.phase == TaskExecution.SUCCEEDED


async def test_get_task_logs_streams_the_jobs_lines(stub: AsyncConnectorServiceStub) -> None:
    meta, _ = await _run(stub, await _request(_task("SELECT 1 AS one", output=False)))
    stream = stub.GetTaskLogs(pb.GetTaskLogsRequest(task_category=CATEGORY, resource_meta=meta), timeout=60)
    lines = [line.message async for response in stream for line in response.body.lines]
    job_id = BigQueryMetadata.decode(meta).job_id
    assert any(job_id in line for line in lines), lines
    assert "statement type: SELECT" in lines


async def test_get_task_metrics_reports_the_job(stub: AsyncConnectorServiceStub) -> None:
    meta, _ = await _run(stub, await _request(_task("SELECT 1 AS one", output=False)))
    request = pb.GetTaskMetricsRequest(task_category=CATEGORY, resource_meta=meta)
    results = (await stub.GetTaskMetrics(request, timeout=60)).results
    assert {r.metric for r in results} == {"BIGQUERY_JOB_TIMELINE", "BIGQUERY_JOB_STATISTICS"}
