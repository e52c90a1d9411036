"""Planning load, extract and copy runs: the job resource, its id, labels and timeout, and refusals that name
the task; and the query engine running the plan (409 adoption, reuse of an earlier attempt's job, outputs)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from flyte_bigquery_core.access_policy import AccessPolicy, AccessRule
from flyte_bigquery_core.engine import QueryEngine
from flyte_bigquery_core.errors import InvalidTaskError, PermanentError
from flyte_bigquery_core.handle import JobHandle
from flyte_bigquery_core.identity import ExecutionIdentity
from flyte_bigquery_core.jobs_api import JobsApi
from flyte_bigquery_core.planning import QueryPlan
from flyte_bigquery_core.settings import Settings
from flyte_bigquery_core.status import Outcome
from flyte_bigquery_core.testing.scripted import Answer, ScriptedSend, error_body, scripted_transport
from flyte_bigquery_core.transfer import TransferTask, check_definition, plan_transfer

NOW = 1_700_000_000.0
SPECS: dict[str, tuple[str, dict[str, Any], Any]] = {
    "load": ("LoadJob", {"destination": "ds.t"}, "gs://b/f.parquet"),
    "extract": ("ExtractJob", {"destination": "gs://b/out"}, "bq://proj:ds.t"),
    "copy": ("CopyJob", {"destination": "ds.copy"}, "ds.t"),
}


ETL = "etl@analytics-prod.iam.gserviceaccount.com"


def _identity(attempt: int = 0, execution: str = "exec1") -> ExecutionIdentity:
    return ExecutionIdentity("flytesnacks", "development", execution, "n0", "wf.t", attempt)


def _task(kind: str, output: str | None = "table", timeout: float | None = None, **custom: Any) -> TransferTask:
    key, spec, _ = SPECS[kind]
    return TransferTask("wf.t", kind, {"ProjectID": "proj", "Location": "EU", key: spec, **custom}, output, timeout)


def _plan(
    kind: str = "load", attempt: int = 0, source: Any = None, settings: Settings | None = None, **kw: Any
) -> QueryPlan:
    value = SPECS[kind][2] if source is None else source
    return plan_transfer(_task(kind, **kw), {"source": value}, _identity(attempt), settings or Settings(), NOW)


@pytest.mark.parametrize("kind", list(SPECS))
def test_each_kind_plans_one_section_with_the_job_reference(kind: str) -> None:
    plan = _plan(kind)
    assert set(plan.resource["configuration"]) == {kind, "labels"}
    assert plan.resource["jobReference"] == {"projectId": "proj", "jobId": plan.job_id, "location": "EU"}
    assert plan.job_id.startswith("flyte-exec1-n0-a0-")
    assert not plan.dry_run and not plan.writes_managed_table and not plan.policy.dry_run_first


def test_labels_are_connector_defaults_under_flytes_under_the_tasks() -> None:
    settings = Settings(default_labels={"team": "data", "flyte_node": "x"})
    labels = _plan(settings=settings, Labels={"Team": "Growth"}).resource["configuration"]["labels"]
    assert labels["team"] == "growth" and labels["flyte_node"] == "n0" and labels["flyte_execution"] == "exec1"


def test_the_job_id_is_the_same_for_a_retry_and_new_for_other_work_or_attempts() -> None:
    assert _plan().job_id == _plan().job_id
    assert _plan().job_id != _plan(attempt=1).job_id
    assert _plan().job_id != _plan(source="gs://b/other.parquet").job_id
    assert _plan().fingerprint == _plan(attempt=1).fingerprint


def test_the_timeout_bounds_the_job_and_sets_the_deadline() -> None:
    plan = _plan(timeout=90)
    assert plan.resource["configuration"]["jobTimeoutMs"] == "90000"
    assert plan.deadline == NOW + 90


def test_a_transfer_runs_as_its_caller_in_its_execution_project_on_its_reservation() -> None:
    policy = AccessPolicy((AccessRule("etl", "flytesnacks", "development", (ETL,), ()),))
    custom = {"ImpersonateServiceAccount": ETL, "ExecutionProject": "compute", "Reservation": "none"}
    plan = _plan("load", settings=Settings(impersonation_rules=policy), **custom)
    assert plan.caller.principal == ETL
    assert plan.resource["jobReference"]["projectId"] == "compute"
    assert plan.resource["configuration"]["reservation"] == "none"
    assert plan.resource["configuration"]["load"]["destinationTable"]["projectId"] == "proj"  # the data's project


def test_a_transfer_as_a_principal_no_rule_allows_is_refused_naming_it() -> None:
    with pytest.raises(PermanentError, match=ETL) as refused:
        _plan("copy", ImpersonateServiceAccount=ETL)
    assert refused.value.task == "wf.t"


def test_a_local_run_gets_a_unique_job_id() -> None:
    task = _task("copy")
    local = ExecutionIdentity("", "", "", "", "t", 0)
    first, second = (plan_transfer(task, {"source": "ds.t"}, local, Settings(), NOW) for _ in "ab")
    assert first.job_id != second.job_id and first.job_id.startswith("flyte-local-")


@pytest.mark.parametrize(
    ("task", "message"),
    [
        pytest.param(_task("load", ProjectID=""), "BigQueryConfig.ProjectID is missing", id="no-project"),
        pytest.param(_task("load", LoadJob=None), "LoadJob is missing", id="no-spec"),
        pytest.param(TransferTask("wf.t", "query", {"ProjectID": "p"}), "unknown job kind 'query'", id="unknown-kind"),
        pytest.param(_task("load", Labels={"a": "1", "A": "2"}), "Labels: labels 'a' and 'A'", id="label-collision"),
        pytest.param(_task("load", Labels=["x"]), "Labels must be an object", id="labels-not-a-map"),
        pytest.param(_task("load", Location=3), "Location must be a string", id="bad-location"),
    ],
)
def test_a_bad_task_is_refused_naming_it(task: TransferTask, message: str) -> None:
    with pytest.raises(InvalidTaskError) as e:
        plan_transfer(task, {"source": "gs://b/f"}, _identity(), Settings(), NOW)
    assert e.value.task == "wf.t" and message in str(e.value)


def test_a_definition_is_checked_with_its_input_still_unknown() -> None:
    check_definition(_task("copy", CopyJob={"destination": "ds.t"}), ["source"])
    check_definition(_task("load", LoadJob={"destination": "ds.t"}), ["source", "partition"])
    with pytest.raises(InvalidTaskError, match=r"CopyJob\.sources is empty"):
        check_definition(_task("copy", CopyJob={"destination": "ds.t"}), [])


@pytest.mark.parametrize(
    ("kind", "inputs", "message"),
    [
        ("copy", ["source", "partition"], "input(s) partition are not read by a copy task; it reads 'source'"),
        ("load", ["source", "day"], "input(s) day are not read by a load task; it reads 'source', 'partition'"),
    ],
)
def test_a_definition_with_inputs_its_kind_does_not_read_is_refused(kind: str, inputs: list[str], message: str) -> None:
    with pytest.raises(InvalidTaskError) as e:
        check_definition(_task(kind), inputs)
    assert e.value.task == "wf.t" and message in str(e.value)


def test_a_loads_partition_input_picks_the_partition_of_the_run() -> None:
    task = _task("load", LoadJob={"destination": "ds.events", "timePartitioning": {"type": "DAY", "field": "d"}})
    day = dt.datetime(2024, 1, 2)  # a date arrives from Flyte as a datetime at midnight
    plan = plan_transfer(task, {"source": "gs://b/f", "partition": day}, _identity(), Settings(), NOW)
    assert plan.resource["configuration"]["load"]["destinationTable"]["tableId"] == "events$20240102"
    other = plan_transfer(task, {"source": "gs://b/f", "partition": day.replace(day=3)}, _identity(), Settings(), NOW)
    assert other.job_id != plan.job_id


# -- the engine runs a transfer plan -------------------------------------------------------------------------


def _engine(*script: Answer) -> tuple[QueryEngine[JobHandle], ScriptedSend]:
    send = ScriptedSend(script)

    async def no_sleep(seconds: float) -> None:
        return None

    return QueryEngine(JobsApi(scripted_transport(send), 1.0, sleep=no_sleep), JobHandle), send


def _job(plan: QueryPlan, state: str, job_id: str | None = None, **extra: Any) -> dict[str, Any]:
    reference = {"projectId": "proj", "jobId": job_id or plan.job_id, "location": "EU"}
    return {
        "jobReference": reference,
        "configuration": plan.resource["configuration"],
        "status": {"state": state},
        **extra,
    }


def test_a_transfer_job_is_inserted_as_planned_without_a_dry_run() -> None:
    plan = _plan("load")
    engine, send = _engine(Answer(200, _job(plan, "RUNNING")))
    handle = asyncio.run(engine.submit(plan))
    assert [r.method for r in send.requests] == ["POST"] and send.requests[0].body == plan.resource
    assert handle.destination == "proj:ds.t"


def test_a_retried_transfer_submission_adopts_its_job() -> None:
    plan = _plan("copy")
    engine, send = _engine(Answer(409, error_body(409, "duplicate")), Answer(200, _job(plan, "RUNNING")))
    assert asyncio.run(engine.submit(plan)).job_id == plan.job_id
    assert [r.method for r in send.requests] == ["POST", "GET"]


def test_a_later_attempt_reuses_the_running_load_of_an_earlier_one() -> None:
    plan, earlier = _plan("load", attempt=1), _plan("load", attempt=0)
    engine, send = _engine(Answer(200, _job(earlier, "RUNNING")))
    handle = asyncio.run(engine.submit(plan))
    assert (handle.job_id, handle.reused_from_attempt) == (earlier.job_id, 0)
    assert len(send.requests) == 1


def test_a_rejected_transfer_job_is_a_permanent_error() -> None:
    engine, _ = _engine(Answer(400, error_body(400, "invalid", "bad source")))
    with pytest.raises(PermanentError, match="bad source"):
        asyncio.run(engine.submit(_plan("extract")))


def _observe(plan: QueryPlan, job: dict[str, Any], table: dict[str, Any] | None = None) -> Any:
    answers = [Answer(200, job)] + ([Answer(200, table)] if table is not None else [])
    engine, _ = _engine(*answers)
    handle = JobHandle(plan.job_id, "proj", "EU", output_name="table")
    return asyncio.run(engine.observe(handle))


def test_a_finished_extract_outputs_its_folder_and_statistics() -> None:
    plan = _plan("extract", output="directory")
    stats = {"extract": {"destinationUriFileCounts": ["2", "1"], "inputBytes": "300"}}
    observation = _observe(plan, _job(plan, "DONE", statistics=stats))
    assert (observation.outcome, observation.output_uri) == (Outcome.SUCCEEDED, "gs://b/out")
    assert (observation.info["job_type"], observation.info["output_files"], observation.info["input_bytes"]) == (
        "EXTRACT",
        3,
        300,
    )


def test_a_load_into_a_partition_outputs_the_whole_table() -> None:
    plan = _plan("load", LoadJob={"destination": "ds.events$20240101", "writeDisposition": "WRITE_TRUNCATE"})
    stats = {
        "load": {"inputFiles": "2", "inputFileBytes": "10", "outputRows": "7", "outputBytes": "70", "badRecords": "0"}
    }
    observation = _observe(plan, _job(plan, "DONE", statistics=stats), {"numRows": "7"})
    assert observation.output_uri == "bq://proj:ds.events"
    info = observation.info
    assert [info[k] for k in ("input_files", "output_rows", "bad_records", "destination")] == [
        2,
        7,
        0,
        "proj:ds.events$20240101",
    ]


def test_a_failed_load_is_retryable_or_not_by_its_reason() -> None:
    plan = _plan("load")
    failed = {"state": "DONE", "errorResult": {"reason": "backendError", "message": "try again"}}
    assert _observe(plan, {**_job(plan, "DONE"), "status": failed}).outcome is Outcome.RETRYABLE_FAILURE
    failed = {"state": "DONE", "errorResult": {"reason": "invalid", "message": "bad file"}}
    assert _observe(plan, {**_job(plan, "DONE"), "status": failed}).outcome is Outcome.PERMANENT_FAILURE
