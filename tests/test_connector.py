"""The connector against a real local BigQuery, through the real google-cloud-bigquery client."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest
from flyteidl.core.execution_pb2 import TaskExecution
from google.cloud import bigquery

from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask
from flytekitplugins.bigquery.connector import BigQueryConnector
from flytekitplugins.bigquery.metadata import BigQueryMetadata

from .helpers import literals_of, run, template_of, wait

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def connector(emulator: Any) -> BigQueryConnector:
    return BigQueryConnector()


def _task(name: str, sql: str, project: str, inputs: dict | None = None, output: bool = False) -> BigQueryTask:
    from flytekit import StructuredDataset

    return BigQueryTask(
        name=name,
        query_template=sql,
        task_config=BigQueryConfig(ProjectID=project, Location="US"),
        inputs=inputs,
        output_structured_dataset_type=StructuredDataset if output else None,
    )


def _rows(client: bigquery.Client, uri: str) -> list[dict]:
    table = uri.removeprefix("bq://").replace(":", ".")
    return [dict(r) for r in client.list_rows(table)]


def test_query_succeeds_with_results_table(connector: BigQueryConnector, emulator: Any, bq_client: Any) -> None:
    task = _task("ok", "SELECT 41 + 1 AS answer", emulator.project, output=True)
    _, resource = run(connector, task)
    assert resource.phase == TaskExecution.SUCCEEDED
    uri = resource.outputs["results"].uri
    assert uri.startswith(f"bq://{emulator.project}:")
    assert _rows(bq_client, uri) == [{"answer": 42}]


def test_task_without_declared_output_returns_no_outputs(connector: BigQueryConnector, emulator: Any) -> None:
    _, resource = run(connector, _task("no_out", "SELECT 1", emulator.project))
    assert resource.phase == TaskExecution.SUCCEEDED
    assert resource.outputs is None


def test_failing_query_is_a_permanent_failure_with_bigquery_reason(connector: BigQueryConnector, emulator: Any) -> None:
    _, resource = run(connector, _task("bad", "SELECT * FROM no_such_dataset.no_such_table", emulator.project))
    assert resource.phase == TaskExecution.FAILED
    assert "BigQuery job failed" in resource.message
    assert resource.log_links[0].uri.count("None") == 0


def test_comments_and_line_breaks_reach_bigquery_unchanged(
    connector: BigQueryConnector, emulator: Any, bq_client: Any
) -> None:
    sql = "-- leading comment\nSELECT 1 AS one -- trailing comment\n, 2 AS two"
    meta, resource = run(connector, _task("comments", sql, emulator.project, output=True))
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert bq_client.get_job(meta.job_id, location=meta.location).query == sql
    assert _rows(bq_client, resource.outputs["results"].uri) == [{"one": 1, "two": 2}]


_UTC = datetime.timezone.utc
_SCALARS = [
    # (python type, value, expected BigQuery result type, expected value read back)
    (bool, True, "BOOLEAN", True),
    (int, -(2**63), "INTEGER", -(2**63)),
    (float, 2.5, "FLOAT", 2.5),
    (str, "x'; DROP TABLE t; --", "STRING", "x'; DROP TABLE t; --"),
    (bytes, b"\x00\xffbin", "BYTES", b"\x00\xffbin"),
    (datetime.date, datetime.date(2024, 2, 29), "DATE", datetime.date(2024, 2, 29)),
    (
        datetime.datetime,
        datetime.datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
        "TIMESTAMP",
        datetime.datetime(2024, 1, 2, 1, 4, 5, 600000, tzinfo=_UTC),
    ),
    (
        datetime.datetime,
        datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=_UTC),
        "TIMESTAMP",
        datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=_UTC),
    ),
]


@pytest.mark.parametrize(("python_type", "value", "bq_type", "expected"), _SCALARS, ids=lambda v: repr(v)[:30])
def test_scalar_parameter_round_trips(
    connector: BigQueryConnector,
    emulator: Any,
    bq_client: Any,
    python_type: type,
    value: object,
    bq_type: str,
    expected: object,
) -> None:
    task = _task("scalar", "SELECT @p AS v", emulator.project, inputs={"p": python_type}, output=True)
    _, resource = run(connector, task, p=value)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    table = resource.outputs["results"].uri.removeprefix("bq://").replace(":", ".")
    assert [f.field_type for f in bq_client.get_table(table).schema] == [bq_type]
    assert _rows(bq_client, resource.outputs["results"].uri) == [{"v": expected}]


def test_undeclared_parameter_fails_before_submission(
    connector: BigQueryConnector, emulator: Any, bq_client: Any
) -> None:
    task = _task("undeclared", "SELECT @missing, @x", emulator.project, inputs={"x": int})
    before = len(list(bq_client.list_jobs()))
    meta, resource = run(connector, task, x=1)
    assert resource.phase == TaskExecution.FAILED
    assert "'undeclared'" in resource.message and "@missing" in resource.message and "x" in resource.message
    assert meta.job_id == ""
    assert len(list(bq_client.list_jobs())) == before


def test_delete_requests_cancellation_and_is_idempotent(connector: BigQueryConnector, emulator: Any) -> None:
    """The local BigQuery accepts jobs.cancel but lets the job run on, so the ABORTED phase is checked on
    documented job resources (test_status.py), and here only that cancelling twice, mid-run, is fine."""
    task = _task("cancel", "SELECT COUNT(*) FROM UNNEST(GENERATE_ARRAY(1, 3000000)) a", emulator.project)
    meta = asyncio.run(connector.create(template_of(task), literals_of(task)))
    assert asyncio.run(connector.get(meta)).phase == TaskExecution.RUNNING
    asyncio.run(connector.delete(meta))
    asyncio.run(connector.delete(meta))
    assert wait(connector, meta).phase in (TaskExecution.ABORTED, TaskExecution.SUCCEEDED)


def test_delete_of_a_job_that_does_not_exist_is_not_an_error(connector: BigQueryConnector, emulator: Any) -> None:
    asyncio.run(connector.delete(BigQueryMetadata("no-such-job", emulator.project, "US")))


def test_get_of_a_job_that_does_not_exist_fails_permanently(connector: BigQueryConnector, emulator: Any) -> None:
    resource = asyncio.run(connector.get(BigQueryMetadata("no-such-job", emulator.project, "US")))
    assert resource.phase == TaskExecution.FAILED
    assert "not found" in resource.message


def test_logs_and_metrics_describe_the_job(connector: BigQueryConnector, emulator: Any) -> None:
    meta, _ = run(connector, _task("logs", "SELECT 1", emulator.project))
    logs = asyncio.run(connector.get_logs(meta))
    assert any(meta.job_id in line for line in logs.body.results)
    assert "statement type: SELECT" in logs.body.results
    metrics = asyncio.run(connector.get_metrics(meta))
    names = {m.metric for m in metrics.results}
    assert names == {"BIGQUERY_JOB_TIMELINE", "BIGQUERY_JOB_STATISTICS"}


def test_logs_of_a_script_list_each_statement(connector: BigQueryConnector, emulator: Any) -> None:
    sql = "DECLARE x INT64 DEFAULT 1;\nCREATE TEMP TABLE t AS SELECT x AS a;\nSELECT * FROM t;"
    meta, resource = run(connector, _task("script", sql, emulator.project))
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    lines = asyncio.run(connector.get_logs(meta)).body.results
    assert "statement type: SCRIPT" in lines
    statements = [line for line in lines if line.startswith("  statement ")]
    assert len(statements) == 2
    assert statements[-1].endswith("SELECT DONE")


SERVED_PROGRAM = """
import asyncio, gc, sys
if sys.argv[1] == "served":
    import flytekit.extend.backend.connector_service  # what pyflyte serve connector and our launcher import
from flyte_bigquery_core.settings import Settings
from flytekitplugins.bigquery.connector import BigQueryConnector
from flytekitplugins.bigquery.metadata import BigQueryMetadata
before = gc.get_freeze_count()
connector = BigQueryConnector(Settings(emulator_host="http://127.0.0.1:9"))
asyncio.run(connector.delete(BigQueryMetadata(job_id="", project="p", location="US")))  # no job: no call
print(before, gc.get_freeze_count())
"""


@pytest.mark.parametrize(("process", "frozen"), [("served", True), ("local", False)])
def test_the_first_call_in_a_connector_service_freezes_the_heap(process: str, frozen: bool) -> None:
    """Under ``pyflyte serve connector`` as under the launcher; a local ``pyflyte run`` is left alone."""
    import subprocess
    import sys

    command = [sys.executable, "-c", SERVED_PROGRAM, process]
    before, after = map(int, subprocess.run(command, capture_output=True, text=True, check=True).stdout.split())
    assert before == 0
    assert (after > 0) is frozen
