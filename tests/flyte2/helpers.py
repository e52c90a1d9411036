"""Builders the Flyte 2 tests share: templates as Flyte 2's serializer writes them, Flyte's execution metadata,
and driving the connector through its API until a job ends (no test module imports another)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
import uuid
from collections.abc import Iterator
from typing import Any

from flyte._internal.runtime.task_serde import get_proto_task
from flyte.connectors import Resource
from flyte.models import SerializationContext
from flyte_bigquery_core.settings import current_settings
from flyte_bigquery_core.testing.faultproxy import FaultProxy
from flyteidl2.connector.connector_pb2 import TaskExecutionMetadata
from flyteidl2.core import identifier_pb2
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteidl2.core.tasks_pb2 import TaskTemplate
from flyteplugins.bigquery import BigQueryConnector, BigQueryMetadata

PROJECT = "local-project"
#: The GCS stand-in's bucket (``conftest.gcs``).
BUCKET = "flyte2-tests"
#: Phases that end an attempt.
TERMINAL = {TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.RETRYABLE_FAILED, TaskExecution.ABORTED}


def template_of(task: Any, domain: str = "development") -> TaskTemplate:
    """The ``TaskTemplate`` Flyte 2 registers for ``task``."""
    return get_proto_task(task, SerializationContext(version="v1", project="flytesnacks", domain=domain))


def new_execution() -> str:
    return f"e{uuid.uuid4().hex[:12]}"


def execution_metadata(execution: str, attempt: int = 0, node: str = "n0", task: str = "t") -> TaskExecutionMetadata:
    """Flyte's ``TaskExecutionMetadata`` for one attempt, as the backend sends it with ``CreateTask``."""
    workflow = identifier_pb2.WorkflowExecutionIdentifier(project="flytesnacks", domain="development", name=execution)
    return TaskExecutionMetadata(
        task_execution_id=identifier_pb2.TaskExecutionIdentifier(
            task_id=identifier_pb2.Identifier(name=task),
            node_execution_id=identifier_pb2.NodeExecutionIdentifier(node_id=node, execution_id=workflow),
            retry_attempt=attempt,
        )
    )


def create(
    connector: BigQueryConnector, template: TaskTemplate, metadata: TaskExecutionMetadata | None = None, **inputs: Any
) -> BigQueryMetadata:
    return asyncio.run(
        connector.create(task_template=template, output_prefix="", inputs=inputs, task_execution_metadata=metadata)
    )


def wait(connector: BigQueryConnector, meta: BigQueryMetadata, timeout: float = 60) -> Resource:
    """Poll ``get`` until the job ends its attempt."""
    deadline = time.monotonic() + timeout
    while True:
        resource = asyncio.run(connector.get(meta))
        if resource.phase in TERMINAL or time.monotonic() > deadline:
            return resource
        time.sleep(0.1)


def run(connector: BigQueryConnector, task: Any, **inputs: Any) -> tuple[BigQueryMetadata, Resource]:
    meta = create(connector, template_of(task), None, **inputs)
    return meta, wait(connector, meta)


def phase(resource: Resource) -> str:
    return TaskExecution.Phase.Name(resource.phase)


def rows_of(client: Any, uri: str) -> list[dict[str, Any]]:
    """The rows of the result table a ``bq://project:dataset.table`` URI names."""
    table = uri.removeprefix("bq://").replace(":", ".")
    return [dict(row.items()) for row in client.list_rows(table)]


def job_of(client: Any, meta: BigQueryMetadata) -> Any:
    """The BigQuery job a handle refers to, as google-cloud-bigquery reads it."""
    return client.get_job(meta.job_id, project=meta.project, location=meta.location or None)


#: ``jobs.insert``'s path, for fault rules.
INSERT_PATH = r"/projects/[^/]+/jobs$"


@contextlib.contextmanager
def faults_in_front(emulator: Any, monkeypatch: Any) -> Iterator[FaultProxy]:
    """The fault-injecting proxy in front of the local BigQuery, and the settings pointing at it."""
    with FaultProxy(emulator.rest_url) as proxy:
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", proxy.url)
        current_settings.cache_clear()
        yield proxy
    current_settings.cache_clear()


def transfer_rows() -> list[dict[str, Any]]:
    """Four rows of downloads (package, downloads, day) that load, extract and copy tests move around."""
    days = [datetime.date(2024, 1, 1)] * 2 + [datetime.date(2024, 1, 2)] * 2
    packages = ["flyte", "pandas", "pyarrow", "flyte"]
    return [
        {"package": p, "downloads": 10 * (i + 1), "day": d} for i, (p, d) in enumerate(zip(packages, days, strict=True))
    ]


def parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    """``rows`` as one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return bytes(sink.getvalue().to_pybytes())


def csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    """``rows`` as CSV with a header line."""
    lines = [",".join(rows[0])] + [",".join(str(v) for v in row.values()) for row in rows]
    return ("\n".join(lines) + "\n").encode()
