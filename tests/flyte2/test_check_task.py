"""``BigQueryCheckTask`` for Flyte 2 against the local BigQuery: its own task type and connector (registered on
import and through the ``flyte.connectors`` entry point), row/value/interval checks, severity, the cost guard (a
dry run first, ``MaximumBytes``), reattachment and reuse, a local run feeding a typed result into a check, and the
check behind our gRPC service."""

from __future__ import annotations

import asyncio
import datetime
import importlib.metadata
from collections.abc import Iterator
from typing import Any

import flyte
import pytest
from flyte.connectors import ConnectorRegistry
from flyte.io import DataFrame
from flyte_bigquery_core.testing.faultproxy import dry_run_estimate
from flyte_bigquery_core.testing.service_process import ServiceProcess
from flyteidl2.connector import connector_pb2 as pb
from flyteplugins.bigquery import (
    BigQueryCheckTask,
    BigQueryConfig,
    BigQueryTask,
    IntervalCheck,
    InvalidTaskError,
    ValueCheck,
)
from flyteplugins.bigquery.check_task import CHECK_TASK_TYPE, BigQueryCheckConnector
from google.cloud import bigquery
from google.protobuf import json_format

from .helpers import (
    INSERT_PATH,
    PROJECT,
    create,
    execution_metadata,
    faults_in_front,
    new_execution,
    phase,
    run,
    template_of,
    wait,
)
from .service_helpers import served, service_process

DOWNLOADS = "samples.daily_downloads"
ONE_SERIES = "package = 'flytekit' AND version = '1.15.4'"


def _check(**kwargs: Any) -> BigQueryCheckTask:
    config = kwargs.pop("plugin_config", BigQueryConfig(ProjectID=PROJECT, Location="US"))
    return BigQueryCheckTask(name="dq_check", plugin_config=config, **kwargs)


@pytest.fixture
def connector(emulator: Any) -> BigQueryCheckConnector:
    return BigQueryCheckConnector()


def _jobs(client: bigquery.Client, execution: str) -> list[str]:
    return [job.job_id for job in client.list_jobs() if execution in job.job_id]


def test_the_check_task_has_its_own_task_type_and_connector() -> None:
    template = template_of(_check(query_template="SELECT TRUE AS ok"))
    assert template.type == CHECK_TASK_TYPE
    checks = json_format.MessageToDict(template.custom)["Checks"]
    assert checks == {"severity": "fail", "values": [], "interval": None}
    assert isinstance(ConnectorRegistry.get_connector(CHECK_TASK_TYPE, 0), BigQueryCheckConnector)
    [entry] = [ep for ep in importlib.metadata.entry_points(group="flyte.connectors") if ep.name == "bigquery_check"]
    assert entry.load() is BigQueryCheckConnector


def test_a_row_check_whose_columns_are_all_true_succeeds(connector: BigQueryCheckConnector) -> None:
    sql = f"SELECT COUNT(*) > 0 AS has_rows, COUNTIF(downloads IS NULL) = 0 AS no_nulls FROM {DOWNLOADS}"
    _, resource = run(connector, _check(query_template=sql))
    assert phase(resource) == "SUCCEEDED", resource.message
    assert resource.message == "all 2 check(s) passed"
    assert resource.custom_info is not None
    assert [c["passed"] for c in resource.custom_info["checks"]] == [True, True]
    assert resource.custom_info["estimated_bytes_processed"] == 0  # priced by a dry run first
    assert resource.outputs is None


def test_a_failed_row_check_fails_the_task_naming_the_check_and_its_value(connector: BigQueryCheckConnector) -> None:
    _, resource = run(connector, _check(query_template=f"SELECT COUNT(*) > 1000000 AS big_enough FROM {DOWNLOADS}"))
    assert phase(resource) == "FAILED"
    assert resource.message == "task 'dq_check': 1 of 1 check(s) failed: big_enough is False"


@pytest.mark.parametrize(
    ("expected", "tolerance", "passes"), [(1200, 0.0, True), (1000, 0.25, True), (1000, 0.1, False)]
)
def test_value_checks_hold_a_column_within_a_tolerance(
    connector: BigQueryCheckConnector, expected: float, tolerance: float, passes: bool
) -> None:
    check = _check(
        query_template=f"SELECT SUM(downloads) AS n FROM {DOWNLOADS} WHERE day = @day AND {ONE_SERIES}",
        inputs={"day": datetime.date},
        value_checks=[ValueCheck("n", expected, tolerance)],
    )
    _, resource = run(connector, check, day=datetime.datetime(2025, 6, 1, tzinfo=datetime.timezone.utc))
    assert phase(resource) == ("SUCCEEDED" if passes else "FAILED"), resource.message
    assert resource.custom_info is not None and resource.custom_info["checks"][0]["actual"] == 1200.0


