"""A burst of creates into a storm of throttled jobs.insert calls (the fault proxy in front of the local
BigQuery): every task succeeds, with exactly one job each; creates that outlived their budget wait and are
submitted by get with the same job id. The time to drain is printed (``pytest -s``)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flyte_bigquery_core.testing.faultproxy import FaultProxy
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service.agent_pb2_grpc import AsyncAgentServiceStub
from google.cloud import bigquery

from flytekitplugins.bigquery.metadata import BigQueryMetadata
from flytekitplugins.bigquery.testing.requests import template_of
from flytekitplugins.bigquery.testing.storm import REFUSALS, run_storm

from . import helpers as h

pytestmark = pytest.mark.integration

TASKS = 16
#: Refusals per task: more than a create's budget (2 s here) retries, so some creates leave it to get.
PER_TASK = 6


@pytest.fixture(scope="module")
def service_env() -> dict[str, str]:
    return {"FLYTEKITPLUGINS_BIGQUERY_RETRY_SECONDS": "2"}


@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_a_storm_of_throttled_inserts_fails_no_task_and_duplicates_no_job(
    agents_via_proxy: AsyncAgentServiceStub,
    faults: FaultProxy,
    emulator: Any,
    bq_client: bigquery.Client,
    refusal: str,
) -> None:
    task = h.query_task("SELECT @n AS n", emulator.project, inputs={"n": int})
    report = run_storm(
        agents_via_proxy,
        faults,
        template_of(task).to_flyte_idl(),
        h.literals_of(task, n=3).to_flyte_idl(),
        bq_client,
        TASKS,
        TASKS * PER_TASK,
        refusal,
        execution_prefix=f"storm{uuid.uuid4().hex[:8]}",
    )
    print(f"\n429-storm figures: {report.row()}")
    assert report.injected == TASKS * PER_TASK  # the whole storm reached the connector
    assert report.failures == []
    assert report.phases == {"SUCCEEDED": TASKS}
    assert (report.duplicates, report.without_job) == (0, 0)
    assert report.waited_for_get > 0  # the storm outlived some creates' budget: get submitted those jobs


def test_throttling_that_never_ends_keeps_the_task_waiting_with_no_job_until_it_ends(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any, bq_client: bigquery.Client
) -> None:
    faults.add_rule("status", "POST", h.INSERT_PATH, count=None, status=429, retry_after=1)
    task = h.query_task("SELECT @n AS n", emulator.project, inputs={"n": int})
    execution = h.new_execution()
    meta = agents_via_proxy.CreateTask(h.create_request(task, execution, n=4), timeout=60).resource_meta
    assert BigQueryMetadata.decode(meta).pending_insert is not None  # the create outlived its budget
    for _ in range(2):
        resource = h.get_resource(agents_via_proxy, meta)
        assert resource.phase == TaskExecution.RUNNING, resource.message  # waiting, not failed
        assert "waiting for BigQuery's rate limits" in resource.message
    assert h.jobs_of(bq_client, execution) == []

    faults.clear()
    resource = h.poll(agents_via_proxy, meta)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert [j.job_id for j in h.jobs_of(bq_client, execution)] == [BigQueryMetadata.decode(meta).job_id]
