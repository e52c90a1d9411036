"""Load, extract and copy tasks behind ``python -m flyteplugins.bigquery.service``, as Flyte 2's backend calls it:
the launcher in its own process (the connectors loaded from their ``flyte.connectors`` entry points), flyteidl2
``grpc.aio`` stubs over loopback, templates and inputs from Flyte 2's serializer, and the local BigQuery with its
``gs://`` in the session's GCS stand-in.

Sources here are ``gs://`` URIs and table names as ``str``, and ``flyte.io.File``/``Dir`` on ``gs://``: the
service decodes their literals into the core's source references (never reading them), as it decodes every
input without unpickling.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import flyte
import grpc
import pytest
import pytest_asyncio
from flyte.io import Dir, File
from flyte_bigquery_core.testing import Emulator, GcsEmulator
from flyte_bigquery_core.testing.service_process import ServiceProcess
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_pb2_grpc import AsyncConnectorServiceStub, ConnectorMetadataServiceStub
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteplugins.bigquery import BigQueryConfig, BigQueryCopyTask, BigQueryLoadTask, CopyConnector, LoadConnector

from . import helpers as h
from .service_helpers import GRPC_OPTIONS, inputs_of, service_process

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

DATASET = f"flyte2_svc_{uuid.uuid4().hex[:6]}"
CONFIG = BigQueryConfig(ProjectID=h.PROJECT, Location="US")


@pytest.fixture(scope="module")
def service(emulator: Emulator, gcs: GcsEmulator) -> Iterator[ServiceProcess]:
    """The launcher, its environment pointing at the session's local BigQuery; the module's dataset."""
    client = emulator.client()
    client.create_dataset(DATASET)
    with service_process(env={"FLYTEKITPLUGINS_BIGQUERY_RETRY_SECONDS": "5"}) as process:
        yield process
        assert process.stop() == 0, process.log_text()[-3000:]
    client.delete_dataset(DATASET, delete_contents=True)
    client.close()


@pytest_asyncio.fixture
async def stub(service: ServiceProcess) -> AsyncIterator[AsyncConnectorServiceStub]:
    async with grpc.aio.insecure_channel(service.target, options=GRPC_OPTIONS) as channel:
        yield AsyncConnectorServiceStub(channel)


def _task(kind: type, **options: Any) -> Any:
    """A task of ``kind`` in a task environment of its own (Flyte 2 serializes a task only as part of one)."""
    task = kind(plugin_config=CONFIG, **options)
    flyte.TaskEnvironment.from_task(f"env_{uuid.uuid4().hex[:8]}", task)
    return task


async def _run(stub: AsyncConnectorServiceStub, task: Any, execution: str, **inputs: Any) -> tuple[bytes, pb.Resource]:
    """CreateTask as Flyte 2's backend sends it for ``task`` (inputs: name → (type, value)), then GetTask until the
    attempt ends."""
    request = pb.CreateTaskRequest(
        template=h.template_of(task),
        inputs=await inputs_of(inputs),
        output_prefix="gs://unused/prefix",
        task_execution_metadata=h.execution_metadata(execution),
    )
    category = pb.TaskCategory(name=request.template.type, version=0)
    meta = (await stub.CreateTask(request, timeout=60)).resource_meta
    deadline = time.monotonic() + 60
    while True:
        got = await stub.GetTask(pb.GetTaskRequest(task_category=category, resource_meta=meta), timeout=60)
        if got.resource.phase in h.TERMINAL or time.monotonic() > deadline:
            return meta, got.resource
        await asyncio.sleep(0.1)


def _output_uri(resource: pb.Resource, name: str) -> str:
    [named] = [o for o in resource.outputs.literals if o.name == name]
    return str(named.value.scalar.structured_dataset.uri)


async def test_the_transfer_connectors_are_served_from_their_entry_points(service: ServiceProcess) -> None:
    async with grpc.aio.insecure_channel(service.target, options=GRPC_OPTIONS) as channel:
        listed = (await ConnectorMetadataServiceStub(channel).ListConnectors(pb.ListConnectorsRequest())).connectors
    served = {c.name: [t.name for t in c.supported_task_categories] for c in listed}
    assert served[LoadConnector.name] == ["bigquery_load_job_task"]
    assert served[CopyConnector.name] == ["bigquery_copy_job_task"]


async def test_a_load_then_a_copy_run_through_the_service_and_a_repeated_create_reattaches(
    stub: AsyncConnectorServiceStub, gcs: GcsEmulator, emulator: Emulator
) -> None:
    uri = f"gs://{h.BUCKET}/svc-{uuid.uuid4().hex[:6]}/rows.parquet"
    gcs.upload(uri, h.parquet_bytes(h.transfer_rows()))
    load = _task(BigQueryLoadTask, name="svc_load", destination=f"{DATASET}.rows", source_type=str)
    execution = h.new_execution()
    first, resource = await _run(stub, load, execution, source=(str, uri))
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert _output_uri(resource, "table") == f"bq://{h.PROJECT}:{DATASET}.rows"
    again, _ = await _run(stub, load, execution, source=(str, uri))  # the backend retried CreateTask
    assert again == first
    assert emulator.client().get_table(f"{DATASET}.rows").num_rows == 4  # loaded once (WRITE_APPEND)

    copy = _task(BigQueryCopyTask, name="svc_copy", destination=f"{DATASET}.copy", source_type=str)
    _, copied = await _run(stub, copy, h.new_execution(), source=(str, f"{DATASET}.rows"))
    assert copied.phase == TaskExecution.SUCCEEDED, copied.message
    assert emulator.client().get_table(f"{DATASET}.copy").num_rows == 4


@pytest.mark.parametrize("kind", [File, Dir])
async def test_a_file_or_directory_source_is_loaded_through_the_service(
    stub: AsyncConnectorServiceStub, gcs: GcsEmulator, emulator: Emulator, kind: type
) -> None:
    folder = f"gs://{h.BUCKET}/svc-{uuid.uuid4().hex[:6]}"
    gcs.upload(f"{folder}/rows.parquet", h.parquet_bytes(h.transfer_rows()))
    source = File(path=f"{folder}/rows.parquet") if kind is File else Dir(path=folder)
    table = f"{DATASET}.from_{kind.__name__.lower()}"
    load = _task(BigQueryLoadTask, name=f"svc_{kind.__name__.lower()}", destination=table, source_type=kind)
    _, resource = await _run(stub, load, h.new_execution(), source=(kind, source))
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert emulator.client().get_table(table).num_rows == 4


async def test_a_bad_source_is_failed_by_the_service_naming_the_task_and_input(stub: AsyncConnectorServiceStub) -> None:
    load = _task(BigQueryLoadTask, name="svc_bad", destination=f"{DATASET}.never", source_type=str)
    _, resource = await _run(stub, load, h.new_execution(), source=(str, "s3://b/k.parquet"))
    assert resource.phase == TaskExecution.FAILED
    assert "task 'svc_bad'" in resource.message and "input 'source' is on s3://" in resource.message
