"""Per-task identity through the real service, in front of the local BigQuery (behind the fault proxy, which
records what reached BigQuery) and a loopback generateAccessToken stand-in:

* a principal the allow-list allows runs the job, which carries its token, the quota project, the execution
  project and the reservation; the result is read back as the same principal;
* a principal no rule allows, and one whose token IAM refuses (no Token Creator role), fail before anything is
  submitted, naming the task, the principal and the rule or the role.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flyte_bigquery_core.access import Caller, caller_of_uri
from flyte_bigquery_core.clients import ClientPool
from flyte_bigquery_core.impersonation import TOKEN_CREATOR_ROLE
from flyte_bigquery_core.io.read import TableReader
from flyte_bigquery_core.io.storage import StorageConnections
from flyte_bigquery_core.settings import Settings
from flyte_bigquery_core.testing.faultproxy import FaultProxy
from flyte_bigquery_core.testing.iam_stand_in import IamStandIn
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service.agent_pb2_grpc import AsyncAgentServiceStub
from google.cloud import bigquery
from google.protobuf import json_format

from flytekitplugins.bigquery.metadata import BigQueryMetadata
from flytekitplugins.bigquery.testing.service_process import ServiceProcess

from . import helpers as h

pytestmark = pytest.mark.integration

ETL = "etl@flyte-bq.iam.gserviceaccount.com"
NO_ROLE = "no-role@flyte-bq.iam.gserviceaccount.com"
UNLISTED = "intruder@flyte-bq.iam.gserviceaccount.com"
DEV_RESERVATION = "projects/admin/locations/US/reservations/dev"
RULES = {
    "rules": [
        {"name": "flytesnacks-dev", "project": "flytesnacks", "domain": "development", "principals": [ETL, NO_ROLE]},
        {"name": "analytics-prod", "project": "analytics", "domain": "production", "principals": [UNLISTED]},
    ]
}


@pytest.fixture(scope="module")
def iam() -> Iterator[IamStandIn]:
    with IamStandIn(denied={NO_ROLE}) as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def service_env(iam: IamStandIn) -> dict[str, str]:
    return {
        "FLYTEKITPLUGINS_BIGQUERY_RETRY_SECONDS": h.SERVICE_RETRY_SECONDS,
        "FLYTEKITPLUGINS_BIGQUERY_IMPERSONATION_RULES": json.dumps(RULES),
        "FLYTEKITPLUGINS_BIGQUERY_IAM_ENDPOINT": iam.url,
        "FLYTEKITPLUGINS_BIGQUERY_RESERVATIONS": json.dumps({"flytesnacks/development": DEV_RESERVATION}),
    }


def _run(stub: AsyncAgentServiceStub, project: str, **config: Any) -> tuple[str, bytes, Any]:
    """Create and poll one ``SELECT @n AS n`` task with ``config``: (execution, resource meta, final resource)."""
    task = h.query_task("SELECT @n AS n", project, inputs={"n": int}, **config)
    execution = h.new_execution()
    meta = stub.CreateTask(h.create_request(task, execution, n=7), timeout=60).resource_meta
    return execution, meta, h.poll(stub, meta)


def _info(resource: Any) -> dict[str, Any]:
    return json_format.MessageToDict(resource.custom_info)


def test_an_allowed_principal_runs_the_job_with_its_own_token_projects_and_reservation(
    agents_via_proxy: AsyncAgentServiceStub,
    faults: FaultProxy,
    iam: IamStandIn,
    emulator: Any,
    bq_client: bigquery.Client,
    proxied_service: ServiceProcess,
) -> None:
    execution, meta, resource = _run(
        agents_via_proxy,
        emulator.project,
        ImpersonateServiceAccount=ETL,
        ExecutionProject="compute-proj",
        QuotaProject="quota-proj",
    )
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message

    job_id = BigQueryMetadata.decode(meta).job_id
    job = bq_client.get_job(job_id, project="compute-proj", location="US")  # recorded where it ran
    assert job.labels["flyte_execution"] == execution
    assert job._properties["configuration"]["reservation"] == DEV_RESERVATION  # the Flyte project/domain default
    [insert] = faults.exchanges("jobs.insert")
    headers = {k.lower(): v for k, v in insert.headers}
    assert iam.issued[headers["authorization"].removeprefix("Bearer ")] == ETL
    assert headers["x-goog-user-project"] == "quota-proj"
    info = _info(resource)
    assert (info["principal"], info["quota_project"]) == (ETL, "quota-proj")
    assert (info["execution_project"], info["reservation"]) == ("compute-proj", DEV_RESERVATION)
    assert caller_of_uri(h.results_uri(resource)) == Caller(ETL, (), "quota-proj")
    log = proxied_service.log_text()
    assert not any(token in log for token in iam.issued)


def test_the_result_is_read_downstream_as_the_principal_that_wrote_it(
    agents_via_proxy: AsyncAgentServiceStub,
    faults: FaultProxy,
    iam: IamStandIn,
    emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, _, resource = _run(agents_via_proxy, emulator.project, ImpersonateServiceAccount=ETL)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    faults.clear()
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", faults.url)  # google-cloud-bigquery reads it itself
    settings = Settings(emulator_host=faults.url, iam_endpoint=iam.url, google_cloud_project=emulator.project)
    pool = ClientPool(max_workers=4, settings=settings)
    try:
        table = TableReader(pool, StorageConnections(settings), settings).read(h.results_uri(resource))
    finally:
        pool.close()
    assert table.to_pylist() == [{"n": 7}]
    bearers = {dict((k.lower(), v) for k, v in e.headers).get("authorization", "") for e in faults.log}
    assert bearers and {iam.issued.get(b.removeprefix("Bearer ")) for b in bearers} == {ETL}


@pytest.mark.parametrize(
    ("principal", "says"),
    [
        pytest.param(UNLISTED, "the rule(s) covering Flyte project 'flytesnacks', domain 'development' "
                     "('flytesnacks-dev') do not list it", id="no-rule-allows-it"),
        pytest.param(NO_ROLE, f"IAM refused to issue its token (403). Grant the connector's service account "
                     f"{TOKEN_CREATOR_ROLE} on {NO_ROLE}", id="no-token-creator-role"),
    ],
)  # fmt: skip
def test_a_refused_principal_fails_the_task_with_nothing_submitted(
    agents_via_proxy: AsyncAgentServiceStub,
    faults: FaultProxy,
    iam: IamStandIn,
    emulator: Any,
    bq_client: bigquery.Client,
    principal: str,
    says: str,
) -> None:
    execution, _, resource = _run(agents_via_proxy, emulator.project, ImpersonateServiceAccount=principal)
    assert resource.phase == TaskExecution.FAILED
    assert resource.message.startswith("task 'svc.query': ") and principal in resource.message
    assert says in resource.message
    assert faults.seen["jobs.insert"] == 0 and faults.seen["jobs.insert.dryRun"] == 0  # nothing reached BigQuery
    assert h.jobs_of(bq_client, execution) == []
    assert all(e.status == 403 for e in iam.exchanges_for(principal))


def test_the_tasks_reservation_wins_and_none_runs_on_demand(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any, bq_client: bigquery.Client
) -> None:
    _, meta, resource = _run(agents_via_proxy, emulator.project, Reservation="none")
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    job = bq_client.get_job(BigQueryMetadata.decode(meta).job_id, location="US")
    assert job._properties["configuration"]["reservation"] == "none"
    assert _info(resource)["reservation"] == "none"
