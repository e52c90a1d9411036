"""The connector image's smoke test, from outside, as Flyte's propeller would call it: gRPC health, then one task.

Run by deploy/smoke.sh (inside ``python -m flyte_bigquery_core.testing.emulator run --seed demo``, so the
environment points at a seeded local BigQuery) with the project's .venv, against a connector service started
as the image starts it:

    python deploy/smoke_client.py HOST:PORT

1. ``grpc.health.v1.Health/Check`` answers SERVING for the server and for flyteidl's AsyncAgentService;
2. ``ListAgents`` names a connector for ``bigquery_query_job_task``;
3. ``CreateTask`` of a ``BigQueryTask`` (a query over ``samples.daily_downloads`` with a named parameter and a
   ``results`` output, serialized as ``pyflyte register`` does), ``GetTask`` until terminal: SUCCEEDED, with a
   ``bq://`` output whose rows are the expected ones (read back from the local BigQuery).

Prints one line per check and a closing ``N passed, N failed``; exits 1 on any failure.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable

import grpc
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service.agent_pb2_grpc import AgentMetadataServiceStub, AsyncAgentServiceStub
from grpc_health.v1 import health_pb2, health_pb2_grpc

TASK_TYPE = "bigquery_query_job_task"
VERSION = "1.16.0"
TERMINAL = {TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.RETRYABLE_FAILED, TaskExecution.ABORTED}


def check_health(channel: grpc.Channel) -> str:
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + 60
    while True:  # the service may still be starting (imports take a few seconds)
        try:
            overall = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            break
        except grpc.RpcError as e:
            if time.monotonic() > deadline:
                raise AssertionError(f"no health answer within 60 s: {e.code().name}") from e
            time.sleep(0.5)
    agents = stub.Check(health_pb2.HealthCheckRequest(service="flyteidl.service.AsyncAgentService"), timeout=5)
    serving = health_pb2.HealthCheckResponse.SERVING
    assert overall.status == serving, f"overall status {overall.status}"
    assert agents.status == serving, f"AsyncAgentService status {agents.status}"
    return "SERVING (server and flyteidl.service.AsyncAgentService)"


def check_list_agents(channel: grpc.Channel) -> str:
    agents = AgentMetadataServiceStub(channel).ListAgents(agent_pb2.ListAgentsRequest(), timeout=10).agents
    ours = [a.name for a in agents if TASK_TYPE in a.supported_task_types]
    assert ours, f"no connector serves {TASK_TYPE}: {[a.name for a in agents]}"
    return f"{TASK_TYPE} served by {ours[0]!r}"


def _request(execution: str) -> agent_pb2.CreateTaskRequest:
    from flytekit import FlyteContextManager, StructuredDataset
    from flytekit.core.type_engine import TypeEngine

    from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask
    from flytekitplugins.bigquery.testing.requests import create_task_request, template_of

    task = BigQueryTask(
        name="smoke.downloads",
        query_template="SELECT package, downloads, day FROM samples.daily_downloads WHERE version = @version",
        task_config=BigQueryConfig(ProjectID=os.environ["GOOGLE_CLOUD_PROJECT"], Location="US"),
        inputs={"version": str},
        output_structured_dataset_type=StructuredDataset,
    )
    template = template_of(task)
    ctx = FlyteContextManager.current_context()
    inputs = TypeEngine.dict_to_literal_map(ctx, {"version": VERSION}, task.get_input_types())
    return create_task_request(template.to_flyte_idl(), inputs.to_flyte_idl(), execution)


def check_one_task(channel: grpc.Channel) -> str:
    from flyte_bigquery_core.testing.emulator import DEMO_ROWS
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    stub = AsyncAgentServiceStub(channel)
    meta = stub.CreateTask(_request(f"smoke{uuid.uuid4().hex[:12]}"), timeout=60).resource_meta
    category = agent_pb2.TaskCategory(name=TASK_TYPE, version=0)
    deadline = time.monotonic() + 60
    while True:
        resource = stub.GetTask(
            agent_pb2.GetTaskRequest(task_category=category, resource_meta=meta), timeout=30
        ).resource
        if resource.phase in TERMINAL or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    phase = TaskExecution.Phase.Name(resource.phase)
    assert resource.phase == TaskExecution.SUCCEEDED, f"phase {phase}: {resource.message}"
    uri = resource.outputs.literals["results"].scalar.structured_dataset.uri
    assert uri.startswith("bq://"), f"results output {uri!r}"

    client = bigquery.Client(
        project=os.environ["GOOGLE_CLOUD_PROJECT"],
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=os.environ["BIGQUERY_EMULATOR_HOST"]),
    )
    try:
        rows = sorted(
            (r["package"], r["downloads"], str(r["day"])) for r in client.list_rows(uri[5:].replace(":", "."))
        )
    finally:
        client.close()
    expected = sorted((r["package"], r["downloads"], r["day"]) for r in DEMO_ROWS if r["version"] == VERSION)
    assert rows == expected, f"rows {rows} != expected {expected}"
    return f"SUCCEEDED, {len(rows)} rows at {uri}"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    target = argv[1]
    checks: list[tuple[str, Callable[[grpc.Channel], str]]] = [
        ("health", check_health),
        ("ListAgents", check_list_agents),
        ("one task", check_one_task),
    ]
    passed = failed = 0
    with grpc.insecure_channel(target) as channel:
        for name, check in checks:
            try:
                print(f"smoke: {name}: {check(channel)}", flush=True)
                passed += 1
            except Exception as e:  # report every check, then fail
                print(f"smoke: {name}: FAILED: {type(e).__name__}: {e}", flush=True)
                failed += 1
                if name == "health":
                    break
    print(f"image-smoke: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
