"""Small typed results end to end: the real connector (in-process and behind flytekit's gRPC service) against the
local BigQuery, a local flytekit workflow branching on a typed result, bad results, and retries/reattachment."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
from typing import Any, Optional

import pytest
from flyte_bigquery_core.testing.faultproxy import FaultProxy
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service.agent_pb2_grpc import AsyncAgentServiceStub
from flytekit import FlyteContextManager, conditional, task, workflow
from flytekit.core.type_engine import TypeEngine
from flytekit.models.literals import LiteralMap
from google.cloud import bigquery

from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask, InvalidTaskError
from flytekitplugins.bigquery.connector import BigQueryConnector
from flytekitplugins.bigquery.metadata import BigQueryMetadata
from flytekitplugins.bigquery.testing.requests import create_task_request

from .helpers import INSERT_PATH, create_request, jobs_of, literals_of, new_execution, poll, run, template_of, wait

UTC = datetime.timezone.utc


@dataclasses.dataclass
class DayStats:
    day: datetime.date
    downloads: int
    share: Optional[float]
    amount: decimal.Decimal
    at: datetime.time
    raw: bytes


def _typed(sql: str, project: str, outputs: dict[str, Any], inputs: dict[str, type] | None = None) -> BigQueryTask:
    return BigQueryTask(
        name="typed.query",
        query_template=sql,
        task_config=BigQueryConfig(ProjectID=project, Location="US"),
        inputs=inputs,
        outputs=outputs,
    )


def _python(task: BigQueryTask, literals: LiteralMap) -> dict[str, Any]:
    """The outputs as the downstream task would receive them (flytekit's own decoding of our literals)."""
    ctx = FlyteContextManager.current_context()
    types = task.python_interface.outputs
    return {name: TypeEngine.to_python_value(ctx, literal, types[name]) for name, literal in literals.literals.items()}


SCALARS = (
    "SELECT 7 AS n, 2.5 AS x, 'héllo' AS s, TRUE AS ok, DATE '2024-01-02' AS day, "
    "TIMESTAMP '2024-01-01 10:00:00+00' AS at, DATETIME '2024-01-01 10:00:00' AS wall, "
    "CAST(NULL AS INT64) AS missing, [1, 2] AS xs, JSON '{\"a\": [1]}' AS j, INTERVAL 36 HOUR AS took"
)


def test_scalar_outputs_come_from_the_single_row_as_flyte_literals(emulator: Any) -> None:
    outputs = {
        "n": int,
        "x": float,
        "s": str,
        "ok": bool,
        "day": datetime.date,
        "at": datetime.datetime,
        "wall": datetime.datetime,
        "missing": Optional[int],
        "xs": list[int],
        "j": dict,
        "took": datetime.timedelta,
    }
    typed = _typed(SCALARS, emulator.project, outputs)
    meta, resource = run(BigQueryConnector(), typed)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert isinstance(resource.outputs, LiteralMap)
    assert _python(typed, resource.outputs) == {
        "n": 7,
        "x": 2.5,
        "s": "héllo",
        "ok": True,
        "day": datetime.date(2024, 1, 2),
        "at": datetime.datetime(2024, 1, 1, 10, tzinfo=UTC),
        "wall": datetime.datetime(2024, 1, 1, 10, tzinfo=UTC),  # flytekit carries every datetime as an instant
        "missing": None,
        "xs": [1, 2],
        "j": {"a": [1]},
        "took": datetime.timedelta(hours=36),
    }
    assert meta.output_name is None and meta.destination is None  # no results table, no bq:// output
    assert resource.custom_info["statement_type"] == "SELECT"


def test_one_dataclass_output_reads_the_whole_row(emulator: Any) -> None:
    sql = (
        "SELECT day, downloads, CAST(NULL AS FLOAT64) AS share, NUMERIC '12.50' AS amount, TIME '10:30:00' AS at, "
        "b'\\x00\\x01' AS raw FROM samples.daily_downloads WHERE day = @day AND version = '1.15.4'"
    )
    typed = _typed(sql, emulator.project, {"stats": DayStats}, inputs={"day": datetime.date})
    _, resource = run(BigQueryConnector(), typed, day=datetime.date(2025, 6, 2))
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert _python(typed, resource.outputs) == {
        "stats": DayStats(
            datetime.date(2025, 6, 2), 2159, None, decimal.Decimal("12.50"), datetime.time(10, 30), b"\x00\x01"
        )
    }


@pytest.mark.parametrize(
    ("sql", "outputs", "text"),
    [
        ("SELECT 1 AS n FROM UNNEST([1]) AS x WHERE FALSE", {"n": int}, "output(s) 'n': the query returned no rows"),
        ("SELECT x AS n FROM UNNEST([1, 2, 3]) AS x", {"n": int}, "the query returned 3 rows; a typed result needs"),
        ("SELECT CAST(NULL AS INT64) AS n", {"n": int}, "output 'n' is declared int, but column 'n' is NULL"),
        ("SELECT 'seven' AS n", {"n": int}, "output 'n' is declared int but column 'n' is STRING; cast it in SQL"),
        ("SELECT 1 AS m", {"n": int}, "output 'n' reads the column of its name, but the result has m"),
    ],
)
def test_a_result_that_does_not_fit_fails_permanently_naming_task_and_output(
    emulator: Any, sql: str, outputs: dict[str, Any], text: str
) -> None:
    _, resource = run(BigQueryConnector(), _typed(sql, emulator.project, outputs))
    assert resource.phase == TaskExecution.FAILED
    assert resource.message.startswith("task 'typed.query': ") and text in resource.message
    assert resource.outputs is None


PICKLED = "SELECT NUMERIC '12.50' AS amount, b'\\x00\\xff' AS raw, TIME '10:30:00' AS at, [b'a', b'b'] AS raws"
PICKLED_OUTPUTS = {"amount": decimal.Decimal, "raw": bytes, "at": datetime.time, "raws": list[bytes]}
PICKLED_VALUES = {
    "amount": decimal.Decimal("12.50"),
    "raw": b"\x00\xff",
    "at": datetime.time(10, 30),
    "raws": [b"a", b"b"],
}


def test_outputs_flyte_carries_as_pickles_are_written_under_the_output_prefix(emulator: Any, tmp_path: Any) -> None:
    typed = _typed(PICKLED, emulator.project, PICKLED_OUTPUTS)
    connector = BigQueryConnector()
    meta = asyncio.run(connector.create(template_of(typed), literals_of(typed), output_prefix=str(tmp_path)))
    assert meta.output_prefix == str(tmp_path)
    resource = wait(connector, meta)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert _python(typed, resource.outputs) == PICKLED_VALUES
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "amount.pickle",
        "at.pickle",
        "raw.pickle",
        "raws.0.pickle",
        "raws.1.pickle",
    ]


