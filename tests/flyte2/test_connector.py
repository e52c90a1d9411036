"""The Flyte 2 connector called directly, with templates from Flyte 2's serializer, against the local BigQuery:
parameters as Flyte 2 delivers them, outputs only when declared, phases, ids, labels, logs, metrics, cancel."""

from __future__ import annotations

import asyncio
import datetime
import decimal
from typing import Any, Optional

import pytest
from flyte.io import DataFrame
from flyte_bigquery_core.settings import Settings
from flyte_bigquery_core.status import Outcome
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteplugins.bigquery import BigQueryConfig, BigQueryConnector, BigQueryTask
from flyteplugins.bigquery.connector import PHASES
from google.cloud import bigquery

from .helpers import PROJECT, create, execution_metadata, job_of, new_execution, phase, rows_of, run, template_of, wait
from .types_for_tests import Color, Level, Window

_UTC = datetime.timezone.utc


@pytest.fixture
def connector(emulator: Any) -> BigQueryConnector:
    return BigQueryConnector()


def _task(sql: str, inputs: dict[str, Any] | None = None, output: bool = True, **config: Any) -> BigQueryTask:
    return BigQueryTask(
        name="bq_task",
        query_template=sql,
        plugin_config=BigQueryConfig(ProjectID=PROJECT, **config),
        inputs=inputs,
        output_dataframe_type=DataFrame if output else None,
    )


# (declared type, the value as Flyte 2 hands it to a connector, the value BigQuery returns)
PARAMETERS = [
    (int, -(2**63), -(2**63)),
    (float, 2.5, 2.5),
    (str, "x'; DROP TABLE t; --", "x'; DROP TABLE t; --"),
    (bool, True, True),
    (bytes, b"\x00\xffbin", b"\x00\xffbin"),
    # Flyte 2 carries a date as a datetime at midnight UTC.
    (datetime.date, datetime.datetime(2024, 2, 29, tzinfo=_UTC), datetime.date(2024, 2, 29)),
    (datetime.date, datetime.date(2024, 2, 29), datetime.date(2024, 2, 29)),  # a local run: the caller's own
    # A zoned datetime is an instant (upstream dropped the offset into a DATETIME).
    (
        datetime.datetime,
        datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
        datetime.datetime(2024, 1, 2, 1, 4, 5, tzinfo=_UTC),
    ),
    (datetime.time, datetime.time(12, 30, 15), datetime.time(12, 30, 15)),
    (decimal.Decimal, decimal.Decimal("12345.678901234"), decimal.Decimal("12345.678901234")),
    (Optional[int], None, None),
    (list[str], ["a", "b"], ["a", "b"]),
    (list[datetime.date], [datetime.datetime(2024, 1, 1, tzinfo=_UTC)], [datetime.date(2024, 1, 1)]),
    (dict, {"k": [1, 2]}, {"k": [1, 2]}),
    # Enums arrive by member name in a service, as the member in a local run.
    (Color, "BLUE", "blue"),
    (Color, Color.RED, "red"),
    (Level, "HIGH", 9),
    (list[Level], ["LOW", "HIGH"], [1, 9]),
]


@pytest.mark.parametrize(("declared", "value", "expected"), PARAMETERS, ids=lambda v: repr(v)[:40])
def test_each_parameter_type_round_trips(
    connector: BigQueryConnector, bq_client: bigquery.Client, declared: Any, value: Any, expected: Any
) -> None:
    _, resource = run(connector, _task("SELECT @p AS v", {"p": declared}), p=value)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert rows_of(bq_client, resource.outputs["results"].uri) == [{"v": expected}]


@pytest.mark.parametrize(
    "value",
    [
        {"label": "w", "start": "2024-03-01", "seen": "2024-03-01T10:00:00+00:00"},  # a service: dates as text
        Window("w", datetime.date(2024, 3, 1), datetime.datetime(2024, 3, 1, 10, tzinfo=_UTC)),  # a local run
    ],
    ids=["as-delivered", "local"],
)
def test_a_dataclass_is_a_struct_with_its_dates_typed(
    connector: BigQueryConnector, bq_client: bigquery.Client, value: Any
) -> None:
    _, resource = run(connector, _task("SELECT @w.start AS s, @w.seen AS t", {"w": Window}), w=value)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    expected = {"s": datetime.date(2024, 3, 1), "t": datetime.datetime(2024, 3, 1, 10, tzinfo=_UTC)}
    assert rows_of(bq_client, resource.outputs["results"].uri) == [expected]


def test_comments_and_line_breaks_reach_bigquery_unchanged(
    connector: BigQueryConnector, bq_client: bigquery.Client
) -> None:
    sql = "SELECT 1 AS a -- a comment that must end here\n, '  x  ' AS b"
    meta, resource = run(connector, _task(sql))
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert job_of(bq_client, meta).query == sql
    assert rows_of(bq_client, resource.outputs["results"].uri) == [{"a": 1, "b": "  x  "}]


def test_a_template_placeholder_renders_an_identifier(connector: BigQueryConnector, bq_client: bigquery.Client) -> None:
    task = _task("SELECT COUNT(*) AS n FROM {{ .inputs.table }}", {"table": str})
    _, resource = run(connector, task, table="samples.daily_downloads")
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert rows_of(bq_client, resource.outputs["results"].uri)[0]["n"] > 0


def test_a_task_without_an_output_returns_none(connector: BigQueryConnector) -> None:
    _, resource = run(connector, _task("SELECT 1", output=False))
    assert resource.phase == TaskExecution.SUCCEEDED and resource.outputs is None


