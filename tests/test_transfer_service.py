"""Load, extract and copy tasks through the real connector service (flyteidl over gRPC), with the fault proxy
in front of the local BigQuery: one job per attempt whatever fails on the way, a repeated create adopts the
job, a later attempt reuses a healthy one, delete cancels, and the timeout reaches BigQuery."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pandas as pd
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service.agent_pb2_grpc import AgentMetadataServiceStub, AsyncAgentServiceStub
from flytekit import FlyteContextManager
from flytekit.core.base_task import TaskMetadata
from google.cloud import bigquery

from flytekitplugins.bigquery import BigQueryConfig, BigQueryCopyTask, BigQueryExtractTask, BigQueryLoadTask
from flytekitplugins.bigquery.testing import Emulator
from flytekitplugins.bigquery.testing.requests import template_of
from flytekitplugins.bigquery.testing.service_process import GRPC_OPTIONS

from . import helpers as h

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def setup(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A dataset with a ``source`` table, and a Parquet file on gs:// to load."""
    dataset = f"svc_transfer_{uuid.uuid4().hex[:8]}"
    client = emulator.client()
    client.create_dataset(dataset)
    client.query(f"CREATE TABLE {dataset}.source AS SELECT x AS n FROM UNNEST([1, 2, 3]) AS x").result()
    local = tmp_path_factory.mktemp("svc") / "f.parquet"
    pd.DataFrame({"n": [1, 2, 3]}).to_parquet(local, index=False)
    uri = f"gs://{h.BUCKET}/svc-{uuid.uuid4().hex[:8]}/f.parquet"
    FlyteContextManager.current_context().file_access.put_data(str(local), uri)
    yield {"dataset": dataset, "file": uri}
    client.delete_dataset(dataset, delete_contents=True)
    client.close()


def _task(kind: str, emulator: Emulator, setup: dict[str, str], **kwargs: Any) -> Any:
    """A task of ``kind`` that reads its source from a ``source`` input and writes somewhere new."""
    config = BigQueryConfig(ProjectID=emulator.project, Location="US")
    dataset, unique = setup["dataset"], uuid.uuid4().hex[:8]
    if kind == "load":
        return BigQueryLoadTask(
            name="svc.load", task_config=config, destination=f"{dataset}.l_{unique}", source_type=str, **kwargs
        )
    if kind == "extract":
        folder = f"gs://{h.BUCKET}/svc-extract-{unique}"
        return BigQueryExtractTask(
            name="svc.extract", task_config=config, destination=folder, source_type=str, **kwargs
        )
    return BigQueryCopyTask(
        name="svc.copy", task_config=config, destination=f"{dataset}.c_{unique}", source_type=str, **kwargs
    )


def _source(kind: str, setup: dict[str, str]) -> str:
    return setup["file"] if kind == "load" else f"{setup['dataset']}.source"


def _category(task: Any) -> agent_pb2.TaskCategory:
    return agent_pb2.TaskCategory(name=task.task_type, version=0)


def _create(stub: AsyncAgentServiceStub, task: Any, source: str, execution: str, attempt: int = 0) -> bytes:
    request = h.create_request(task, execution, attempt, source=source)
    return bytes(stub.CreateTask(request, timeout=60).resource_meta)


def _meta(resource_meta: bytes) -> dict[str, Any]:
    return json.loads(resource_meta)


def _count(client: bigquery.Client, execution: str) -> int:
    return len(h.jobs_of(client, execution))