def test_a_task_without_pickled_outputs_records_no_output_prefix(emulator: Any, tmp_path: Any) -> None:
    typed = _typed("SELECT 1 AS n", emulator.project, {"n": int})
    meta = asyncio.run(BigQueryConnector().create(template_of(typed), literals_of(typed), output_prefix=str(tmp_path)))
    assert meta.output_prefix is None


def test_pickled_outputs_without_an_output_prefix_fail_permanently(emulator: Any) -> None:
    _, resource = run(BigQueryConnector(), _typed(PICKLED, emulator.project, PICKLED_OUTPUTS))
    assert resource.phase == TaskExecution.FAILED
    assert resource.message.startswith("task 'typed.query': output '")
    assert resource.message.endswith("must be written as a file, but no output prefix was recorded")


def test_an_output_store_that_cannot_be_written_is_a_retryable_failure(emulator: Any, tmp_path: Any) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    typed = _typed(PICKLED, emulator.project, PICKLED_OUTPUTS)
    connector = BigQueryConnector()
    meta = asyncio.run(connector.create(template_of(typed), literals_of(typed), output_prefix=str(blocked)))
    resource = wait(connector, meta)
    assert resource.phase == TaskExecution.RETRYABLE_FAILED  # the next attempt reuses the job and writes again
    assert resource.message.startswith("task 'typed.query': the typed outputs could not be written (")


def test_a_task_with_both_kinds_of_output_is_refused_when_defined() -> None:
    with pytest.raises(InvalidTaskError, match=r"either output_structured_dataset_type .* or outputs"):
        BigQueryTask(
            name="both",
            query_template="SELECT 1",
            task_config=BigQueryConfig(ProjectID="p"),
            outputs={"n": int},
            output_structured_dataset_type=dict,  # type: ignore[arg-type]
        )


# --- a local workflow branches on a typed result -----------------------------------------------------------------


@task
def celebrate(n: int) -> str:
    return f"{n} downloads: busy day"


@task
def shrug(n: int) -> str:
    return f"{n} downloads: quiet day"


@task
def describe(amount: decimal.Decimal, raw: bytes, at: datetime.time, raws: list[bytes]) -> str:
    return f"{amount} {raw.hex()} {at.isoformat()} {b''.join(raws).decode()}"


