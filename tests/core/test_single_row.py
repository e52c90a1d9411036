"""Typed outputs and checks through planning and observation: the row result travels in the handle, and a
succeeded job's single row is read (``jobs.getQueryResults``) and judged."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest
from flyte_bigquery_core.checks import CheckSpec, IntervalCheck, ValueCheck
from flyte_bigquery_core.engine import QueryEngine
from flyte_bigquery_core.errors import InvalidTaskError
from flyte_bigquery_core.handle import JobHandle
from flyte_bigquery_core.identity import ExecutionIdentity
from flyte_bigquery_core.jobs_api import JobsApi
from flyte_bigquery_core.planning import QueryPlan, QueryTask, plan_query
from flyte_bigquery_core.settings import Settings
from flyte_bigquery_core.status import Outcome
from flyte_bigquery_core.testing.scripted import Answer, ScriptedSend, error_body, scripted_transport
from flyte_bigquery_core.typed_results import declare_outputs

IDENTITY = ExecutionIdentity("flytesnacks", "development", "exec1", "n0", "wf.q", 0)
TYPED = {"TypedOutputs": declare_outputs({"n": int, "day": datetime.date}, "q").to_json()}


def _plan(custom: dict[str, Any], statement: str = "SELECT 1 AS n", output: str | None = "results") -> QueryPlan:
    task = QueryTask("q", {"ProjectID": "proj", "Location": "EU", **custom}, statement, output)
    return plan_query(task, {"day": datetime.date(2024, 1, 2)}, IDENTITY, Settings(), 0.0)


def test_typed_outputs_travel_in_the_plan_and_write_no_results_table() -> None:
    plan = _plan({**TYPED, "ResultsDataset": "flyte_results"})
    assert plan.row_result == {"task": "q", "outputs": TYPED["TypedOutputs"]}
    assert plan.output_name is None and plan.results is None
    assert "destinationTable" not in plan.resource["configuration"]["query"]
    assert "TypedOutputs" not in plan.resource["configuration"]["query"]  # never sent to BigQuery


def test_a_query_task_without_them_has_no_row_result() -> None:
    assert _plan({}).row_result is None


def test_a_check_is_always_priced_by_a_dry_run_first() -> None:
    plan = _plan({"Checks": CheckSpec().to_json()}, "SELECT TRUE AS ok")
    assert plan.policy.dry_run_first and plan.row_result is not None and "checks" in plan.row_result


def test_an_interval_check_runs_its_generated_query_with_the_date_input() -> None:
    interval = IntervalCheck("d.t", "day", {"COUNT(*)": 0.5}, date_input="day")
    plan = _plan({"Checks": CheckSpec(interval=interval).to_json()}, "ignored")
    query = plan.resource["configuration"]["query"]
    assert "CROSS JOIN" in query["query"] and query["queryParameters"][0]["name"] == "day"


@pytest.mark.parametrize(
    ("custom", "text"),
    [
        ({"TypedOutputs": {"types": "n"}}, "TypedOutputs are malformed"),
        ({"Checks": {"severity": "loud"}}, "severity 'loud'"),
        ({**TYPED, "Checks": {}}, "either TypedOutputs or Checks"),
    ],
)
def test_malformed_row_results_are_refused_at_planning(custom: dict[str, Any], text: str) -> None:
    with pytest.raises(InvalidTaskError, match=text):
        _plan(custom)


def test_the_handle_keeps_the_row_result_across_encoding() -> None:
    handle = JobHandle("j", "proj", "EU", row_result={"task": "q", "outputs": TYPED["TypedOutputs"]})
    assert JobHandle.decode(handle.encode()) == handle


# --- observing ------------------------------------------------------------------------------------------------


def _observe(row_result: dict[str, Any], *answers: Answer) -> tuple[Any, ScriptedSend]:
    send = ScriptedSend([Answer(200, {"jobReference": {"jobId": "j"}, "status": {"state": "DONE"}}), *answers])

    async def no_sleep(seconds: float) -> None:
        return None

    engine = QueryEngine(JobsApi(scripted_transport(send), 1.0, sleep=no_sleep), JobHandle)
    return asyncio.run(engine.observe(JobHandle("j", "proj", "EU", row_result=row_result))), send


def _result(fields: list[tuple[str, str]], *rows: list[Any]) -> Answer:
    body = {
        "jobComplete": True,
        "schema": {"fields": [{"name": n, "type": t} for n, t in fields]},
        "totalRows": str(len(rows)),
        "rows": [{"f": [{"v": v} for v in row]} for row in rows],
    }
    return Answer(200, body)


def test_a_succeeded_typed_result_reads_its_row_in_one_small_call() -> None:
    typed = {"task": "q", "outputs": TYPED["TypedOutputs"]}
    observation, send = _observe(typed, _result([("n", "INTEGER"), ("day", "DATE")], ["4", "2024-01-02"]))
    assert observation.outcome is Outcome.SUCCEEDED
    assert observation.values == {"n": 4, "day": datetime.date(2024, 1, 2)}
    read = send.requests[-1]
    assert read.path == "/bigquery/v2/projects/proj/queries/j"
    assert read.params == {
        "maxResults": "2",
        "formatOptions.useInt64Timestamp": "true",
        "timeoutMs": "0",
        "location": "EU",
    }


def test_a_row_that_does_not_fit_is_a_permanent_failure_naming_the_output() -> None:
    typed = {"task": "wf.q", "outputs": TYPED["TypedOutputs"]}
    observation, _ = _observe(typed, _result([("n", "INTEGER"), ("day", "DATE")]))
    assert observation.outcome is Outcome.PERMANENT_FAILURE
    assert observation.message == (
        "task 'wf.q': output(s) 'n', 'day': the query returned no rows; a typed result needs exactly one"
    )


def test_bigquery_unavailable_while_reading_the_row_keeps_the_task_running() -> None:
    typed = {"task": "q", "outputs": TYPED["TypedOutputs"]}
    observation, _ = _observe(typed, *[Answer(503, error_body(503, "backendError"))] * 40)
    assert observation.outcome is Outcome.RUNNING and "will read the result again" in observation.message


@pytest.mark.parametrize(("severity", "outcome"), [("fail", Outcome.PERMANENT_FAILURE), ("warn", Outcome.SUCCEEDED)])
def test_failed_checks_fail_or_warn_by_severity(severity: str, outcome: Outcome) -> None:
    spec = CheckSpec(severity, (ValueCheck("n", 10, 0.1),))
    observation, _ = _observe({"task": "wf.c", "checks": spec.to_json()}, _result([("n", "INTEGER")], ["20"]))
    assert observation.outcome is outcome
    assert "1 of 1 check(s) failed: n = 20.0 (expected 10 ± 10%)" in observation.message
    assert observation.info["severity"] == severity
    assert observation.info["checks"] == [
        {"check": "value: n", "passed": False, "detail": "n = 20.0 (expected 10 ± 10%)", "actual": 20.0, "expected": 10}
    ]
    assert observation.info["job_id"] == "j"  # the job's statistics are still reported