KINDS = ["load", "extract", "copy"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_runs_through_the_service_and_returns_its_output(
    kind: str, agents: AsyncAgentServiceStub, emulator: Emulator, setup: dict[str, str]
) -> None:
    task = _task(kind, emulator, setup)
    meta = _create(agents, task, _source(kind, setup), h.new_execution())
    resource = h.poll(agents, meta, category=_category(task))
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    (name,) = resource.outputs.literals
    scalar = resource.outputs.literals[name].scalar
    if kind == "extract":
        assert (name, scalar.blob.uri) == ("directory", task._definition.spec["destination"])
    else:
        assert name == "table" and scalar.structured_dataset.uri.startswith(f"bq://{emulator.project}:")
    info = json.loads(json.dumps(dict(resource.custom_info)))
    assert info["job_type"] == kind.upper() and info["job_id"] == _meta(meta)["job_id"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_repeated_create_adopts_the_same_job(
    kind: str, agents: AsyncAgentServiceStub, emulator: Emulator, setup: dict[str, str], bq_client: bigquery.Client
) -> None:
    task, execution = _task(kind, emulator, setup), h.new_execution()
    first, second = (_meta(_create(agents, task, _source(kind, setup), execution)) for _ in range(2))
    assert first["job_id"] == second["job_id"]
    assert _count(bq_client, execution) == 1


FAULTS = [
    pytest.param({"action": "status", "status": 503}, id="503"),
    pytest.param({"action": "status", "status": 429, "retry_after": 1}, id="429-retry-after"),
    pytest.param({"action": "drop"}, id="response-lost"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", FAULTS)
def test_a_fault_on_insert_starts_no_second_job(
    kind: str,
    fault: dict[str, Any],
    agents_via_proxy: AsyncAgentServiceStub,
    faults: Any,
    emulator: Emulator,
    setup: dict[str, str],
    bq_client: bigquery.Client,
) -> None:
    task, execution = _task(kind, emulator, setup), h.new_execution()
    rule = faults.add_rule(method="POST", path=h.INSERT_PATH, count=1, **fault)
    meta = _create(agents_via_proxy, task, _source(kind, setup), execution)
    resource = h.poll(agents_via_proxy, meta, category=_category(task))
    assert rule.applied == 1
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert _count(bq_client, execution) == 1


def test_a_later_attempt_reuses_the_job_of_an_earlier_one(
    agents: AsyncAgentServiceStub, emulator: Emulator, setup: dict[str, str], bq_client: bigquery.Client
) -> None:
    task, execution = _task("copy", emulator, setup), h.new_execution()
    first = _meta(_create(agents, task, _source("copy", setup), execution, attempt=0))
    second = _meta(_create(agents, task, _source("copy", setup), execution, attempt=1))
    assert (second["job_id"], second["reused_from_attempt"]) == (first["job_id"], 0)
    assert _count(bq_client, execution) == 1


def test_delete_cancels_the_job(
    agents_via_proxy: AsyncAgentServiceStub, faults: Any, emulator: Emulator, setup: dict[str, str]
) -> None:
    task = _task("load", emulator, setup)
    meta = _create(agents_via_proxy, task, setup["file"], h.new_execution())
    agents_via_proxy.DeleteTask(
        agent_pb2.DeleteTaskRequest(task_category=_category(task), resource_meta=meta), timeout=30
    )
    job_id = _meta(meta)["job_id"]
    assert any(e.method == "POST" and e.path.endswith(f"/jobs/{job_id}/cancel") for e in faults.log)


def test_the_tasks_timeout_bounds_the_job_in_bigquery(
    agents: AsyncAgentServiceStub, emulator: Emulator, setup: dict[str, str], bq_client: bigquery.Client
) -> None:
    task = _task("load", emulator, setup, metadata=TaskMetadata(timeout=dt.timedelta(minutes=5)))
    meta = _meta(_create(agents, task, setup["file"], h.new_execution()))
    assert bq_client.get_job(meta["job_id"], location="US").to_api_repr()["configuration"]["jobTimeoutMs"] == "300000"
    assert meta["deadline"] > 0


def test_a_refused_input_fails_with_the_task_and_input_named(
    agents: AsyncAgentServiceStub, emulator: Emulator, setup: dict[str, str], bq_client: bigquery.Client
) -> None:
    task, execution = _task("load", emulator, setup), h.new_execution()
    meta = _create(agents, task, "/home/me/data.parquet", execution)
    resource = h.poll(agents, meta, category=_category(task))
    assert resource.phase == TaskExecution.FAILED
    assert "task 'svc.load'" in resource.message and "input 'source' is on a local path" in resource.message
    assert "/home/me" not in resource.message
    assert _count(bq_client, execution) == 0


def test_the_template_is_what_pyflyte_register_writes(emulator: Emulator, setup: dict[str, str]) -> None:
    template = template_of(_task("copy", emulator, setup, operation="CLONE"))
    assert template.type == "bigquery_copy_job_task"
    assert template.custom["CopyJob"]["operationType"] == "CLONE"
    assert list(template.interface.outputs) == ["table"]
    assert template.interface.outputs["table"].type.structured_dataset_type is not None


def test_the_service_lists_the_load_extract_and_copy_connectors(service: Any) -> None:
    with grpc.insecure_channel(service.target, options=GRPC_OPTIONS) as channel:
        agents = AgentMetadataServiceStub(channel).ListAgents(agent_pb2.ListAgentsRequest(), timeout=10).agents
    served = {agent.name: list(agent.supported_task_types) for agent in agents}
    assert served["Bigquery Load Connector"] == ["bigquery_load_job_task"]
    assert served["Bigquery Extract Connector"] == ["bigquery_extract_job_task"]
    assert served["Bigquery Copy Connector"] == ["bigquery_copy_job_task"]
