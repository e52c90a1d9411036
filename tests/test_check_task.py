"""BigQueryCheckTask end to end: its own task type and connector, row/value/interval checks against the local
BigQuery, severity, the cost guard (a dry run first, ``MaximumBytes``), a local workflow (typed result → check),
and the service path with retries."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest
from flyte_bigquery_core.testing.faultproxy import FaultProxy
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service.agent_pb2_grpc import AsyncAgentServiceStub
from flytekit import workflow
from flytekit.extend.backend.base_connector import ConnectorRegistry
from google.cloud import bigquery
from google.protobuf import json_format

from flytekitplugins.bigquery import (
    BigQueryCheckTask,
    BigQueryConfig,
    BigQueryTask,
    IntervalCheck,
    InvalidTaskError,
    ValueCheck,
)
from flytekitplugins.bigquery.check_task import CHECK_TASK_TYPE, BigQueryCheckConnector

from .helpers import (
    INSERT_PATH,
    create_request,
    dry_run_estimate,
    jobs_of,
    new_execution,
    poll,
    pyflyte_run,
    run,
    template_of,
)

CHECK = agent_pb2.TaskCategory(name=CHECK_TASK_TYPE, version=0)
DOWNLOADS = "samples.daily_downloads"
ONE_SERIES = "package = 'flytekit' AND version = '1.15.4'"


def _check(project: str, **kwargs: Any) -> BigQueryCheckTask:
    config = kwargs.pop("task_config", BigQueryConfig(ProjectID=project, Location="US"))
    return BigQueryCheckTask(name="dq.check", task_config=config, **kwargs)


def _run(check: BigQueryCheckTask, **inputs: Any) -> Any:
    return run(BigQueryCheckConnector(), check, **inputs)[1]


def test_the_check_task_has_its_own_task_type_and_connector() -> None:
    check = _check("p", query_template="SELECT TRUE AS ok")
    template = template_of(check)
    assert template.type == CHECK_TASK_TYPE
    assert template.custom["Checks"] == {"severity": "fail", "values": [], "interval": None}
    assert isinstance(ConnectorRegistry.get_connector(CHECK_TASK_TYPE), BigQueryCheckConnector)


def test_a_row_check_whose_columns_are_all_true_succeeds(emulator: Any) -> None:
    check = _check(
        emulator.project,
        query_template=f"SELECT COUNT(*) > 0 AS has_rows, COUNTIF(downloads IS NULL) = 0 AS no_nulls FROM {DOWNLOADS}",
    )
    resource = _run(check)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert resource.message == "all 2 check(s) passed"
    assert [c["passed"] for c in resource.custom_info["checks"]] == [True, True]
    assert resource.custom_info["estimated_bytes_processed"] == 0  # priced by a dry run first


def test_a_failed_row_check_fails_the_task_naming_the_check_and_its_value(emulator: Any) -> None:
    check = _check(emulator.project, query_template=f"SELECT COUNT(*) > 1000000 AS big_enough FROM {DOWNLOADS}")
    resource = _run(check)
    assert resource.phase == TaskExecution.FAILED
    assert resource.message == "task 'dq.check': 1 of 1 check(s) failed: big_enough is False"
    assert resource.custom_info["checks"][0]["passed"] is False


@pytest.mark.parametrize(
    ("expected", "tolerance", "passes"), [(1200, 0.0, True), (1000, 0.25, True), (1000, 0.1, False)]
)
def test_value_checks_hold_a_column_within_a_tolerance(
    emulator: Any, expected: float, tolerance: float, passes: bool
) -> None:
    check = _check(
        emulator.project,
        query_template=f"SELECT SUM(downloads) AS n FROM {DOWNLOADS} WHERE day = @day AND {ONE_SERIES}",
        inputs={"day": datetime.date},
        value_checks=[ValueCheck("n", expected, tolerance)],
    )
    resource = _run(check, day=datetime.date(2025, 6, 1))
    assert resource.phase == (TaskExecution.SUCCEEDED if passes else TaskExecution.FAILED), resource.message
    assert resource.custom_info["checks"][0]["actual"] == 1200.0


def test_severity_warn_succeeds_and_reports_the_failed_checks(emulator: Any) -> None:
    check = _check(
        emulator.project,
        query_template=f"SELECT COUNT(*) AS n, FALSE AS fresh FROM {DOWNLOADS}",
        value_checks=[ValueCheck("n", 1)],
        severity="warn",
    )
    connector = BigQueryCheckConnector()
    meta, resource = run(connector, check)
    assert resource.phase == TaskExecution.SUCCEEDED
    assert resource.message.startswith("2 of 2 check(s) failed: n = ") and "severity warn" in resource.message
    assert resource.custom_info["severity"] == "warn"
    logs = asyncio.run(connector.get_logs(meta)).body.results
    assert logs[0].endswith("DONE")  # the job's own report is there too


@pytest.mark.parametrize(("threshold", "phase"), [(3.5, TaskExecution.SUCCEEDED), (1.0, TaskExecution.FAILED)])
def test_an_interval_check_compares_today_with_days_before(emulator: Any, threshold: float, phase: int) -> None:
    # flytekit 1.15.4: 5036 downloads on 2025-06-05, 1200 on 2025-06-01: a change of 320 %.
    interval = IntervalCheck(
        table=DOWNLOADS,
        date_expression="day",
        where=ONE_SERIES,
        metrics={"SUM(downloads)": threshold},
        days_back=4,
        date_input="day",
    )
    check = _check(emulator.project, interval=interval, inputs={"day": datetime.date})
    resource = _run(check, day=datetime.date(2025, 6, 5))
    assert resource.phase == phase, resource.message
    [result] = resource.custom_info["checks"]
    assert result["actual"] == {"current": 5036.0, "reference": 1200.0}
    assert "change 319.7%" in result["detail"]


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"query_template": "SELECT TRUE AS ok", "severity": "loud"}, "severity 'loud' is not one of fail, warn"),
        ({}, "needs a query_template (or an interval check)"),
        (
            {"interval": IntervalCheck("d.t", "day", {"COUNT(*)": 1}, date_input="day")},
            "date_input 'day' is not an input of the task",
        ),
        (
            {"query_template": "SELECT 1", "interval": IntervalCheck("d.t", "day", {"COUNT(*)": 1})},
            "an interval check generates its own query",
        ),
        ({"query_template": "SELECT 1", "value_checks": [ValueCheck("n", 1, -1)]}, "tolerance >= 0"),
        ({"query_template": "SELECT TRUE AS ok", "outputs": {"ok": bool}}, "a check task has no outputs"),
    ],
)
def test_bad_check_definitions_are_refused_naming_the_task(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(InvalidTaskError) as caught:
        _check("p", **kwargs)
    assert text in str(caught.value) and "'dq.check'" in str(caught.value)


def test_a_check_column_that_is_not_bool_fails_even_with_severity_warn(emulator: Any) -> None:
    resource = _run(_check(emulator.project, query_template="SELECT 1 AS one", severity="warn"))
    assert resource.phase == TaskExecution.FAILED
    assert "row check column 'one' is INTEGER; every column of a row check must be BOOL" in resource.message


# --- a local workflow: a typed result feeds a check ---------------------------------------------------------


def test_a_local_workflow_feeds_a_typed_result_into_a_check(emulator: Any) -> None:
    config = BigQueryConfig(ProjectID=emulator.project, Location="US")
    latest = BigQueryTask(
        name="dq.latest_day",
        query_template=f"SELECT MAX(day) AS day FROM {DOWNLOADS}",
        task_config=config,
        outputs={"day": datetime.date},
    )
    enough = BigQueryCheckTask(
        name="dq.enough",
        task_config=config,
        query_template=f"SELECT SUM(downloads) AS n FROM {DOWNLOADS} WHERE day = @day AND {ONE_SERIES}",
        inputs={"day": datetime.date},
        value_checks=[ValueCheck("n", 5036, 0.0)],
    )

    @workflow
    def wf() -> None:
        enough(day=latest())

    wf()


# --- the cost guard and the service ------------------------------------------------------------------------


def test_through_the_service_a_check_over_maximum_bytes_is_refused_before_it_runs(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any, bq_client: bigquery.Client
) -> None:
    faults.add_rule("rewrite", "POST", INSERT_PATH, count=None, transform=dry_run_estimate(5 * 2**30))
    config = BigQueryConfig(ProjectID=emulator.project, Location="US", MaximumBytes="1 GiB")
    check = _check(emulator.project, task_config=config, query_template=f"SELECT COUNT(*) > 0 AS ok FROM {DOWNLOADS}")
    execution = new_execution()
    meta = agents_via_proxy.CreateTask(create_request(check, execution), timeout=60).resource_meta
    resource = poll(agents_via_proxy, meta, category=CHECK)
    assert resource.phase == TaskExecution.FAILED
    assert "would process 5.0 GiB, over the limit of 1.0 GiB; nothing was run" in resource.message
    assert [e.endpoint for e in faults.log] == ["jobs.insert"]  # the dry run, and nothing after it
    assert jobs_of(bq_client, execution) == []


def test_through_the_service_a_lost_insert_answer_reattaches_and_the_check_is_judged(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any, bq_client: bigquery.Client
) -> None:
    faults.add_rule("delay", "POST", INSERT_PATH, count=1, seconds=0)  # the dry run passes
    faults.add_rule("drop", "POST", INSERT_PATH, count=1)  # the job's insert reaches BigQuery, its answer is lost
    check = _check(emulator.project, query_template=f"SELECT COUNT(*) > 0 AS has_rows FROM {DOWNLOADS}")
    execution = new_execution()
    meta = agents_via_proxy.CreateTask(create_request(check, execution), timeout=60).resource_meta
    resource = poll(agents_via_proxy, meta, category=CHECK)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    info = json_format.MessageToDict(resource.custom_info)
    assert info["checks"][0]["check"] == "row: has_rows"
    assert len(jobs_of(bq_client, execution)) == 1


def test_through_the_service_a_new_attempt_reuses_the_earlier_check_job(
    agents: AsyncAgentServiceStub, emulator: Any, bq_client: bigquery.Client
) -> None:
    check = _check(emulator.project, query_template="SELECT TRUE AS ok")
    execution = new_execution()
    first = agents.CreateTask(create_request(check, execution, attempt=0), timeout=60).resource_meta
    assert poll(agents, first, category=CHECK).phase == TaskExecution.SUCCEEDED
    second = agents.CreateTask(create_request(check, execution, attempt=1), timeout=60).resource_meta
    resource = poll(agents, second, category=CHECK)
    assert resource.phase == TaskExecution.SUCCEEDED and "reused job" in resource.message
    assert len(jobs_of(bq_client, execution)) == 1


def test_the_example_runs_under_pyflyte_run(emulator: Any) -> None:
    """examples/typed_result_check.py: sensor → typed result → conditional → check, through the real CLI."""
    proc = pyflyte_run(emulator, "examples/typed_result_check.py", "wf")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2025-06-05: 239570 downloads (a busy day)" in proc.stdout


def test_through_the_service_deleting_a_check_cancels_its_job(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any
) -> None:
    check = _check(emulator.project, query_template="SELECT TRUE AS ok")
    meta = agents_via_proxy.CreateTask(create_request(check, new_execution()), timeout=60).resource_meta
    delete = agent_pb2.DeleteTaskRequest(task_category=CHECK, resource_meta=meta)
    agents_via_proxy.DeleteTask(delete, timeout=30)
    agents_via_proxy.DeleteTask(delete, timeout=30)  # idempotent
    assert [e.status for e in faults.exchanges("jobs.cancel")] == [200, 200]