def test_a_local_workflow_passes_pickled_outputs_downstream(emulator: Any) -> None:
    typed = _typed(PICKLED, emulator.project, PICKLED_OUTPUTS)

    @workflow
    def wf() -> str:
        amount, raw, at, raws = typed()
        return describe(amount=amount, raw=raw, at=at, raws=raws)

    assert wf() == "12.5 00ff 10:30:00 ab"  # BigQuery sends NUMERIC without trailing zeros


def test_a_local_workflow_branches_on_a_typed_result(emulator: Any) -> None:
    count = _typed(
        "SELECT SUM(downloads) AS n, MAX(day) AS last_day FROM samples.daily_downloads "
        "WHERE day = @day AND package = 'flytekit' AND version = '1.15.4'",
        emulator.project,
        {"n": int, "last_day": datetime.date},
        inputs={"day": datetime.date},
    )

    @workflow
    def wf(day: datetime.date) -> str:
        n, _ = count(day=day)
        return conditional("busy").if_(n > 3000).then(celebrate(n=n)).else_().then(shrug(n=n))

    assert wf(day=datetime.date(2025, 6, 5)).endswith("busy day")
    assert wf(day=datetime.date(2025, 6, 1)).endswith("quiet day")


# --- behind the service: retries and reattachment keep one job ---------------------------------------------------


def test_through_the_service_a_lost_insert_answer_reattaches_and_the_row_is_read(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any, bq_client: bigquery.Client
) -> None:
    faults.add_rule("drop", "POST", INSERT_PATH, count=1)
    faults.add_rule("status", "GET", r"/queries/", count=1, status=503)  # the row read is retried too
    typed = _typed("SELECT @n * 2 AS doubled", emulator.project, {"doubled": int}, inputs={"n": int})
    execution = new_execution()
    meta = agents_via_proxy.CreateTask(create_request(typed, execution, n=21), timeout=60).resource_meta
    resource = poll(agents_via_proxy, meta)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert resource.outputs.literals["doubled"].scalar.primitive.integer == 42
    assert [(e.upstream_status, e.status) for e in faults.exchanges("jobs.insert")] == [(200, None), (409, 409)]
    assert [e.status for e in faults.exchanges("jobs.getQueryResults")] == [503, 200]
    [job] = jobs_of(bq_client, execution)
    assert job.job_id == BigQueryMetadata.decode(meta).job_id


def test_through_the_service_a_new_attempt_reuses_the_earlier_job_and_reads_its_row(
    agents: AsyncAgentServiceStub, emulator: Any, bq_client: bigquery.Client
) -> None:
    typed = _typed("SELECT @n + 1 AS next", emulator.project, {"next": int}, inputs={"n": int})
    execution = new_execution()
    first = agents.CreateTask(create_request(typed, execution, attempt=0, n=1), timeout=60).resource_meta
    assert poll(agents, first).phase == TaskExecution.SUCCEEDED
    second = agents.CreateTask(create_request(typed, execution, attempt=1, n=1), timeout=60).resource_meta
    assert BigQueryMetadata.decode(second).reused_from_attempt == 0
    resource = poll(agents, second)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert resource.outputs.literals["next"].scalar.primitive.integer == 2
    assert len(jobs_of(bq_client, execution)) == 1


def test_through_the_service_a_row_that_does_not_fit_is_a_failed_task_not_a_grpc_error(
    agents: AsyncAgentServiceStub, emulator: Any
) -> None:
    typed = _typed("SELECT x FROM UNNEST([1, 2]) AS x", emulator.project, {"x": int})
    meta = agents.CreateTask(create_request(typed, new_execution()), timeout=60).resource_meta
    resource = poll(agents, meta)
    assert resource.phase == TaskExecution.FAILED
    assert "task 'typed.query': output(s) 'x': the query returned 2 rows" in resource.message


def test_through_the_service_pickled_outputs_are_written_under_the_requests_output_prefix(
    agents: AsyncAgentServiceStub, emulator: Any, tmp_path: Any
) -> None:
    typed = _typed(PICKLED, emulator.project, PICKLED_OUTPUTS)
    inputs = literals_of(typed).to_flyte_idl()
    request = create_task_request(
        template_of(typed).to_flyte_idl(), inputs, new_execution(), output_prefix=str(tmp_path)
    )
    meta = agents.CreateTask(request, timeout=60).resource_meta
    resource = poll(agents, meta)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert _python(typed, LiteralMap.from_flyte_idl(resource.outputs)) == PICKLED_VALUES
    assert {p.name for p in tmp_path.iterdir()} >= {"amount.pickle", "raw.pickle", "at.pickle"}
