"""Shared test helpers: serialize a task as Flyte would, drive the connector through its API, and build the
requests that Flyte's propeller sends to the connector service (the one module test modules share builders
through: no test module imports another)."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import os
import pickle
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flyte_bigquery_core.testing.faultproxy import dry_run_estimate as dry_run_estimate  # shared with tests/flyte2
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flytekit import FlyteContextManager, StructuredDataset
from flytekit.core.type_engine import TypeEngine
from flytekit.extend.backend.base_connector import Resource
from flytekit.extend.backend.utils import is_terminal_phase
from flytekit.models.literals import LiteralMap

from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask
from flytekitplugins.bigquery.connector import TASK_TYPE, BigQueryConnector
from flytekitplugins.bigquery.metadata import BigQueryMetadata
from flytekitplugins.bigquery.testing.requests import task_execution_metadata, template_of
from flytekitplugins.bigquery.testing.storm import jobs_by_execution as jobs_by_execution  # shared with benchmarks

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd
    from flyteidl.service.agent_pb2_grpc import AsyncAgentServiceStub
    from google.cloud import bigquery


def literals_of(task: Any, **inputs: Any) -> LiteralMap:
    ctx = FlyteContextManager.current_context()
    return TypeEngine.dict_to_literal_map(ctx, inputs, task.get_input_types())


def wait(connector: BigQueryConnector, meta: BigQueryMetadata, timeout: float = 60) -> Resource:
    """Poll ``get`` until the job reaches a terminal phase."""
    deadline = time.monotonic() + timeout
    while True:
        resource = asyncio.run(connector.get(meta))
        if is_terminal_phase(resource.phase) or time.monotonic() > deadline:
            return resource
        time.sleep(0.1)


def run(connector: BigQueryConnector, task: Any, **inputs: Any) -> tuple[BigQueryMetadata, Resource]:
    meta = asyncio.run(connector.create(template_of(task), literals_of(task, **inputs)))
    return meta, wait(connector, meta)


def execution_metadata(execution: str = "exec1", node: str = "n0", attempt: int = 0, task: str = "t") -> Any:
    """Flyte's ``TaskExecutionMetadata`` for one attempt, as the backend sends it with ``CreateTask``."""
    from flytekit.models.core.identifier import (
        Identifier,
        NodeExecutionIdentifier,
        ResourceType,
        TaskExecutionIdentifier,
        WorkflowExecutionIdentifier,
    )
    from flytekit.models.task import TaskExecutionMetadata

    task_execution_id = TaskExecutionIdentifier(
        task_id=Identifier(ResourceType.TASK, "flytesnacks", "development", task, "v1"),
        node_execution_id=NodeExecutionIdentifier(
            node, WorkflowExecutionIdentifier("flytesnacks", "development", execution)
        ),
        retry_attempt=attempt,
    )
    return TaskExecutionMetadata(task_execution_id, "ns", {}, {}, "sa", {}, None)


#: The content of pickle files that literals name by URI (``s3://b/<kind>``), as flytekit writes bytes, Decimal
#: and time inputs: what the literal decoders get from the blob store.
PICKLE_FILES = {
    "s3://b/bytes": pickle.dumps(b"\x00\xff"),
    "s3://b/decimal": pickle.dumps(decimal.Decimal("1.25")),
    "s3://b/time": pickle.dumps(datetime.time(1, 2, 3)),
}


# --- the connector service, as Flyte's propeller calls it ---------------------------------------------------

#: The task category of every request to the service.
CATEGORY = agent_pb2.TaskCategory(name=TASK_TYPE, version=0)
TERMINAL = {TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.RETRYABLE_FAILED, TaskExecution.ABORTED}
#: The connector's retry budget in the service fixtures (conftest.py): small, so a scenario where BigQuery
#: stays unavailable ends in seconds (the default is 60 s).
SERVICE_RETRY_SECONDS = "4"
#: The GCS stand-in's bucket (conftest.py creates it).
BUCKET = "flyte-tests"
#: Path regexes of BigQuery's ``jobs.insert`` and ``jobs.get``, for fault proxy rules.
INSERT_PATH = r"/projects/[^/]+/jobs$"
GET_JOB_PATH = r"/projects/[^/]+/jobs/[^/]+$"


def query_task(
    sql: str, project: str, inputs: dict[str, type] | None = None, output: bool = True, **config: Any
) -> Any:
    """A ``BigQueryTask`` named ``svc.query`` in ``project`` (location US), with a results output unless not."""
    return BigQueryTask(
        name="svc.query",
        query_template=sql,
        task_config=BigQueryConfig(ProjectID=project, Location="US", **config),
        inputs=inputs,
        output_structured_dataset_type=StructuredDataset if output else None,
    )


def new_execution() -> str:
    """A fresh execution name; lower case, so it equals its sanitized ``flyte_execution`` label."""
    return f"svc{uuid.uuid4().hex[:12]}"


def execution_metadata_pb(execution: str, attempt: int = 0, node: str = "n0") -> agent_pb2.TaskExecutionMetadata:
    """flyteidl's ``TaskExecutionMetadata`` of one attempt of ``svc.query``, as propeller sends it."""
    return task_execution_metadata("svc.query", execution, attempt, node)


