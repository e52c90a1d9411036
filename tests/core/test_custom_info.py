"""custom_info as the engine reports it: every key of the documented schema, null where not reported."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from flyte_bigquery_core.engine import QueryEngine
from flyte_bigquery_core.handle import JobHandle
from flyte_bigquery_core.jobs_api import JobsApi
from flyte_bigquery_core.report import CUSTOM_INFO_KEYS
from flyte_bigquery_core.status import Outcome
from flyte_bigquery_core.testing.scripted import Answer, ScriptedSend, error_body, scripted_transport

_DESTINATION = {"query": {"destinationTable": {"projectId": "p", "datasetId": "d", "tableId": "t"}}}


def _engine(*script: Answer) -> QueryEngine[JobHandle]:
    async def no_sleep(seconds: float) -> None:
        return None

    return QueryEngine(JobsApi(scripted_transport(ScriptedSend(script)), 1.0, sleep=no_sleep), JobHandle)


def _job(state: str, **extra: Any) -> dict[str, Any]:
    return {"jobReference": {"projectId": "p", "jobId": "j", "location": "EU"}, "status": {"state": state}, **extra}


# (job resource, table resource or None, handle fields, outcome, the non-null entries of custom_info)
ROWS = [
    pytest.param(
        _job("RUNNING"),
        None,
        {},
        Outcome.RUNNING,
        {"job_id": "j", "location": "EU", "state": "RUNNING", "execution_project": "p"},
        id="running",
    ),
    pytest.param(
        _job("DONE", configuration=_DESTINATION, statistics={"query": {"cacheHit": True, "totalBytesProcessed": "0"}}),
        {"numRows": "3"},
        {"output_name": "results"},
        Outcome.SUCCEEDED,
        {
            "job_id": "j",
            "location": "EU",
            "state": "DONE",
            "total_bytes_processed": 0,
            "cache_hit": True,
            "destination": "p:d.t",
            "total_rows": 3,
            "job_type": "QUERY",
            "execution_project": "p",
        },
        id="cache-hit-with-results",
    ),
    pytest.param(
        _job("DONE", statistics={"query": {"statementType": "DELETE", "numDmlAffectedRows": "5"}}),
        None,
        {"reused_from_attempt": 0, "estimated_bytes": 100},
        Outcome.SUCCEEDED,
        {
            "job_id": "j",
            "location": "EU",
            "state": "DONE",
            "statement_type": "DELETE",
            "num_dml_affected_rows": 5,
            "estimated_bytes_processed": 100,
            "reused_from_attempt": 0,
            "execution_project": "p",
        },
        id="reused-dml-with-estimate",
    ),
    pytest.param(
        {**_job("DONE"), "status": {"state": "DONE", "errorResult": {"reason": "invalidQuery", "message": "bad"}}},
        None,
        {},
        Outcome.PERMANENT_FAILURE,
        {"job_id": "j", "location": "EU", "state": "DONE", "execution_project": "p"},
        id="failed",
    ),
    pytest.param(
        _job("RUNNING", configuration={"reservation": "projects/admin/locations/EU/reservations/etl"}),
        None,
        {"principal": "etl@p.iam.gserviceaccount.com", "quota_project": "q", "reservation": "none"},
        Outcome.RUNNING,
        {
            "job_id": "j",
            "location": "EU",
            "state": "RUNNING",
            "execution_project": "p",
            "reservation": "projects/admin/locations/EU/reservations/etl",
            "principal": "etl@p.iam.gserviceaccount.com",
            "quota_project": "q",
        },
        id="impersonated-with-the-reservation-bigquery-recorded",
    ),
    pytest.param(
        _job("RUNNING"),
        None,
        {"reservation": "none"},
        Outcome.RUNNING,
        {"job_id": "j", "location": "EU", "state": "RUNNING", "execution_project": "p", "reservation": "none"},
        id="reservation-as-submitted-when-bigquery-does-not-echo-it",
    ),
]


@pytest.mark.parametrize(("job", "table", "fields", "outcome", "reported"), ROWS)
def test_every_key_is_present_and_null_unless_reported(
    job: dict[str, Any],
    table: dict[str, Any] | None,
    fields: dict[str, Any],
    outcome: Outcome,
    reported: dict[str, Any],
) -> None:
    script = [Answer(200, job)] + ([Answer(200, table)] if table is not None else [])
    handle = JobHandle(**{"job_id": "j", "project": "p", "location": "EU", **fields})
    observation = asyncio.run(_engine(*script).observe(handle))
    assert observation.outcome is outcome
    assert observation.info is not None and list(observation.info) == list(CUSTOM_INFO_KEYS)
    assert {k: v for k, v in observation.info.items() if v is not None} == reported


@pytest.mark.parametrize(
    ("script", "deadline"),
    [
        ([Answer(404, error_body(404, "notFound"))], None),
        ([Answer(200, {"jobReference": {"jobId": "j"}, "status": {"state": "RUNNING"}}), Answer(200, {})], 1.0),
    ],
    ids=["job-not-found", "cancelled-at-deadline"],
)
def test_a_task_failed_by_the_engine_still_reports_every_key(script: list[Answer], deadline: float | None) -> None:
    send = ScriptedSend(script)
    engine = QueryEngine(JobsApi(scripted_transport(send), 1.0), JobHandle)
    handle = JobHandle(job_id="j", project="proj", location="EU", deadline=deadline)
    observation = asyncio.run(engine.observe(handle))
    assert observation.outcome is Outcome.PERMANENT_FAILURE
    assert observation.info is not None and tuple(observation.info) == CUSTOM_INFO_KEYS
    assert observation.info["job_id"] == "j" and observation.output_uri is None
