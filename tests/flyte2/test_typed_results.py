"""Small typed results in Flyte 2 against the local BigQuery: the connector called directly with templates from
Flyte 2's serializer, its outputs turned into literals by Flyte 2's own ``get_resource_proto`` and read back as
the declared types (what a downstream task receives), a local run branching on a typed result, bad results, and
reattachment and reuse keeping one job."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import enum
from collections.abc import Iterator
from typing import Any, Optional

import flyte
import pytest
from flyte.connectors import Resource
from flyte.connectors._connector import get_resource_proto
from flyte.io import DataFrame
from flyte.types import TypeEngine
from flyte_bigquery_core.errors import InvalidTaskError, UnsupportedInputError
from flyte_bigquery_core.testing.service_process import ServiceProcess
from flyte_bigquery_core.typed_results import OUTPUTS_KEY
from flyteidl2.connector import connector_pb2 as pb
from flyteplugins.bigquery import BigQueryConfig, BigQueryConnector, BigQueryTask
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
from .service_helpers import inputs_of, served, service_process

UTC = datetime.timezone.utc


@dataclasses.dataclass
class DayStats:
    day: datetime.date
    downloads: int
    share: Optional[float]
    amount: decimal.Decimal
    at: datetime.time
    raw: bytes
    tags: list[str]


def _typed(sql: str, outputs: dict[str, Any], inputs: dict[str, type] | None = None) -> BigQueryTask:
    return BigQueryTask(
        name="typed_query",
        query_template=sql,
        plugin_config=BigQueryConfig(ProjectID=PROJECT, Location="US"),
        inputs=inputs,
        outputs=outputs,
    )


async def _downstream(resource: Resource, declared: dict[str, Any]) -> dict[str, Any]:
    """The outputs as a downstream task receives them: Flyte 2's server turns ``Resource.outputs`` into literals
    (``get_resource_proto``), the consumer reads them as its declared types."""
    proto = await get_resource_proto(resource)
    literals = {named.name: named.value for named in proto.outputs.literals}
    return {name: await TypeEngine.to_python_value(literals[name], kind) for name, kind in declared.items()}


@pytest.fixture
def connector(emulator: Any) -> BigQueryConnector:
    return BigQueryConnector()


SCALARS = (
    "SELECT 7 AS n, 2.5 AS x, 'héllo' AS s, TRUE AS ok, DATE '2024-01-02' AS day, "
    "TIMESTAMP '2024-01-01 10:00:00+00' AS at, CAST(NULL AS INT64) AS missing, JSON '{\"a\": [1]}' AS j, "
    "INTERVAL 36 HOUR AS took, NUMERIC '12.50' AS amount, b'\\x00\\xff' AS raw, TIME '10:30:00' AS clock"
)
SCALAR_OUTPUTS = {
    "n": int,
    "x": float,
    "s": str,
    "ok": bool,
    "day": datetime.date,
    "at": datetime.datetime,
    "missing": Optional[int],
    "j": dict,
    "took": datetime.timedelta,
    "amount": decimal.Decimal,
    "raw": bytes,
    "clock": datetime.time,
}


def test_scalar_outputs_come_from_the_single_row_as_the_declared_types(connector: BigQueryConnector) -> None:
    meta, resource = run(connector, _typed(SCALARS, SCALAR_OUTPUTS))
    assert phase(resource) == "SUCCEEDED", resource.message
    assert asyncio.run(_downstream(resource, SCALAR_OUTPUTS)) == {
        "n": 7,
        "x": 2.5,
        "s": "héllo",
        "ok": True,
        "day": datetime.date(2024, 1, 2),
        "at": datetime.datetime(2024, 1, 1, 10, tzinfo=UTC),
        "missing": None,
        "j": {"a": [1]},
        "took": datetime.timedelta(hours=36),
        "amount": decimal.Decimal("12.5"),  # BigQuery sends NUMERIC without trailing zeros
        "raw": b"\x00\xff",
        "clock": datetime.time(10, 30),
    }
    assert meta.output_name is None and meta.destination is None  # no results table, no bq:// output


def test_outputs_flyte_2_cannot_type_travel_as_pickles_the_connector_only_produces(
    connector: BigQueryConnector,
) -> None:
    _, resource = run(connector, _typed(SCALARS, SCALAR_OUTPUTS))
    proto = asyncio.run(get_resource_proto(resource))
    literals = {named.name: named.value for named in proto.outputs.literals}
    assert literals["n"].scalar.primitive.integer == 7
    assert literals["day"].scalar.primitive.HasField("datetime")
    for pickled in ("amount", "raw", "clock"):  # Flyte 2's own transport for these types: an inline pickle
        assert literals[pickled].scalar.binary.value.startswith(b"\x80")


def test_one_dataclass_output_reads_the_whole_row(connector: BigQueryConnector) -> None:
    sql = (
        "SELECT day, downloads, CAST(NULL AS FLOAT64) AS share, NUMERIC '12.50' AS amount, TIME '10:30:00' AS at, "
        "b'\\x00\\x01' AS raw, ['a', 'b'] AS tags FROM samples.daily_downloads "
        "WHERE day = @day AND version = '1.15.4'"
    )
    task = _typed(sql, {"stats": DayStats}, inputs={"day": datetime.date})
    # Flyte 2 carries a date input as a datetime at midnight UTC.
    _, resource = run(connector, task, day=datetime.datetime(2025, 6, 2, tzinfo=UTC))
    assert phase(resource) == "SUCCEEDED", resource.message
    assert asyncio.run(_downstream(resource, {"stats": DayStats})) == {
        "stats": DayStats(
            datetime.date(2025, 6, 2),
            2159,
            None,
            decimal.Decimal("12.5"),
            datetime.time(10, 30),
            b"\x00\x01",
            ["a", "b"],
        )
    }


@pytest.mark.parametrize(
    ("sql", "text"),
    [  # every rule is the core's (tests/core/test_typed_results.py); these reach it through the real result
        ("SELECT 1 AS n FROM UNNEST([1]) AS x WHERE FALSE", "output(s) 'n': the query returned no rows"),
        ("SELECT x AS n FROM UNNEST([1, 2, 3]) AS x", "the query returned 3 rows; a typed result needs"),
        ("SELECT 'seven' AS n", "output 'n' is declared int but column 'n' is STRING; cast it in SQL"),
    ],
)
def test_a_result_that_does_not_fit_fails_permanently_naming_task_and_output(
    connector: BigQueryConnector, sql: str, text: str
) -> None:
    _, resource = run(connector, _typed(sql, {"n": int}))
    assert phase(resource) == "FAILED"
    assert resource.message is not None
    assert resource.message.startswith("task 'typed_query': ") and text in resource.message
    assert resource.outputs is None


class Size(enum.Enum):
    SMALL = "small"


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"outputs": {"n": int}, "output_dataframe_type": DataFrame}, InvalidTaskError, "not both"),
        ({"outputs": {"xs": list[int]}}, InvalidTaskError, "output 'xs' is a list"),
        ({"outputs": {"size": Size}}, InvalidTaskError, "output 'size' is an Enum"),
        ({"outputs": {"f": type(print)}}, UnsupportedInputError, "output 'f'"),
    ],
)
def test_bad_output_declarations_are_refused_when_defined_naming_task_and_output(
    kwargs: dict[str, Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match="typed_query") as info:
        BigQueryTask(
            name="typed_query", query_template="SELECT 1", plugin_config=BigQueryConfig(ProjectID=PROJECT), **kwargs
        )
    assert text in str(info.value)


def test_the_template_records_the_output_types_for_the_connector() -> None:
    template = template_of(
        _typed("SELECT 1 AS n, DATE '2024-01-01' AS day", {"n": int, "day": Optional[datetime.date]})
    )
    custom = json_format.MessageToDict(template.custom)
    assert custom[OUTPUTS_KEY] == {"types": {"n": "INT64", "day": "DATE"}, "nullable": ["day"]}
    assert sorted(entry.key for entry in template.interface.outputs.variables) == ["day", "n"]


# --- reattach and reuse keep one job -----------------------------------------------------------------------------


def test_a_lost_insert_answer_reattaches_and_the_row_is_read(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, bq_client: bigquery.Client
) -> None:
    with faults_in_front(emulator, monkeypatch) as faults:
        faults.add_rule("drop", "POST", INSERT_PATH, count=1)
        faults.add_rule("status", "GET", r"/queries/", count=1, status=503)  # the row read is retried too
        connector = BigQueryConnector()
        execution = new_execution()
        template = template_of(_typed("SELECT @n * 2 AS doubled", {"doubled": int}, inputs={"n": int}))
        meta = create(connector, template, execution_metadata(execution), n=21)
        resource = wait(connector, meta)
        assert phase(resource) == "SUCCEEDED", resource.message
        assert resource.outputs == {"doubled": 42}
        assert [(e.upstream_status, e.status) for e in faults.exchanges("jobs.insert")] == [(200, None), (409, 409)]
        assert [e.status for e in faults.exchanges("jobs.getQueryResults")][:2] == [503, 200]
    assert [job.job_id for job in bq_client.list_jobs() if execution in job.job_id] == [meta.job_id]


def test_a_later_attempt_reuses_the_earlier_job_and_reads_its_row(connector: BigQueryConnector) -> None:
    execution = new_execution()
    template = template_of(_typed("SELECT @n + 1 AS next", {"next": int}, inputs={"n": int}))
    first = create(connector, template, execution_metadata(execution, attempt=0), n=1)
    assert phase(wait(connector, first)) == "SUCCEEDED"
    retry = create(connector, template, execution_metadata(execution, attempt=1), n=1)
    assert (retry.job_id, retry.reused_from_attempt) == (first.job_id, 0)
    resource = wait(connector, retry)
    assert phase(resource) == "SUCCEEDED" and resource.outputs == {"next": 2}


# --- a local run: a typed result drives a Python branch ----------------------------------------------------------

downloads_on = _typed(
    "SELECT SUM(downloads) AS n, MAX(day) AS last_day FROM samples.daily_downloads "
    "WHERE day = @day AND package = 'flytekit' AND version = '1.15.4'",
    {"n": int, "last_day": datetime.date},
    inputs={"day": datetime.date},
)
day_stats = _typed(
    "SELECT DATE '2025-06-02' AS day, 2159 AS downloads, 0.5 AS share, NUMERIC '1.25' AS amount, "
    "TIME '10:30:00' AS at, b'ab' AS raw, ['x'] AS tags",
    {"stats": DayStats},
)
env = flyte.TaskEnvironment.from_task("bq_typed_env", downloads_on, day_stats)


@env.task
async def describe_day(day: datetime.date) -> str:
    n, last_day = await downloads_on(day=day)
    return f"{last_day}: {'busy' if n > 3000 else 'quiet'} day ({n})"


@env.task
async def stats_amount() -> str:
    stats = await day_stats()
    assert isinstance(stats, DayStats)
    return f"{stats.amount} at {stats.at} {stats.raw!r} {stats.tags}"


@pytest.fixture(scope="module")
def local(emulator: Any) -> None:
    flyte.init()


def _run(task: Any, **inputs: Any) -> Any:
    return flyte.with_runcontext(mode="local").run(task, **inputs).outputs()


def test_a_typed_query_task_runs_locally_and_returns_its_values(local: None, bq_client: bigquery.Client) -> None:
    day = datetime.date(2025, 6, 5)
    [(total,)] = bq_client.query(
        "SELECT SUM(downloads) FROM samples.daily_downloads WHERE day = '2025-06-05' AND package = 'flytekit' "
        "AND version = '1.15.4'"
    ).result()
    assert tuple(_run(downloads_on, day=day)) == (total, day)


def test_a_local_run_branches_on_a_typed_result(local: None) -> None:
    [busy] = _run(describe_day, day=datetime.date(2025, 6, 5))
    [quiet] = _run(describe_day, day=datetime.date(2025, 6, 1))
    assert busy.startswith("2025-06-05: busy day")
    assert quiet.startswith("2025-06-01: quiet day")


def test_a_local_run_returns_a_dataclass_output_as_the_declared_class(local: None) -> None:
    assert _run(stats_amount)[0] == "1.25 at 10:30:00 b'ab' ['x']"


def test_a_local_run_of_a_result_that_does_not_fit_fails_naming_the_output(local: None) -> None:
    too_many = _typed("SELECT x AS n FROM UNNEST([1, 2]) AS x", {"n": int})
    flyte.TaskEnvironment.from_task("bq_typed_env_failing", too_many)
    with pytest.raises(Exception, match=r"typed_query.*FAILED.*output\(s\) 'n': the query returned 2 rows"):
        _run(too_many)


# --- behind our gRPC service ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(emulator: Any) -> Iterator[ServiceProcess]:
    with service_process() as process:
        yield process
        assert process.stop() == 0, process.log_text()[-3000:]


def _served(service: ServiceProcess, task: BigQueryTask, **inputs: tuple[type, Any]) -> pb.Resource:
    request = pb.CreateTaskRequest(
        template=template_of(task),
        inputs=asyncio.run(inputs_of(inputs)),
        output_prefix="/tmp/unused",
        task_execution_metadata=execution_metadata(new_execution()),
    )
    return served(service, request)


def test_through_the_service_typed_outputs_arrive_as_literals_of_the_declared_types(service: ServiceProcess) -> None:
    outputs = {"n": int, "amount": decimal.Decimal, "stats": Optional[int]}
    task = _typed("SELECT @n * 2 AS n, NUMERIC '1.50' AS amount, NULL AS stats", outputs, inputs={"n": int})
    resource = _served(service, task, n=(int, 21))
    assert phase(resource) == "SUCCEEDED", resource.message
    literals = {named.name: named.value for named in resource.outputs.literals}

    async def read() -> dict[str, Any]:
        return {name: await TypeEngine.to_python_value(literals[name], kind) for name, kind in outputs.items()}

    assert asyncio.run(read()) == {"n": 42, "amount": decimal.Decimal("1.5"), "stats": None}


def test_through_the_service_a_row_that_does_not_fit_is_a_failed_task_not_a_grpc_error(
    service: ServiceProcess,
) -> None:
    resource = _served(service, _typed("SELECT 'seven' AS n", {"n": int}))
    assert phase(resource) == "FAILED"
    assert "output 'n' is declared int but column 'n' is STRING" in resource.message
    assert not resource.outputs.literals