def test_the_result_goes_to_the_managed_results_table(connector: BigQueryConnector) -> None:
    meta, resource = run(connector, _task("SELECT 1 AS a"))
    assert resource.outputs["results"].uri == f"bq://{meta.destination}"
    assert meta.destination.endswith(f".{meta.job_id}")


def test_a_failing_query_fails_permanently_with_bigquerys_reason(connector: BigQueryConnector) -> None:
    _, resource = run(connector, _task("SELECT * FROM no_such_dataset.no_such_table"))
    assert resource.phase == TaskExecution.FAILED
    assert "notFound" in resource.message or "no_such" in resource.message


def test_every_outcome_has_a_phase_and_aborts_and_retryable_failures_keep_theirs() -> None:
    assert set(PHASES) == set(Outcome)
    assert PHASES[Outcome.ABORTED] == TaskExecution.ABORTED
    assert PHASES[Outcome.RETRYABLE_FAILURE] == TaskExecution.RETRYABLE_FAILED


def test_a_repeated_create_reattaches_to_the_same_job(connector: BigQueryConnector, bq_client: bigquery.Client) -> None:
    execution = new_execution()
    template = template_of(_task("SELECT @n AS n", {"n": int}))
    first = create(connector, template, execution_metadata(execution), n=1)
    second = create(connector, template, execution_metadata(execution), n=1)
    assert first.job_id == second.job_id and first.job_id.startswith(f"flyte-{execution}-n0-a0-")
    assert [job.job_id for job in bq_client.list_jobs() if execution in job.job_id] == [first.job_id]


def test_a_later_attempt_reuses_the_earlier_attempts_successful_job(connector: BigQueryConnector) -> None:
    execution = new_execution()
    template = template_of(_task("SELECT 2 AS n"))
    first = create(connector, template, execution_metadata(execution, attempt=0))
    assert phase(wait(connector, first)) == "SUCCEEDED"
    retry = create(connector, template, execution_metadata(execution, attempt=1))
    assert (retry.job_id, retry.reused_from_attempt) == (first.job_id, 0)


def test_the_job_carries_flyte_labels_and_the_tasks_own(
    connector: BigQueryConnector, bq_client: bigquery.Client
) -> None:
    execution = new_execution()
    config = bigquery.QueryJobConfig(labels={"team": "data"}, priority="BATCH")
    meta = create(connector, template_of(_task("SELECT 1", QueryJobConfig=config)), execution_metadata(execution))
    labels = job_of(bq_client, meta).labels
    assert labels["team"] == "data"
    assert execution in labels.values() and "flytesnacks" in labels.values()


def test_the_console_link_names_the_job(connector: BigQueryConnector) -> None:
    meta, resource = run(connector, _task("SELECT 1"))
    [link] = resource.log_links
    assert link.name == "BigQuery Console" and meta.job_id in link.uri and "project=local-project" in link.uri


def test_logs_stream_readable_lines_and_metrics_describe_the_job(connector: BigQueryConnector) -> None:
    meta, _ = run(connector, _task("SELECT 1"))

    async def logs() -> list[str]:
        return [
            line.message for response in [r async for r in connector.get_logs(meta)] for line in response.body.lines
        ]

    lines = asyncio.run(logs())
    assert any(meta.job_id in line and "DONE" in line for line in lines)
    metrics = asyncio.run(connector.get_metrics(meta))
    assert "BIGQUERY_JOB_TIMELINE" in [result.metric for result in metrics.results]


def test_delete_requests_cancellation_and_is_idempotent(connector: BigQueryConnector) -> None:
    meta = create(connector, template_of(_task("SELECT 1")), execution_metadata(new_execution()))
    asyncio.run(connector.delete(meta))
    asyncio.run(connector.delete(meta))  # a finished or cancelled job is not an error
    # The local BigQuery ignores cancellation, so the job ends as it would have; BigQuery would report "stopped".
    assert phase(wait(connector, meta)) in ("SUCCEEDED", "ABORTED")


def test_the_tasks_timeout_becomes_the_jobs_timeout_and_deadline(
    connector: BigQueryConnector, bq_client: bigquery.Client
) -> None:
    task = BigQueryTask(name="slow", query_template="SELECT 1", plugin_config=BigQueryConfig(PROJECT), timeout=120)
    meta = create(connector, template_of(task), execution_metadata(new_execution()))
    assert meta.deadline is not None
    assert job_of(bq_client, meta)._properties["configuration"]["jobTimeoutMs"] == "120000"


def test_a_byte_limit_reaches_the_job(connector: BigQueryConnector, bq_client: bigquery.Client) -> None:
    meta = create(connector, template_of(_task("SELECT 1", MaximumBytes="1 GiB")), execution_metadata(new_execution()))
    assert job_of(bq_client, meta)._properties["configuration"]["query"]["maximumBytesBilled"] == str(2**30)


def test_a_credentials_secret_is_not_used_against_the_local_bigquery(connector: BigQueryConnector) -> None:
    template = template_of(_task("SELECT 1", output=False))
    meta = asyncio.run(connector.create(task_template=template, google_application_credentials="{not a key"))
    assert phase(wait(connector, meta)) == "SUCCEEDED"  # anonymous credentials, whatever the connection holds


def test_a_credentials_secret_that_is_no_key_fails_the_task_without_quoting_it() -> None:
    connector = BigQueryConnector(Settings.from_env({}))  # real BigQuery's endpoint: the secret would be used
    template = template_of(_task("SELECT 1", output=False))
    meta = asyncio.run(connector.create(task_template=template, google_application_credentials="s3cret-not-json"))
    resource = asyncio.run(connector.get(meta))
    assert resource.phase == TaskExecution.FAILED and "google_application_credentials" in resource.message
    assert "s3cret" not in resource.message