def create_request(
    task: Any, execution: str, attempt: int = 0, template: Any = None, **inputs: Any
) -> agent_pb2.CreateTaskRequest:
    """The ``CreateTaskRequest`` for one attempt of ``task`` with ``inputs``."""
    return agent_pb2.CreateTaskRequest(
        template=template if template is not None else template_of(task).to_flyte_idl(),
        inputs=literals_of(task, **inputs).to_flyte_idl(),
        output_prefix="s3://bucket/prefix",
        task_execution_metadata=execution_metadata_pb(execution, attempt),
    )


def get_resource(
    stub: AsyncAgentServiceStub, resource_meta: bytes, category: agent_pb2.TaskCategory = CATEGORY
) -> agent_pb2.Resource:
    """One ``GetTask`` call (for a task of ``category``: the query task's by default)."""
    return stub.GetTask(
        agent_pb2.GetTaskRequest(task_category=category, resource_meta=resource_meta), timeout=30
    ).resource


def poll(
    stub: AsyncAgentServiceStub,
    resource_meta: bytes,
    timeout: float = 30,
    category: agent_pb2.TaskCategory = CATEGORY,
) -> agent_pb2.Resource:
    """``GetTask`` until the phase is terminal (or ``timeout`` s have passed)."""
    deadline = time.monotonic() + timeout
    while True:
        resource = get_resource(stub, resource_meta, category)
        if resource.phase in TERMINAL or time.monotonic() > deadline:
            return resource
        time.sleep(0.1)


def jobs_of(client: bigquery.Client, execution: str) -> list[Any]:
    """The emulator's jobs of one execution, by the ``flyte_execution`` label (kept on listed jobs)."""
    return [job for job in client.list_jobs() if (job.labels or {}).get("flyte_execution") == execution]


def results_uri(resource: agent_pb2.Resource) -> str:
    """The ``bq://`` URI of a finished task's ``results`` output."""
    return str(resource.outputs.literals["results"].scalar.structured_dataset.uri)


def rows_of(client: bigquery.Client, uri: str) -> list[dict[str, Any]]:
    """The rows of the table a ``bq://`` URI names."""
    return [dict(r) for r in client.list_rows(uri.removeprefix("bq://").replace(":", "."))]


def group_pids(pgid: int) -> list[int]:
    """The processes of a process group, from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:  # field 5: the process group
                pids.append(int(entry))
    return pids


# --- counting jobs without listing them all ------------------------------------------------------------------


def jobs_by_id(
    client: bigquery.Client, job_ids: Iterable[str], location: str | None = "US", workers: int = 16
) -> dict[str, Any]:
    """The jobs the local BigQuery holds under these ids (``jobs.get`` each, ``workers`` at a time); ids it
    does not hold are absent from the answer. Job ids are deterministic (execution, node, attempt, query), so
    the jobs an execution could have started are a known, short list: this counts them in time proportional
    to that list, where ``jobs.list`` (which the emulator can only answer whole, without a label filter)
    grows with every job the emulator ever ran."""
    from google.api_core.exceptions import NotFound

    def get(job_id: str) -> tuple[str, Any]:
        try:
            return job_id, client.get_job(job_id, location=location)
        except NotFound:
            return job_id, None

    wanted = sorted(set(job_ids))
    with ThreadPoolExecutor(max(1, min(workers, len(wanted)))) as pool:
        return {job_id: job for job_id, job in pool.map(get, wanted) if job is not None}


# --- what the local BigQuery cannot do, played through the fault proxy or the real CLI ------------------------


def pyflyte_run(emulator: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """``pyflyte run ARGS`` from the repository root against the emulator, through the real CLI."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "pyflyte"), "run", *args],
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, **emulator.env()},
        capture_output=True,
        text=True,
        timeout=300,
    )


# --- load, extract and copy tasks ------------------------------------------------------------------------------


def us_config(emulator: Any) -> BigQueryConfig:
    """The config of tasks run against the local BigQuery (its project, location US)."""
    return BigQueryConfig(ProjectID=emulator.project, Location="US")


def transfer_frame() -> pd.DataFrame:
    """Four rows of downloads (package, downloads, day) that load, extract and copy tests move around."""
    import pandas as pd

    days = pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02"]).date
    return pd.DataFrame(
        {"package": ["flytekit", "pandas", "pyarrow", "flytekit"], "downloads": [10, 20, 30, 40], "day": days}
    )


def local_files(folder: Path, frame: pd.DataFrame, kind: str, parts: int = 1) -> Path:
    """``frame`` written as ``parts`` files ``part<i>.<kind>`` (parquet, csv, json lines) in a new folder under
    ``folder``; returns that folder."""
    out = folder / uuid.uuid4().hex[:6]
    out.mkdir()
    for i in range(parts):
        chunk, path = frame.iloc[i::parts], out / f"part{i}.{kind}"
        if kind == "parquet":
            chunk.to_parquet(path, index=False)
        elif kind == "csv":
            chunk.to_csv(path, index=False)
        else:
            chunk.to_json(path, orient="records", lines=True, date_format="iso")
    return out


def parquet_file(folder: Path) -> Path:
    """:func:`transfer_frame` as one local Parquet file under ``folder``."""
    return local_files(folder, transfer_frame(), "parquet") / "part0.parquet"


def transfer_task(kind: type, emulator: Any, name: str, **options: Any) -> Any:
    """A load, extract or copy task (``kind``) named ``transfer.<name>`` for the local BigQuery."""
    return kind(name=f"transfer.{name}", task_config=us_config(emulator), **options)


def scalar(client: bigquery.Client, sql: str) -> Any:
    """The first value of the first row of ``sql``'s result."""
    return next(iter(client.query(sql).result()))[0]