def test_severity_warn_succeeds_reporting_the_failed_checks_in_info_message_and_logs(
    connector: BigQueryCheckConnector,
) -> None:
    check = _check(
        query_template=f"SELECT COUNT(*) AS n, FALSE AS fresh FROM {DOWNLOADS}",
        value_checks=[ValueCheck("n", 1)],
        severity="warn",
    )
    meta, resource = run(connector, check)
    assert phase(resource) == "SUCCEEDED"
    assert resource.message is not None
    assert resource.message.startswith("2 of 2 check(s) failed: n = ") and "severity warn" in resource.message
    assert resource.custom_info is not None and resource.custom_info["severity"] == "warn"

    async def logs() -> list[str]:
        return [line for response in [r async for r in connector.get_logs(meta)] for line in response.body.results]

    assert any(line.endswith("DONE") for line in asyncio.run(logs()))


@pytest.mark.parametrize(("threshold", "outcome"), [(3.5, "SUCCEEDED"), (1.0, "FAILED")])
def test_an_interval_check_compares_the_day_with_days_before(
    connector: BigQueryCheckConnector, bq_client: bigquery.Client, threshold: float, outcome: str
) -> None:
    interval = IntervalCheck(
        table=DOWNLOADS,
        date_expression="day",
        where=ONE_SERIES,
        metrics={"SUM(downloads)": threshold},
        days_back=4,
        date_input="day",
    )
    _, resource = run(
        connector, _check(interval=interval, inputs={"day": datetime.date}), day=datetime.date(2025, 6, 5)
    )
    assert phase(resource) == outcome, resource.message
    assert resource.custom_info is not None
    [result] = resource.custom_info["checks"]
    sums = {
        str(day): float(total)
        for day, total in bq_client.query(
            f"SELECT day, SUM(downloads) FROM {DOWNLOADS} WHERE day IN ('2025-06-05', '2025-06-01') AND {ONE_SERIES} "
            "GROUP BY day"
        ).result()
    }
    assert result["actual"] == {"current": sums["2025-06-05"], "reference": sums["2025-06-01"]}


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [  # every refusal is the core's (tests/core/test_check_definition.py); these reach it through the adapter
        ({"query_template": "SELECT TRUE AS ok", "severity": "loud"}, "severity 'loud' is not one of fail, warn"),
        ({}, "needs a query_template (or an interval check)"),
        ({"query_template": "SELECT TRUE AS ok", "outputs": {"ok": bool}}, "a check task has no outputs"),
        ({"query_template": "SELECT TRUE AS ok", "output_dataframe_type": DataFrame}, "a check task has no outputs"),
    ],
)
def test_bad_check_definitions_are_refused_naming_the_task(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(InvalidTaskError) as caught:
        _check(**kwargs)
    assert text in str(caught.value) and "'dq_check'" in str(caught.value)


def test_a_check_column_that_is_not_bool_fails_even_with_severity_warn(connector: BigQueryCheckConnector) -> None:
    _, resource = run(connector, _check(query_template="SELECT 1 AS one", severity="warn"))
    assert phase(resource) == "FAILED"
    assert resource.message is not None
    assert "row check column 'one' is INTEGER; every column of a row check must be BOOL" in resource.message


# --- the cost guard, reattachment and reuse ------------------------------------------------------------------


def test_a_check_over_maximum_bytes_is_refused_before_it_runs(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, bq_client: bigquery.Client
) -> None:
    with faults_in_front(emulator, monkeypatch) as faults:
        faults.add_rule("rewrite", "POST", INSERT_PATH, count=None, transform=dry_run_estimate(5 * 2**30))
        config = BigQueryConfig(ProjectID=PROJECT, Location="US", MaximumBytes="1 GiB")
        check = _check(plugin_config=config, query_template=f"SELECT COUNT(*) > 0 AS ok FROM {DOWNLOADS}")
        execution = new_execution()
        connector = BigQueryCheckConnector()
        resource = wait(connector, create(connector, template_of(check), execution_metadata(execution)))
        assert phase(resource) == "FAILED"
        assert resource.message is not None
        assert "would process 5.0 GiB, over the limit of 1.0 GiB; nothing was run" in resource.message
        assert [e.endpoint for e in faults.log] == ["jobs.insert"]  # the dry run, and nothing after it
    assert _jobs(bq_client, execution) == []


def test_a_lost_insert_answer_reattaches_and_the_check_is_judged(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, bq_client: bigquery.Client
) -> None:
    with faults_in_front(emulator, monkeypatch) as faults:
        faults.add_rule("delay", "POST", INSERT_PATH, count=1, seconds=0)  # the dry run passes
        faults.add_rule("drop", "POST", INSERT_PATH, count=1)  # the job's insert reaches BigQuery, its answer is lost
        connector = BigQueryCheckConnector()
        execution = new_execution()
        check = _check(query_template=f"SELECT COUNT(*) > 0 AS has_rows FROM {DOWNLOADS}")
        meta = create(connector, template_of(check), execution_metadata(execution))
        resource = wait(connector, meta)
        assert phase(resource) == "SUCCEEDED", resource.message
        assert resource.custom_info is not None and resource.custom_info["checks"][0]["check"] == "row: has_rows"
        assert [e.status for e in faults.exchanges("jobs.insert")][-1] == 409
    assert _jobs(bq_client, execution) == [meta.job_id]


def test_a_later_attempt_reuses_the_earlier_check_job(
    connector: BigQueryCheckConnector, bq_client: bigquery.Client
) -> None:
    execution = new_execution()
    template = template_of(_check(query_template="SELECT TRUE AS ok"))
    first = create(connector, template, execution_metadata(execution, attempt=0))
    assert phase(wait(connector, first)) == "SUCCEEDED"
    retry = create(connector, template, execution_metadata(execution, attempt=1))
    resource = wait(connector, retry)
    assert phase(resource) == "SUCCEEDED" and resource.message is not None and "reused job" in resource.message
    assert _jobs(bq_client, execution) == [first.job_id]


# --- a local run: a typed result feeds a check -------------------------------------------------------------------

latest_day = BigQueryTask(
    name="dq_latest_day",
    query_template=f"SELECT MAX(day) AS day FROM {DOWNLOADS}",
    plugin_config=BigQueryConfig(ProjectID=PROJECT, Location="US"),
    outputs={"day": datetime.date},
)
enough_on = _check(
    query_template=f"SELECT SUM(downloads) > 1000 AS enough FROM {DOWNLOADS} WHERE day = @day AND {ONE_SERIES}",
    inputs={"day": datetime.date},
)
too_many_on = _check(
    query_template=f"SELECT SUM(downloads) > 1000000 AS huge FROM {DOWNLOADS} WHERE day = @day AND {ONE_SERIES}",
    inputs={"day": datetime.date},
)
env = flyte.TaskEnvironment.from_task("bq_check_env", latest_day, enough_on, too_many_on)


@env.task
async def check_latest_day(strict: bool) -> str:
    day = await latest_day()
    await (too_many_on if strict else enough_on)(day=day)
    return f"{day} checked"


@pytest.fixture(scope="module")
def local(emulator: Any) -> None:
    flyte.init()


def test_a_local_run_feeds_a_typed_result_into_a_check(local: None) -> None:
    [text] = flyte.with_runcontext(mode="local").run(check_latest_day, strict=False).outputs()
    assert text.endswith(" checked")


def test_a_failed_check_fails_the_local_run_naming_the_check(local: None) -> None:
    with pytest.raises(Exception, match=r"dq_check.*FAILED.*huge is False"):
        flyte.with_runcontext(mode="local").run(check_latest_day, strict=True).outputs()


# --- behind our gRPC service ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(emulator: Any) -> Iterator[ServiceProcess]:
    with service_process() as process:
        yield process
        assert process.stop() == 0, process.log_text()[-3000:]


def test_through_the_service_a_check_is_served_by_its_entry_point_and_judged(service: ServiceProcess) -> None:
    check = _check(query_template=f"SELECT COUNT(*) = 0 AS empty FROM {DOWNLOADS}", severity="fail")
    metadata = execution_metadata(new_execution())
    request = pb.CreateTaskRequest(
        template=template_of(check), output_prefix="/tmp/unused", task_execution_metadata=metadata
    )
    resource = served(service, request)
    assert phase(resource) == "FAILED"
    assert resource.message == "task 'dq_check': 1 of 1 check(s) failed: empty is False"
    assert json_format.MessageToDict(resource.custom_info)["checks"][0]["passed"] is False
