"""The jobs API: one verdict per failure, 409 adoption, rate-limit storms, Retry-After, and cancel."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from flyte_bigquery_core.errors import BigQueryJobError, TransientError
from flyte_bigquery_core.jobs_api import Inserted, JobsApi
from flyte_bigquery_core.testing.scripted import Answer, FakeClock, ScriptedSend, error_body, scripted_transport

JOB = {
    "jobReference": {"projectId": "p", "jobId": "j1", "location": "EU"},
    "configuration": {"query": {"query": "SELECT 1", "useLegacySql": False}},
}
RUNNING = {"jobReference": JOB["jobReference"], "status": {"state": "RUNNING"}}


def _api(send: ScriptedSend, budget: float = 60.0) -> tuple[JobsApi, FakeClock]:
    sleeps = FakeClock()
    return JobsApi(scripted_transport(send), budget, sleep=sleeps.sleep, clock=sleeps.now), sleeps


def _run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_insert_posts_the_job_resource() -> None:
    send = ScriptedSend([Answer(200, RUNNING)])
    api, _ = _api(send)
    assert _run(api.insert(JOB)) == Inserted(RUNNING, reattached=False)
    assert (send.requests[0].method, send.requests[0].path) == ("POST", "/bigquery/v2/projects/p/jobs")
    assert send.requests[0].body == JOB


def test_insert_adopts_the_job_that_answers_409() -> None:
    send = ScriptedSend([Answer(409, error_body(409, "duplicate")), Answer(200, RUNNING)])
    api, _ = _api(send)
    assert _run(api.insert(JOB)) == Inserted(RUNNING, reattached=True)
    assert send.requests[1].path == "/bigquery/v2/projects/p/jobs/j1"
    assert send.requests[1].params == {"projection": "full", "location": "EU"}


def test_a_job_not_yet_visible_after_409_is_looked_up_again() -> None:
    send = ScriptedSend(
        [Answer(409, error_body(409, "duplicate")), Answer(404, error_body(404, "notFound")), Answer(200, RUNNING)]
    )
    api, _ = _api(send)
    assert _run(api.insert(JOB)).reattached is True


def test_a_job_that_stays_invisible_after_409_is_transient() -> None:
    send = ScriptedSend([Answer(409, error_body(409, "duplicate"))] + [Answer(404, error_body(404, "notFound"))] * 200)
    api, sleeps = _api(send)
    with pytest.raises(TransientError, match="not visible"):
        _run(api.insert(JOB))
    assert sum(sleeps.slept) <= 5.0


def test_a_rate_limit_storm_on_insert_drains_into_one_job() -> None:
    storm = [Answer(429, error_body(429, "rateLimitExceeded"), {"Retry-After": "1"})] * 5
    send = ScriptedSend([*storm, Answer(200, RUNNING)])
    api, sleeps = _api(send)
    assert _run(api.insert(JOB)).reattached is False
    assert len(sleeps.slept) == 5 and min(sleeps.slept) >= 1.0
    assert [r.method for r in send.requests] == ["POST"] * 6


def test_403_rate_limit_exceeded_is_retried() -> None:
    send = ScriptedSend([Answer(403, error_body(403, "rateLimitExceeded")), Answer(200, RUNNING)])
    api, _ = _api(send)
    assert _run(api.insert(JOB)).job == RUNNING


def test_unavailable_past_the_budget_is_transient() -> None:
    send = ScriptedSend([Answer(503, error_body(503, "backendError"), {"Retry-After": "120"})])
    api, sleeps = _api(send, budget=10)
    with pytest.raises(TransientError, match="unavailable while submitting"):
        _run(api.insert(JOB))
    assert sleeps.slept == []


def test_a_rejected_query_is_a_job_error_with_bigquerys_reason() -> None:
    send = ScriptedSend([Answer(400, error_body(400, "invalidQuery", "Unrecognized name: x"))])
    api, _ = _api(send)
    with pytest.raises(BigQueryJobError, match="Unrecognized name: x") as caught:
        _run(api.insert(JOB))
    assert caught.value.reason == "invalidQuery"


def test_dry_run_sends_no_job_id_and_sets_dry_run() -> None:
    send = ScriptedSend([Answer(200, {"statistics": {"totalBytesProcessed": "10"}})])
    api, _ = _api(send)
    assert _run(api.dry_run(JOB)) == {"statistics": {"totalBytesProcessed": "10"}}
    body = send.requests[0].body
    assert body["jobReference"] == {"projectId": "p", "location": "EU"}
    assert body["configuration"]["dryRun"] is True
    assert "dryRun" not in JOB["configuration"]  # the caller's resource is left alone


@pytest.mark.parametrize(("status", "existed"), [(200, True), (404, False)])
def test_cancel_says_whether_the_job_existed(status: int, existed: bool) -> None:
    send = ScriptedSend([Answer(status, {} if status == 200 else error_body(404, "notFound"))])
    api, _ = _api(send)
    assert _run(api.cancel("p", "j1", "EU")) is existed
    assert send.requests[0].path == "/bigquery/v2/projects/p/jobs/j1/cancel"


def test_child_jobs_follow_page_tokens() -> None:
    send = ScriptedSend(
        [Answer(200, {"jobs": [{"id": "a"}], "nextPageToken": "t"}), Answer(200, {"jobs": [{"id": "b"}]})]
    )
    api, _ = _api(send)
    assert _run(api.child_jobs("p", "parent")) == [{"id": "a"}, {"id": "b"}]
    assert send.requests[1].params == {"parentJobId": "parent", "projection": "full", "pageToken": "t"}


@pytest.mark.parametrize(
    ("answers", "paths"),
    [
        ([Answer(200, {"location": "EU"})], ["/bigquery/v2/projects/p/datasets"]),
        (
            [Answer(409, error_body(409, "duplicate")), Answer(200, {"location": "EU"})],
            ["/bigquery/v2/projects/p/datasets", "/bigquery/v2/projects/p/datasets/d"],
        ),
    ],
    ids=["created", "existing"],
)
def test_ensure_dataset_returns_the_dataset_where_it_is(answers: list[Answer], paths: list[str]) -> None:
    send = ScriptedSend(answers)
    api, _ = _api(send)
    dataset = _run(api.ensure_dataset({"datasetReference": {"projectId": "p", "datasetId": "d"}, "location": "EU"}))
    assert dataset["location"] == "EU" and [r.path for r in send.requests] == paths


def test_ids_are_quoted_into_paths() -> None:
    send = ScriptedSend([Answer(200, {})])
    api, _ = _api(send)
    _run(api.get("p", "a/b", None))
    assert send.requests[0].path == "/bigquery/v2/projects/p/jobs/a%2Fb"
