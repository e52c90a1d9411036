"""Sensors: deciding a sensor before any call, the verdicts on metadata alone, and the calls (scripted)."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest
from flyte_bigquery_core.errors import InvalidTaskError, PermanentError, TransientError
from flyte_bigquery_core.jobs_api import JobsApi
from flyte_bigquery_core.sensing import (
    SensorSpec,
    modified_verdict,
    partition_id,
    partition_verdict,
    sense,
    sensor_spec,
    table_verdict,
)
from flyte_bigquery_core.testing.scripted import Answer, ScriptedSend, error_body, scripted_transport

JAN_1 = 1_704_067_200_000  # 2024-01-01T00:00:00Z in epoch ms


def _custom(kind: str, table: str = "d.t") -> dict[str, Any]:
    return {"ProjectID": "proj", "Sensor": {"kind": kind, "table": table}}


def _spec(kind: str = "partition_exists", **fields: Any) -> SensorSpec:
    return SensorSpec(**{"task": "wf.s", "kind": kind, "project": "proj", "dataset": "d", "table": "t", **fields})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20240101", "20240101"),
        ("2024-01-01", "20240101"),
        (datetime.date(2024, 1, 1), "20240101"),
        ("2024010113", "2024010113"),
        ("-40", "-40"),
        ("__NULL__", "__NULL__"),
    ],
)
def test_partition_ids_are_written_as_bigquery_writes_them(value: Any, expected: str) -> None:
    assert partition_id(value, "input 'partition'") == expected


@pytest.mark.parametrize("value", ["Jan 1", "2024/01/01", None, 20240101, "table$20240101"])
def test_what_is_no_partition_id_is_refused(value: Any) -> None:
    with pytest.raises(InvalidTaskError, match="input 'partition' is not a partition id"):
        partition_id(value, "input 'partition'")


def test_a_sensor_is_decided_from_its_settings_and_inputs() -> None:
    spec = sensor_spec(_custom("modified_after", "other.d.t"), {"after": datetime.datetime(2024, 1, 1)}, "s", 100.0, 60)
    assert spec == SensorSpec("s", "modified_after", "other", "d", "t", None, JAN_1, 160.0)
    aware = datetime.datetime(2024, 1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert sensor_spec(_custom("modified_after"), {"after": aware}, "s", 0, None).after_ms == JAN_1
    assert sensor_spec(_custom("partition_exists"), {"partition": "2024-01-01"}, "s", 0, None).partition == "20240101"


@pytest.mark.parametrize(
    ("custom", "values", "text"),
    [
        ({"Sensor": {"kind": "table_exists", "table": "d.t"}}, {}, "ProjectID is missing"),
        ({"ProjectID": "p", "Sensor": {"kind": "rows_exist", "table": "d.t"}}, {}, "must name a kind"),
        (_custom("table_exists", "t"), {}, "'t' is not a table path"),
        (_custom("table_exists", "d.t$20240101"), {}, "not a table path"),
        (_custom("partition_exists"), {"partition": "soon"}, "input 'partition' is not a partition id"),
        (_custom("modified_after"), {"after": "yesterday"}, "input 'after' is not a time"),
    ],
)
def test_bad_settings_and_inputs_are_refused_before_any_call(
    custom: dict[str, Any], values: dict[str, Any], text: str
) -> None:
    with pytest.raises(InvalidTaskError) as caught:
        sensor_spec(custom, values, "wf.s", 0, None)
    assert text in str(caught.value) and "'wf.s'" in str(caught.value)


def test_table_exists_by_tables_get() -> None:
    assert not table_verdict(_spec("table_exists"), None).met
    assert table_verdict(_spec("table_exists"), {"id": "proj:d.t"}).met


@pytest.mark.parametrize(
    ("modified", "after", "met"), [(JAN_1 + 1, JAN_1, True), (JAN_1, JAN_1, False), (JAN_1 - 1, JAN_1, False)]
)
def test_modified_after_compares_last_modified_time(modified: int, after: int, met: bool) -> None:
    sensed = modified_verdict(_spec("modified_after", after_ms=after), {"lastModifiedTime": str(modified)})
    assert sensed.met is met
    assert sensed.info["after"] == "2024-01-01T00:00:00+00:00"


def test_modified_after_waits_for_a_missing_table() -> None:
    assert not modified_verdict(_spec("modified_after", after_ms=JAN_1), None).met


DAY = {"timePartitioning": {"type": "DAY", "field": "day"}}


@pytest.mark.parametrize(
    ("table", "partitions", "wanted", "met"),
    [
        (None, None, "20240101", False),
        (DAY, ["20231231", "20240101"], "20240101", True),
        (DAY, ["20231231"], "20240101", False),
        (DAY, [], "__NULL__", False),
        ({"timePartitioning": {"type": "HOUR"}}, ["2024010100"], "2024010100", True),
        ({"rangePartitioning": {"field": "x"}}, ["40"], "40", True),
    ],
)
def test_partition_exists_when_the_table_lists_it(
    table: dict[str, Any] | None, partitions: list[str] | None, wanted: str, met: bool
) -> None:
    assert partition_verdict(_spec(partition=wanted), table, partitions).met is met


@pytest.mark.parametrize(
    ("table", "wanted", "text"),
    [
        ({"schema": {}}, "20240101", "is not partitioned, so partition 20240101 can never appear"),
        (DAY, "2024010100", "partitioned by DAY; expected 8 digits (%Y%m%d)"),
        ({"timePartitioning": {"type": "MONTH"}}, "20240101", "expected 6 digits"),
    ],
)
def test_a_partition_that_can_never_appear_fails_permanently(table: dict[str, Any], wanted: str, text: str) -> None:
    with pytest.raises(PermanentError, match=text.replace("(", r"\(").replace(")", r"\)")):
        partition_verdict(_spec(partition=wanted), table, [])


def _api(*script: Answer | BaseException) -> tuple[JobsApi, ScriptedSend]:
    send = ScriptedSend(script)

    async def no_sleep(seconds: float) -> None:
        return None

    return JobsApi(scripted_transport(send), 1.0, sleep=no_sleep), send


def _rows(*ids: str, token: str | None = None) -> dict[str, Any]:
    return {"rows": [{"f": [{"v": i}]} for i in ids], **({"pageToken": token} if token else {})}


def test_partition_sensor_reads_the_partitions_meta_table_page_by_page() -> None:
    api, send = _api(Answer(200, DAY), Answer(200, _rows("20231231", token="p2")), Answer(200, _rows("20240101")))
    sensed = asyncio.run(sense(api, _spec(partition="20240101")))
    assert sensed.met and sensed.info["partitions_seen"] == 2
    assert [r.path for r in send.requests] == [
        "/bigquery/v2/projects/proj/datasets/d/tables/t",
        "/bigquery/v2/projects/proj/datasets/d/tables/t%24__PARTITIONS_SUMMARY__/data",
        "/bigquery/v2/projects/proj/datasets/d/tables/t%24__PARTITIONS_SUMMARY__/data",
    ]
    assert send.requests[1].params == {"selectedFields": "partition_id"}
    assert send.requests[2].params["pageToken"] == "p2"


def test_a_missing_table_makes_no_partition_listing() -> None:
    api, send = _api(Answer(404, error_body(404, "notFound")))
    assert not asyncio.run(sense(api, _spec(partition="20240101"))).met
    assert len(send.requests) == 1


def test_an_unpartitioned_table_fails_before_the_meta_table_is_read() -> None:
    api, send = _api(Answer(200, {"schema": {}}))
    with pytest.raises(PermanentError, match="not partitioned"):
        asyncio.run(sense(api, _spec(partition="20240101")))
    assert len(send.requests) == 1


def test_a_meta_table_bigquery_does_not_serve_is_a_permanent_error() -> None:
    api, _ = _api(Answer(200, DAY), Answer(404, error_body(404, "notFound")))
    with pytest.raises(PermanentError, match="__PARTITIONS_SUMMARY__ meta-table was not found"):
        asyncio.run(sense(api, _spec(partition="20240101")))


def test_tables_get_is_retried_and_bigquery_unavailable_throughout_is_transient() -> None:
    api, send = _api(Answer(503, error_body(503, "backendError")), Answer(200, {"id": "t"}))
    assert asyncio.run(sense(api, _spec("table_exists"))).met
    assert len(send.requests) == 2
    api, _ = _api(*[Answer(503, error_body(503, "backendError"))] * 50)
    with pytest.raises(TransientError):
        asyncio.run(sense(api, _spec("table_exists")))
