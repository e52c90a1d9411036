"""The connector behind flytekit's real gRPC service, as Flyte's propeller calls it.

Real parts only: ``python -m flytekitplugins.bigquery.service`` in its own process (flytekit's servicers
on grpc.aio), flyteidl's stubs over loopback gRPC, the real google-cloud-bigquery client inside the
service, and the local BigQuery emulator. Fault scenarios put
:class:`~flyte_bigquery_core.testing.faultproxy.FaultProxy` between a second service instance and the emulator.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from flyte_bigquery_core.testing.faultproxy import FaultProxy
from flyte_bigquery_core.testing.sockets import is_loopback, listening_addresses, reachable_off_loopback
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service.agent_pb2_grpc import AgentMetadataServiceStub, AsyncAgentServiceStub
from google.cloud import bigquery
from google.protobuf import json_format

from flytekitplugins.bigquery.connector import TASK_TYPE, BigQueryConnector
from flytekitplugins.bigquery.metadata import BigQueryMetadata
from flytekitplugins.bigquery.testing.service_process import GRPC_OPTIONS, ServiceProcess

from .helpers import (
    CATEGORY,
    GET_JOB_PATH,
    INSERT_PATH,
    SERVICE_RETRY_SECONDS,
    create_request,
    get_resource,
    jobs_of,
    new_execution,
    poll,
    query_task,
    results_uri,
    rows_of,
    template_of,
)

pytestmark = pytest.mark.integration


# --- fixtures (service, proxy, proxied_service, faults, agents, agents_via_proxy: conftest.py) ------------


@pytest.fixture(scope="module")
def metadata_stub(service: ServiceProcess) -> Iterator[AgentMetadataServiceStub]:
    with grpc.insecure_channel(service.target, options=GRPC_OPTIONS) as channel:
        yield AgentMetadataServiceStub(channel)


# --- helpers ------------------------------------------------------------------------------------------


def _assert_still_serving(stub: AsyncAgentServiceStub, project: str) -> None:
    """A malformed request must not take the service down: a valid one still works end to end."""
    task = query_task("SELECT 1 AS one", project, output=False)
    meta = stub.CreateTask(create_request(task, new_execution()), timeout=30).resource_meta
    assert poll(stub, meta).phase == TaskExecution.SUCCEEDED


# --- metadata -----------------------------------------------------------------------------------------


def test_list_agents_includes_the_bigquery_connector(metadata_stub: AgentMetadataServiceStub) -> None:
    agents = metadata_stub.ListAgents(agent_pb2.ListAgentsRequest(), timeout=10).agents
    ours = [a for a in agents if TASK_TYPE in a.supported_task_types]
    assert len(ours) == 1
    assert not ours[0].is_sync
    assert [(c.name, c.version) for c in ours[0].supported_task_categories] == [(TASK_TYPE, 0)]

    agent = metadata_stub.GetAgent(agent_pb2.GetAgentRequest(name=ours[0].name), timeout=10).agent
    assert agent.name == BigQueryConnector.name
    assert list(agent.supported_task_types) == [TASK_TYPE]


# --- the task lifecycle -------------------------------------------------------------------------------


def test_create_get_returns_a_structured_dataset_of_the_results(
    agents: AsyncAgentServiceStub, emulator: Any, bq_client: bigquery.Client
) -> None:
    task = query_task("SELECT @n * 6 AS answer", emulator.project, inputs={"n": int})
    created = agents.CreateTask(create_request(task, new_execution(), n=7), timeout=30)
    resource = poll(agents, created.resource_meta)

    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    uri = results_uri(resource)
    assert uri.startswith(f"bq://{emulator.project}:")
    assert rows_of(bq_client, uri) == [{"answer": 42}]
    assert resource.log_links[0].uri.startswith("https://console.cloud.google.com/bigquery?")
    info = json_format.MessageToDict(resource.custom_info)
    assert info["job_id"] == BigQueryMetadata.decode(created.resource_meta).job_id


def test_create_twice_for_one_attempt_is_one_job(
    agents: AsyncAgentServiceStub, emulator: Any, bq_client: bigquery.Client
) -> None:
    task = query_task("SELECT @n AS n", emulator.project, inputs={"n": int})
    execution = new_execution()
    request = create_request(task, execution, n=1)
    first = agents.CreateTask(request, timeout=30).resource_meta
    second = agents.CreateTask(request, timeout=30).resource_meta  # Flyte re-sending a lost CreateTask

    assert second == first
    jobs = jobs_of(bq_client, execution)
    assert [j.job_id for j in jobs] == [BigQueryMetadata.decode(first).job_id]
    assert jobs[0].labels["flyte_node"] == "n0" and jobs[0].labels["flyte_attempt"] == "0"
    assert poll(agents, second).phase == TaskExecution.SUCCEEDED


def test_a_new_attempt_after_a_failed_one_starts_a_new_job(
    agents: AsyncAgentServiceStub, emulator: Any, bq_client: bigquery.Client
) -> None:
    task = query_task("SELECT * FROM svc_missing_dataset.t", emulator.project)
    execution = new_execution()
    first = agents.CreateTask(create_request(task, execution, attempt=0), timeout=30).resource_meta
    assert poll(agents, first).phase == TaskExecution.FAILED
    second = agents.CreateTask(create_request(task, execution, attempt=1), timeout=30).resource_meta

    ids = {BigQueryMetadata.decode(m).job_id for m in (first, second)}
    assert len(ids) == 2
    jobs = jobs_of(bq_client, execution)
    assert {j.job_id for j in jobs} == ids
    assert sorted(j.labels["flyte_attempt"] for j in jobs) == ["0", "1"]


def test_failed_query_is_failed_with_bigquerys_reason(agents: AsyncAgentServiceStub, emulator: Any) -> None:
    task = query_task("SELECT * FROM svc_missing_dataset.t", emulator.project)
    meta = agents.CreateTask(create_request(task, new_execution()), timeout=30).resource_meta
    resource = poll(agents, meta)
    assert resource.phase == TaskExecution.FAILED
    assert "BigQuery job failed" in resource.message
    assert "notFound" in resource.message and "svc_missing_dataset" in resource.message


def test_user_error_is_a_failed_task_not_a_grpc_error(
    agents: AsyncAgentServiceStub, emulator: Any, bq_client: bigquery.Client
) -> None:
    task = query_task("SELECT @missing + @x AS y", emulator.project, inputs={"x": int})
    execution = new_execution()
    meta = agents.CreateTask(create_request(task, execution, x=1), timeout=30).resource_meta  # no RpcError
    resource = get_resource(agents, meta)
    assert resource.phase == TaskExecution.FAILED
    assert "@missing" in resource.message and "declared inputs: x" in resource.message
    assert "Traceback" not in resource.message
    assert jobs_of(bq_client, execution) == []


def test_delete_cancels_idempotently_and_tolerates_missing_jobs(agents: AsyncAgentServiceStub, emulator: Any) -> None:
    task = query_task("SELECT COUNT(*) AS c FROM UNNEST(GENERATE_ARRAY(1, 300000)) a", emulator.project, output=False)
    meta = agents.CreateTask(create_request(task, new_execution()), timeout=30).resource_meta
    delete = agent_pb2.DeleteTaskRequest(task_category=CATEGORY, resource_meta=meta)
    agents.DeleteTask(delete, timeout=30)
    agents.DeleteTask(delete, timeout=30)  # again: not an error
    assert poll(agents, meta).phase in (TaskExecution.ABORTED, TaskExecution.SUCCEEDED)

    missing = BigQueryMetadata(job_id=f"no-such-job-{uuid.uuid4().hex}", project=emulator.project, location="US")
    agents.DeleteTask(agent_pb2.DeleteTaskRequest(task_category=CATEGORY, resource_meta=missing.encode()), timeout=30)


def _finished_job(agents: AsyncAgentServiceStub, project: str) -> bytes:
    """The resource meta of a task (``SELECT 1 AS one``) that has run to its end."""
    task = query_task("SELECT 1 AS one", project)
    meta = agents.CreateTask(create_request(task, new_execution())).resource_meta
    poll(agents, meta)
    return meta


def test_get_task_metrics_reports_the_job(agents: AsyncAgentServiceStub, emulator: Any) -> None:
    meta = _finished_job(agents, emulator.project)
    request = agent_pb2.GetTaskMetricsRequest(task_category=CATEGORY, resource_meta=meta)
    results = agents.GetTaskMetrics(request, timeout=30).results
    assert {r.metric for r in results} == {"BIGQUERY_JOB_TIMELINE", "BIGQUERY_JOB_STATISTICS"}
    timeline = next(json_format.MessageToDict(r.data) for r in results if r.metric == "BIGQUERY_JOB_TIMELINE")
    assert "created_ms" in timeline


def test_get_task_logs_stream_is_empty_in_flytekit_1_16(agents: AsyncAgentServiceStub, emulator: Any) -> None:
    meta = _finished_job(agents, emulator.project)
    request = agent_pb2.GetTaskLogsRequest(task_category=CATEGORY, resource_meta=meta)
    # Known gap in flytekit 1.16: AsyncConnectorService.GetTaskLogs is a coroutine returning one response,
    # but the RPC is server-streaming, so grpc.aio awaits it, discards the value and ends the stream empty.
    # The call succeeds with no messages whatever the connector returns; the lines are only reachable by
    # calling the connector directly (or through the console link in log_links).
    assert list(agents.GetTaskLogs(request, timeout=30)) == []

    lines = asyncio.run(BigQueryConnector().get_logs(BigQueryMetadata.decode(meta))).body.results
    job_id = BigQueryMetadata.decode(meta).job_id
    assert any(job_id in line for line in lines)
    assert "statement type: SELECT" in lines


def test_template_in_the_upstream_plugins_format_runs_unchanged(
    agents: AsyncAgentServiceStub, emulator: Any, bq_client: bigquery.Client
) -> None:
    task = query_task("SELECT @n + 1 AS m", emulator.project, inputs={"n": int})
    template = template_of(task).to_flyte_idl()
    # What flytekitplugins-bigquery 1.16 writes: Location, ProjectID, Domain and the QueryJobConfig's
    # ``query`` section flattened, nothing else (no InputTypes, no full QueryJobConfig).
    upstream_config = bigquery.QueryJobConfig(use_query_cache=False, priority="INTERACTIVE")
    custom = {"Location": "US", "ProjectID": emulator.project, "Domain": None}
    custom.update(upstream_config.to_api_repr()["query"])
    assert custom["useQueryCache"] is False and custom["priority"] == "INTERACTIVE"
    template.custom.Clear()
    template.custom.update(custom)

    execution = new_execution()
    meta = agents.CreateTask(create_request(task, execution, template=template, n=41), timeout=30).resource_meta
    resource = poll(agents, meta)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert rows_of(bq_client, results_uri(resource)) == [{"m": 42}]
    [job] = jobs_of(bq_client, execution)
    assert job.use_query_cache is False and job.priority == "INTERACTIVE"


# --- malformed requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage", [b"\x00\xffnot json", b"[1, 2]", b'{"location": "US"}'], ids=["bytes", "list", "keys"]
)
def test_garbage_resource_meta_is_a_clear_grpc_error(
    agents: AsyncAgentServiceStub, emulator: Any, garbage: bytes
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        get_resource(agents, garbage)
    # flytekit's service turns any exception into INTERNAL; ours names what is wrong.
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "resource_meta" in info.value.details()
    assert "InvalidMetadataError" in info.value.details()
    _assert_still_serving(agents, emulator.project)


def test_unknown_task_type_is_not_found(agents: AsyncAgentServiceStub, emulator: Any) -> None:
    task = query_task("SELECT 1", emulator.project, output=False)
    request = create_request(task, new_execution())
    request.template.type = "no_such_task_type"
    with pytest.raises(grpc.RpcError) as info:
        agents.CreateTask(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no_such_task_type" in info.value.details()

    with pytest.raises(grpc.RpcError) as info:
        agents.GetTask(
            agent_pb2.GetTaskRequest(
                task_category=agent_pb2.TaskCategory(name="no_such_task_type"), resource_meta=b"{}"
            ),
            timeout=30,
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    _assert_still_serving(agents, emulator.project)


# --- where it listens ---------------------------------------------------------------------------------


def test_service_listens_on_loopback_only(service: ServiceProcess) -> None:
    addresses = listening_addresses(service.pid)
    assert addresses, "the service listens on nothing?"
    assert service.port in {port for _, port in addresses}, addresses
    for address, _ in addresses:
        assert is_loopback(address), f"the service listens on {address}: {addresses}"
    assert not reachable_off_loopback(service.port)


def test_a_second_service_on_a_busy_port_fails_to_start(service: ServiceProcess) -> None:
    command = [sys.executable, "-m", "flytekitplugins.bigquery.service", "--port", str(service.port)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{service.port}" in done.stderr


# --- faults between the service and BigQuery ----------------------------------------------------------


def _run(stub: AsyncAgentServiceStub, project: str, execution: str) -> tuple[bytes, agent_pb2.Resource]:
    task = query_task("SELECT @n AS n", project, inputs={"n": int})
    meta = stub.CreateTask(create_request(task, execution, n=5), timeout=60).resource_meta
    return meta, poll(stub, meta)


def test_insert_answering_503_twice_then_ok_is_one_successful_job(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any, bq_client: bigquery.Client
) -> None:
    faults.add_rule("status", "POST", INSERT_PATH, count=2, status=503)
    execution = new_execution()
    _, resource = _run(agents_via_proxy, emulator.project, execution)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert [e.status for e in faults.exchanges("jobs.insert")] == [503, 503, 200]
    assert faults.injected["status:503"] == 2
    assert len(jobs_of(bq_client, execution)) == 1


def test_lost_insert_response_reattaches_to_the_one_job(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any, bq_client: bigquery.Client
) -> None:
    faults.add_rule("drop", "POST", INSERT_PATH, count=1)
    execution = new_execution()
    meta, resource = _run(agents_via_proxy, emulator.project, execution)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    inserts = faults.exchanges("jobs.insert")
    # The emulator created the job, the client never heard; its retry got 409 and adopted the job.
    assert [(e.upstream_status, e.status) for e in inserts] == [(200, None), (409, 409)]
    [job] = jobs_of(bq_client, execution)
    assert job.job_id == BigQueryMetadata.decode(meta).job_id


def test_jobs_get_500_is_retried_transparently(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any
) -> None:
    task = query_task("SELECT 1 AS one", emulator.project, output=False)
    meta = agents_via_proxy.CreateTask(create_request(task, new_execution()), timeout=60).resource_meta
    faults.add_rule("status", "GET", GET_JOB_PATH, count=1, status=500)
    faults.add_rule("reset", "GET", GET_JOB_PATH, count=1)
    resource = get_resource(agents_via_proxy, meta)  # one GetTask; the retries happen inside it
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert [e.status for e in faults.exchanges("jobs.get")] == [500, None, 200]


def test_429_with_retry_after_is_retried(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any, bq_client: bigquery.Client
) -> None:
    faults.add_rule("status", "POST", INSERT_PATH, count=1, status=429, retry_after=1)
    execution = new_execution()
    _, resource = _run(agents_via_proxy, emulator.project, execution)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert [e.status for e in faults.exchanges("jobs.insert")] == [429, 200]
    assert len(jobs_of(bq_client, execution)) == 1


def test_bigquery_unavailable_throughout_is_a_retryable_failure(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any, bq_client: bigquery.Client
) -> None:
    faults.add_rule("status", "POST", INSERT_PATH, count=None, status=503)
    execution = new_execution()
    started = time.monotonic()
    _, resource = _run(agents_via_proxy, emulator.project, execution)
    assert time.monotonic() - started < float(SERVICE_RETRY_SECONDS) + 5
    assert resource.phase == TaskExecution.RETRYABLE_FAILED
    assert "unavailable" in resource.message
    assert len(faults.exchanges("jobs.insert")) >= 2
    assert jobs_of(bq_client, execution) == []


def test_bigquery_unavailable_while_polling_keeps_the_task_running(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any
) -> None:
    task = query_task("SELECT 1 AS one", emulator.project, output=False)
    meta = agents_via_proxy.CreateTask(create_request(task, new_execution()), timeout=60).resource_meta
    faults.add_rule("status", "GET", GET_JOB_PATH, count=None, status=503)
    resource = get_resource(agents_via_proxy, meta)
    assert resource.phase == TaskExecution.RUNNING
    assert "will check again" in resource.message
    faults.clear()
    assert poll(agents_via_proxy, meta).phase == TaskExecution.SUCCEEDED


# --- a new Flyte attempt reuses the job an earlier attempt started (no second job) ---------------------


def _cancelled(job: dict[str, Any]) -> dict[str, Any]:
    """What BigQuery reports for a cancelled job (the local BigQuery accepts jobs.cancel but runs on)."""
    job["status"] = {
        "state": "DONE",
        "errorResult": {"reason": "stopped", "message": "Job execution was cancelled: User requested cancellation"},
    }
    return job


def test_attempt_after_a_create_that_timed_out_reuses_the_job_it_started(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any, bq_client: bigquery.Client
) -> None:
    task = query_task("SELECT @n AS n", emulator.project, inputs={"n": int})
    execution = new_execution()
    # jobs.insert reaches BigQuery, but its answer is held past the CreateTask deadline.
    faults.add_rule("delay", "POST", INSERT_PATH, count=1, seconds=3, after=True)
    with pytest.raises(grpc.RpcError) as lost:
        agents_via_proxy.CreateTask(create_request(task, execution, attempt=0, n=5), timeout=1.5)
    assert lost.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(2)  # the held response drains; the job exists
    assert len(jobs_of(bq_client, execution)) == 1

    meta = agents_via_proxy.CreateTask(create_request(task, execution, attempt=1, n=5), timeout=60).resource_meta
    decoded = BigQueryMetadata.decode(meta)
    assert decoded.reused_from_attempt == 0
    resource = poll(agents_via_proxy, meta)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert "reused job" in resource.message and "attempt 0" in resource.message
    assert rows_of(bq_client, results_uri(resource)) == [{"n": 5}]
    assert len(jobs_of(bq_client, execution)) == 1


def test_attempt_after_a_cancelled_one_starts_a_new_job(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any, bq_client: bigquery.Client
) -> None:
    task = query_task("SELECT @n AS n", emulator.project, inputs={"n": int})
    execution = new_execution()
    first = agents_via_proxy.CreateTask(create_request(task, execution, attempt=0, n=1), timeout=60).resource_meta
    agents_via_proxy.DeleteTask(agent_pb2.DeleteTaskRequest(task_category=CATEGORY, resource_meta=first), timeout=30)
    first_id = BigQueryMetadata.decode(first).job_id
    faults.add_rule("rewrite", "GET", rf"/jobs/{first_id}$", count=None, transform=_cancelled)
    second = agents_via_proxy.CreateTask(create_request(task, execution, attempt=1, n=1), timeout=60).resource_meta
    decoded = BigQueryMetadata.decode(second)
    assert decoded.reused_from_attempt is None
    assert decoded.job_id != first_id
    assert poll(agents_via_proxy, second).phase == TaskExecution.SUCCEEDED
    assert len(jobs_of(bq_client, execution)) == 2


def test_first_attempt_makes_no_lookup_calls(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any
) -> None:
    task = query_task("SELECT 1 AS one", emulator.project, output=False)
    agents_via_proxy.CreateTask(create_request(task, new_execution(), attempt=0), timeout=60)
    assert [e.endpoint for e in faults.log] == ["jobs.insert"]
