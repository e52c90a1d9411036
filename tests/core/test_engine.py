"""The query engine over scripted BigQuery answers: submit, reuse, cost guard, observe, cancel, report."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from flyte_bigquery_core.cost import CostLimitExceeded
from flyte_bigquery_core.engine import QueryEngine
from flyte_bigquery_core.errors import InvalidTaskError, PermanentError, TransientError
from flyte_bigquery_core.handle import JobHandle
from flyte_bigquery_core.identity import ExecutionIdentity
from flyte_bigquery_core.jobs_api import JobsApi
from flyte_bigquery_core.planning import QueryPlan, QueryTask, plan_query
from flyte_bigquery_core.settings import Settings
from flyte_bigquery_core.status import Outcome
from flyte_bigquery_core.testing.scripted import Answer, ScriptedSend, error_body, scripted_transport

NOW = 1_700_000_000.0


def _identity(attempt: int = 0) -> ExecutionIdentity:
    return ExecutionIdentity("flytesnacks", "development", "exec1", "n0", "wf.q", attempt)


def _plan(custom: dict[str, Any] | None = None, attempt: int = 0, **kwargs: Any) -> QueryPlan:
    task = QueryTask("q", {"ProjectID": "proj", "Location": "EU", **(custom or {})}, "SELECT 1", **kwargs)
    return plan_query(task, {}, _identity(attempt), Settings(), NOW)


def _engine(*script: Answer | BaseException) -> tuple[QueryEngine[JobHandle], ScriptedSend]:
    send = ScriptedSend(script)

    async def no_sleep(seconds: float) -> None:
        return None

    return QueryEngine(JobsApi(scripted_transport(send), 1.0, sleep=no_sleep), JobHandle), send


def _job(state: str, job_id: str = "j", error: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"state": state}
    if error:
        status["errorResult"] = error
    return {"jobReference": {"projectId": "proj", "jobId": job_id, "location": "EU"}, "status": status, **extra}


def _run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def _handle(**fields: Any) -> JobHandle:
    return JobHandle(**{"job_id": "j", "project": "proj", "location": "EU", **fields})


# -- submit ---------------------------------------------------------------------------------------------------


def test_submit_inserts_the_planned_job() -> None:
    plan = _plan()
    engine, send = _engine(Answer(200, _job("RUNNING", plan.job_id)))
    handle = _run(engine.submit(plan))
    assert (handle.job_id, handle.project, handle.location) == (plan.job_id, "proj", "EU")
    assert send.requests[0].body == plan.resource


def test_a_retried_submission_adopts_the_job() -> None:
    plan = _plan()
    engine, send = _engine(Answer(409, error_body(409, "duplicate")), Answer(200, _job("RUNNING", plan.job_id)))
    assert _run(engine.submit(plan)).job_id == plan.job_id
    assert [r.method for r in send.requests] == ["POST", "GET"]


@pytest.mark.parametrize(("state", "reused"), [("RUNNING", True), ("DONE", True), ("FAILED", False)])
def test_a_later_attempt_reuses_an_earlier_healthy_job(state: str, reused: bool) -> None:
    plan = _plan(attempt=1)
    earlier = _plan(attempt=0).job_id
    found = _job("DONE", earlier, {"reason": "invalidQuery"}) if state == "FAILED" else _job(state, earlier)
    script = [Answer(200, found)] + ([] if reused else [Answer(200, _job("RUNNING", plan.job_id))])
    engine, send = _engine(*script)
    handle = _run(engine.submit(plan))
    assert (handle.job_id, handle.reused_from_attempt) == ((earlier, 0) if reused else (plan.job_id, None))
    assert send.requests[0].path.endswith(f"/jobs/{earlier}")


def test_an_earlier_attempt_without_a_job_is_skipped() -> None:
    plan = _plan(attempt=1)
    engine, _ = _engine(Answer(404, error_body(404, "notFound")), Answer(200, _job("RUNNING", plan.job_id)))
    assert _run(engine.submit(plan)).reused_from_attempt is None


def test_a_query_estimated_over_its_limit_submits_nothing() -> None:
    plan = _plan({"MaximumBytes": "1 KiB"})
    engine, send = _engine(Answer(200, {"statistics": {"query": {"totalBytesProcessed": "4096"}}}))
    with pytest.raises(CostLimitExceeded, match=r"over the limit of 1\.0 KiB"):
        _run(engine.submit(plan))
    assert len(send.requests) == 1 and send.requests[0].body["configuration"]["dryRun"] is True


def test_the_estimate_is_kept_in_the_handle() -> None:
    plan = _plan({"Estimate": True})
    engine, _ = _engine(
        Answer(200, {"statistics": {"query": {"totalBytesProcessed": "100"}}}),
        Answer(200, _job("RUNNING", plan.job_id)),
    )
    assert _run(engine.submit(plan)).estimated_bytes == 100


def test_the_managed_results_dataset_is_created_once_per_process() -> None:
    first, second = (
        _plan({"ResultsDataset": "res"}, output_name="results"),
        _plan({"ResultsDataset": "res"}, attempt=0, output_name="results"),
    )
    engine, send = _engine(
        Answer(200, {}), Answer(200, _job("RUNNING", first.job_id)), Answer(200, _job("RUNNING", second.job_id))
    )
    _run(engine.submit(first))
    _run(engine.submit(second))
    datasets = [r for r in send.requests if r.path.endswith("/datasets")]
    assert len(datasets) == 1 and datasets[0].body["location"] == "EU"


# -- where things are created: nothing tied to a location before the location is known -----------------------


def _unlocated(custom: dict[str, Any] | None = None, attempt: int = 0) -> QueryPlan:
    """A task with a managed results dataset and no ``Location`` (the README's example without it)."""
    task = QueryTask("q", {"ProjectID": "proj", "ResultsDataset": "res", **(custom or {})}, "SELECT 1", "results")
    return plan_query(task, {}, _identity(attempt), Settings(), NOW)


def _dry_run_in(location: str | None) -> Answer:
    reference = {"projectId": "proj", **({"location": location} if location else {})}
    return Answer(200, {"jobReference": reference, "statistics": {"query": {"totalBytesProcessed": "0"}}})


@pytest.mark.parametrize("location", ["EU", "europe-west2", "US"])
def test_an_unset_location_places_the_results_dataset_where_the_dry_run_resolves(location: str) -> None:
    plan = _unlocated()
    engine, send = _engine(_dry_run_in(location), Answer(200, {"location": location}), Answer(200, _job("RUNNING")))
    _run(engine.submit(plan))
    assert send.requests[0].body["configuration"]["dryRun"] is True
    assert send.requests[1].path.endswith("/datasets") and send.requests[1].body["location"] == location


@pytest.mark.parametrize("location", ["EU", "europe-west2"])
def test_the_resolved_location_names_the_job_without_changing_its_id(location: str) -> None:
    plan = _unlocated()
    job = {**_job("RUNNING", plan.job_id), "jobReference": {"projectId": "proj", "jobId": plan.job_id}}
    engine, send = _engine(_dry_run_in(location), Answer(200, {"location": location}), Answer(200, job))
    handle = _run(engine.submit(plan))
    assert send.requests[2].body["jobReference"] == {"projectId": "proj", "jobId": plan.job_id, "location": location}
    assert (handle.job_id, handle.location) == (plan.job_id, location)


def test_the_location_dry_run_leaves_out_the_managed_results_table() -> None:
    plan = _unlocated()
    engine, send = _engine(_dry_run_in("EU"), Answer(200, {"location": "EU"}), Answer(200, _job("RUNNING")))
    _run(engine.submit(plan))
    assert "destinationTable" not in send.requests[0].body["configuration"]["query"]
    assert send.requests[2].body["configuration"]["query"]["destinationTable"]["datasetId"] == "res"


@pytest.mark.parametrize(
    ("custom", "calls"),
    [
        ({"Location": "EU"}, ["datasets", "jobs"]),  # the task's Location is known: no dry run
        ({"Estimate": True}, ["dry run", "datasets", "jobs"]),  # one dry run prices and locates
        ({}, ["dry run", "datasets", "jobs"]),
    ],
    ids=["configured", "priced", "resolved"],
)
def test_submit_dry_runs_once_and_only_when_something_needs_it(custom: dict[str, Any], calls: list[str]) -> None:
    plan = _unlocated(custom)
    script = [_dry_run_in("EU")] if calls[0] == "dry run" else []
    engine, send = _engine(*script, Answer(200, {"location": "EU"}), Answer(200, _job("RUNNING")))
    _run(engine.submit(plan))
    sent = [
        "dry run" if (r.body or {}).get("configuration", {}).get("dryRun") else r.path.rsplit("/", 1)[-1]
        for r in send.requests
    ]
    assert sent == calls


def test_a_task_without_results_dataset_or_location_is_left_to_bigquery() -> None:
    task = QueryTask("q", {"ProjectID": "proj"}, "SELECT 1", "results")
    plan = plan_query(task, {}, _identity(), Settings(), NOW)
    engine, send = _engine(Answer(200, _job("RUNNING", plan.job_id)))
    assert _run(engine.submit(plan)).location == "EU"  # as BigQuery placed the job
    assert len(send.requests) == 1 and "location" not in send.requests[0].body["jobReference"]


@pytest.mark.parametrize(
    ("dataset", "query", "refused"),
    [("US", "EU", True), ("US", "us-central1", True), ("EU", "EU", False), ("eu", "EU", False)],
)
def test_an_existing_results_dataset_elsewhere_is_refused(dataset: str, query: str, refused: bool) -> None:
    plan = _unlocated()
    script = [_dry_run_in(query), Answer(409, error_body(409, "duplicate")), Answer(200, {"location": dataset})]
    engine, send = _engine(*script, *([] if refused else [Answer(200, _job("RUNNING"))]))
    if refused:
        with pytest.raises(PermanentError, match=rf"proj\.res is in {dataset} but the query runs in {query}"):
            _run(engine.submit(plan))
    else:
        _run(engine.submit(plan))
    inserted = [r for r in send.requests if r.path.endswith("/jobs") and not r.body["configuration"].get("dryRun")]
    assert len(inserted) == (0 if refused else 1)


def test_a_location_the_dry_run_does_not_report_refuses_the_task() -> None:
    engine, send = _engine(_dry_run_in(None))
    with pytest.raises(PermanentError, match=r"did not report where the query runs.*Set Location"):
        _run(engine.submit(_unlocated()))
    assert len(send.requests) == 1


def test_earlier_attempts_are_looked_up_in_the_resolved_location() -> None:
    plan = _unlocated(attempt=1)
    engine, send = _engine(_dry_run_in("europe-west2"), Answer(200, _job("RUNNING", _unlocated().job_id)))
    assert _run(engine.submit(plan)).reused_from_attempt == 0
    assert send.requests[1].params["location"] == "europe-west2"


def test_a_dry_run_task_keeps_the_statistics_in_the_handle() -> None:
    plan = _plan({"QueryJobConfig": {"dryRun": True, "query": {}}})
    engine, _ = _engine(Answer(200, {**_job("DONE"), "statistics": {"query": {"totalBytesProcessed": "7"}}}))
    handle = _run(engine.submit(plan))
    assert handle.job_id == "" and handle.dry_run is not None and handle.dry_run["total_bytes_processed"] == 7


@pytest.mark.parametrize(("error", "retryable"), [(InvalidTaskError("bad"), None), (TransientError("down"), True)])
def test_a_refused_task_carries_its_message_and_retryability(error: Exception, retryable: bool | None) -> None:
    engine, _ = _engine()
    message = str(error)
    handle = engine.refused(error, "q", "proj", None)  # type: ignore[arg-type]
    assert handle.error == f"task 'q': {message}" and handle.retryable is retryable
    observation = _run(engine.observe(handle))
    assert observation.outcome is (Outcome.RETRYABLE_FAILURE if retryable else Outcome.PERMANENT_FAILURE)


# -- observe --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "outcome"),
    [
        (_job("PENDING"), Outcome.QUEUED),
        (_job("RUNNING"), Outcome.RUNNING),
        (_job("DONE"), Outcome.SUCCEEDED),
        (_job("DONE", error={"reason": "invalidQuery", "message": "x"}), Outcome.PERMANENT_FAILURE),
        (_job("DONE", error={"reason": "backendError", "message": "x"}), Outcome.RETRYABLE_FAILURE),
        (_job("DONE", error={"reason": "stopped", "message": "x"}), Outcome.ABORTED),
    ],
)
def test_observe_judges_the_job(job: dict[str, Any], outcome: Outcome) -> None:
    engine, _ = _engine(Answer(200, job))
    observation = _run(engine.observe(_handle()))
    assert observation.outcome is outcome
    assert observation.console_url is not None and "j=bq:EU:j" in observation.console_url


