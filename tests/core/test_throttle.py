"""Bursts of jobs.insert: which refusals mean "not now", retried in the budget, then Throttled; the per-project cap."""

from __future__ import annotations

import asyncio
import json

import pytest
from flyte_bigquery_core.errors import BigQueryJobError, TransientError
from flyte_bigquery_core.jobs_api import JobsApi
from flyte_bigquery_core.testing.scripted import Answer, FakeClock, ScriptedSend, error_body, scripted_transport
from flyte_bigquery_core.throttle import ProjectGate, Throttled, is_throttled, project_of_path
from flyte_bigquery_core.transport import Response, http_error

JOB = {
    "jobReference": {"projectId": "p", "jobId": "j1", "location": "EU"},
    "configuration": {"query": {"query": "SELECT 1", "useLegacySql": False}},
}
RUNNING = {"jobReference": JOB["jobReference"], "status": {"state": "RUNNING"}}
CONCURRENT = "Quota exceeded: Your project exceeded quota for concurrent queries. For more information, see ..."
DAILY = "Quota exceeded: Your project exceeded quota for free query bytes scanned."

# (status, reason, message, throttled?)
REFUSALS = [
    pytest.param(429, "rateLimitExceeded", "Too many requests", True, id="429"),
    pytest.param(403, "rateLimitExceeded", "Exceeded rate limits: too many api requests", True, id="403-rate-limit"),
    pytest.param(400, "jobRateLimitExceeded", "Exceeded rate limits: job creation", True, id="job-rate-limit"),
    pytest.param(403, "quotaExceeded", CONCURRENT, True, id="concurrent-queries-quota"),
    pytest.param(403, "quotaExceeded", DAILY, False, id="daily-quota-is-not-waited-for"),
    pytest.param(400, "invalidQuery", "Syntax error", False, id="invalid-query"),
    pytest.param(503, "backendError", "unavailable", False, id="unavailable-is-retryable-but-not-throttling"),
]


def _error(status: int, reason: str, message: str) -> Exception:
    body = error_body(status, reason, message)
    return http_error(Response(status, {}, json.dumps(body).encode()), "POST", "/projects/p/jobs")


@pytest.mark.parametrize(("status", "reason", "message", "throttled"), REFUSALS)
def test_which_insert_refusals_are_throttling(status: int, reason: str, message: str, throttled: bool) -> None:
    assert is_throttled(_error(status, reason, message)) is throttled


def _api(send: ScriptedSend, budget: float) -> tuple[JobsApi, FakeClock]:
    clock = FakeClock()
    return JobsApi(scripted_transport(send), budget, sleep=clock.sleep, clock=clock.now), clock


@pytest.mark.parametrize(("status", "reason", "message", "throttled"), [r for r in REFUSALS if r.values[3]])
def test_a_throttled_insert_is_retried_with_backoff_into_one_job(
    status: int, reason: str, message: str, throttled: bool
) -> None:
    send = ScriptedSend([Answer(status, error_body(status, reason, message))] * 4 + [Answer(200, RUNNING)])
    api, clock = _api(send, budget=60)
    assert asyncio.run(api.insert(JOB)).job == RUNNING
    assert len(clock.slept) == 4 and len(send.requests) == 5
    assert {tuple(r.body["jobReference"].values()) for r in send.requests} == {("p", "j1", "EU")}  # one job id


def test_throttling_past_the_budget_raises_throttled_a_transient_error() -> None:
    send = ScriptedSend([Answer(403, error_body(403, "quotaExceeded", CONCURRENT))] * 50)
    api, clock = _api(send, budget=3)
    with pytest.raises(Throttled, match="BigQuery throttled the submission of job j1") as caught:
        asyncio.run(api.insert(JOB))
    assert isinstance(caught.value, TransientError)
    assert sum(clock.slept) <= 3


def test_a_daily_quota_is_a_job_error_at_once() -> None:
    send = ScriptedSend([Answer(403, error_body(403, "quotaExceeded", DAILY))])
    api, clock = _api(send, budget=60)
    with pytest.raises(BigQueryJobError) as caught:
        asyncio.run(api.insert(JOB))
    assert caught.value.reason == "quotaExceeded" and clock.slept == []


@pytest.mark.parametrize(
    ("path", "project"),
    [
        ("/projects/p/jobs", "p"),
        ("/projects/example.com:p/jobs/j1/cancel", "example.com:p"),
        ("/projects/p/datasets", None),
    ],
)
def test_job_calls_are_gated_by_their_project(path: str, project: str | None) -> None:
    assert project_of_path(path) == project


def _peak(cap: int, projects: list[str]) -> dict[str, int]:
    """The most calls in flight at once, per project, for a burst through a gate of ``cap``."""
    gate = ProjectGate(cap)
    peak = dict.fromkeys(projects, 0)
    now = dict.fromkeys(projects, 0)

    async def call(project: str) -> None:
        async with gate.slot(f"/projects/{project}/jobs"):
            now[project] += 1
            peak[project] = max(peak[project], now[project])
            await asyncio.sleep(0.01)
            now[project] -= 1

    async def burst() -> None:
        await asyncio.gather(*(call(p) for p in projects))

    asyncio.run(burst())
    return peak


def test_the_gate_holds_at_most_cap_calls_per_project_in_flight() -> None:
    assert _peak(2, ["p"] * 10 + ["q"] * 10) == {"p": 2, "q": 2}


def test_no_cap_lets_the_whole_burst_in_at_once() -> None:
    assert _peak(0, ["p"] * 20) == {"p": 20}


def test_a_throttled_dry_run_is_retried_too() -> None:
    refused = Answer(400, error_body(400, "jobRateLimitExceeded", "Exceeded rate limits: job creation"))
    send = ScriptedSend([refused, refused, Answer(200, {"statistics": {"totalBytesProcessed": "10"}})])
    api, clock = _api(send, budget=60)
    assert asyncio.run(api.dry_run(JOB)) == {"statistics": {"totalBytesProcessed": "10"}}
    assert len(clock.slept) == 2
