"""A create that BigQuery throttled past its budget: the task waits (QUEUED) and get submits the same job again."""

from __future__ import annotations

import asyncio
from typing import Any

from flyte_bigquery_core.engine import QueryEngine
from flyte_bigquery_core.handle import JobHandle
from flyte_bigquery_core.identity import ExecutionIdentity
from flyte_bigquery_core.jobs_api import JobsApi
from flyte_bigquery_core.planning import QueryPlan, QueryTask, plan_query
from flyte_bigquery_core.settings import Settings
from flyte_bigquery_core.status import Outcome
from flyte_bigquery_core.testing.scripted import Answer, FakeClock, ScriptedSend, error_body, scripted_transport

IDENTITY = ExecutionIdentity("flytesnacks", "development", "exec1", "n0", "wf.q", 0)
THROTTLED = Answer(429, error_body(429, "rateLimitExceeded"))
NOT_FOUND = Answer(404, error_body(404, "notFound"))


def _plan() -> QueryPlan:
    return plan_query(
        QueryTask("wf.q", {"ProjectID": "proj", "Location": "EU"}, "SELECT 1"), {}, IDENTITY, Settings(), 0
    )


def _job(plan: QueryPlan, state: str) -> dict[str, Any]:
    return {"jobReference": plan.resource["jobReference"], "status": {"state": state}}


def _engine(*script: Answer) -> tuple[QueryEngine[JobHandle], ScriptedSend]:
    send = ScriptedSend(script)
    clock = FakeClock()
    api = JobsApi(scripted_transport(send), 2.0, sleep=clock.sleep, clock=clock.now)
    return QueryEngine(api, JobHandle), send


def _pending(plan: QueryPlan) -> JobHandle:
    engine, send = _engine(*[THROTTLED] * 40)
    handle = asyncio.run(engine.submit(plan))
    assert send.remaining > 0  # gave up within the budget, not by running out of answers
    return JobHandle.decode(handle.encode())  # what Flyte stores and hands back


def test_a_throttled_create_returns_a_handle_that_waits_instead_of_failing() -> None:
    plan = _plan()
    handle = _pending(plan)
    assert handle.error is None and handle.job_id == plan.job_id
    assert handle.pending_insert == plan.resource


def test_get_submits_the_same_job_again_and_reports_queued_while_throttled() -> None:
    plan = _plan()
    handle = _pending(plan)
    engine, send = _engine(NOT_FOUND, *[THROTTLED] * 40)
    observation = asyncio.run(engine.observe(handle))
    assert observation.outcome is Outcome.QUEUED
    assert "waiting for BigQuery's rate limits to submit job" in observation.message
    inserts = [r for r in send.requests if r.method == "POST"]
    assert inserts and all(r.body["jobReference"]["jobId"] == plan.job_id for r in inserts)


def test_once_bigquery_accepts_it_the_job_is_observed_like_any_other() -> None:
    plan = _plan()
    handle = _pending(plan)
    engine, _ = _engine(NOT_FOUND, Answer(200, _job(plan, "RUNNING")))
    assert asyncio.run(engine.observe(handle)).outcome is Outcome.RUNNING
    engine, send = _engine(Answer(200, _job(plan, "DONE")))
    assert asyncio.run(engine.observe(handle)).outcome is Outcome.SUCCEEDED
    assert [r.method for r in send.requests] == ["GET"]  # the job exists: nothing is submitted again


def test_a_submission_that_had_reached_bigquery_is_adopted_not_duplicated() -> None:
    plan = _plan()
    handle = _pending(plan)
    engine, send = _engine(NOT_FOUND, Answer(409, error_body(409, "duplicate")), Answer(200, _job(plan, "RUNNING")))
    assert asyncio.run(engine.observe(handle)).outcome is Outcome.RUNNING
    assert [r.method for r in send.requests] == ["GET", "POST", "GET"]


def test_a_job_bigquery_rejects_on_resubmission_fails_the_task() -> None:
    plan = _plan()
    handle = _pending(plan)
    engine, _ = _engine(NOT_FOUND, Answer(400, error_body(400, "invalidQuery", "Syntax error")))
    observation = asyncio.run(engine.observe(handle))
    assert observation.outcome is Outcome.PERMANENT_FAILURE and "Syntax error" in observation.message