def test_a_declared_output_is_the_destination_table_with_its_rows() -> None:
    job = _job(
        "DONE", configuration={"query": {"destinationTable": {"projectId": "p", "datasetId": "d", "tableId": "t"}}}
    )
    engine, send = _engine(Answer(200, job), Answer(200, {"numRows": "42"}))
    observation = _run(engine.observe(_handle(output_name="results")))
    assert (observation.outcome, observation.output_uri) == (Outcome.SUCCEEDED, "bq://p:d.t")
    assert observation.info is not None and observation.info["total_rows"] == 42
    assert send.requests[1].path == "/bigquery/v2/projects/p/datasets/d/tables/t"


def test_a_row_count_that_cannot_be_read_is_null() -> None:
    job = _job(
        "DONE", configuration={"query": {"destinationTable": {"projectId": "p", "datasetId": "d", "tableId": "t"}}}
    )
    engine, _ = _engine(Answer(200, job), Answer(503, error_body(503, "backendError")))
    observation = _run(engine.observe(_handle(output_name="results")))
    assert observation.outcome is Outcome.SUCCEEDED
    assert observation.info is not None and "total_rows" in observation.info and observation.info["total_rows"] is None


def test_a_declared_output_without_a_result_table_fails() -> None:
    job = _job("DONE", statistics={"query": {"statementType": "INSERT"}})
    engine, _ = _engine(Answer(200, job))
    observation = _run(engine.observe(_handle(output_name="results")))
    assert (
        observation.outcome is Outcome.PERMANENT_FAILURE and "(INSERT) produced no result table" in observation.message
    )


def test_a_missing_job_fails_permanently() -> None:
    engine, _ = _engine(Answer(404, error_body(404, "notFound")))
    assert _run(engine.observe(_handle())).outcome is Outcome.PERMANENT_FAILURE


def test_a_job_that_cannot_be_looked_up_stays_running() -> None:
    engine, _ = _engine(*[Answer(503, error_body(503, "backendError"))] * 50)
    observation = _run(engine.observe(_handle()))
    assert observation.outcome is Outcome.RUNNING and observation.message.endswith("will check again")


def test_a_job_past_its_deadline_is_cancelled() -> None:
    engine, send = _engine(Answer(200, _job("RUNNING")), Answer(200, {}))
    observation = _run(engine.observe(_handle(deadline=1.0)))
    assert observation.outcome is Outcome.PERMANENT_FAILURE and "exceeded the task's timeout" in observation.message
    assert send.requests[1].path.endswith("/jobs/j/cancel")


# -- cancel, logs, metrics ------------------------------------------------------------------------------------


def test_cancel_without_a_job_calls_nothing() -> None:
    engine, send = _engine()
    _run(engine.cancel(_handle(job_id="", error="refused")))
    assert send.requests == []


def test_a_scripts_log_lists_its_statements() -> None:
    script = _job("DONE", statistics={"query": {"statementType": "SCRIPT"}})
    children = {
        "jobs": [
            {"statistics": {"creationTime": "2", "query": {"statementType": "SELECT"}}, "status": {"state": "DONE"}},
            {"statistics": {"creationTime": "1", "query": {"statementType": "INSERT"}}, "status": {"state": "DONE"}},
        ]
    }
    engine, send = _engine(Answer(200, script), Answer(200, children))
    lines = _run(engine.log_lines(_handle(reused_from_attempt=0)))
    assert lines[0] == "reused job j from attempt 0"
    assert lines[-2:] == ["  statement 1: INSERT DONE", "  statement 2: SELECT DONE"]
    assert send.requests[1].params["parentJobId"] == "j"


def test_metrics_of_a_refused_task_are_empty() -> None:
    engine, send = _engine()
    assert _run(engine.metrics(_handle(job_id="", error="refused"))) == {}
    assert send.requests == []
