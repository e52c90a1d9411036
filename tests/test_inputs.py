"""Every declarable Flyte input type, sent through the connector as a query parameter and selected back.

Each row goes the whole way a real run goes: Python value → Flyte literal (flytekit's own type engine,
pickles included) → connector (guided by the recorded BigQuery type, never unpickling) → BigQuery parameter
→ the local BigQuery → result table read back with the real client. Templates of the previous release (JSON
descriptors in ``InputTypes``) and of the upstream plugin (no ``InputTypes``) run too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import typing
from typing import Any

import pytest
from flyte_bigquery_core.errors import UnsupportedInputError
from flyteidl.core.execution_pb2 import TaskExecution
from flytekit import StructuredDataset
from google.cloud import bigquery

from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask
from flytekitplugins.bigquery.connector import BigQueryConnector

from .core.types_for_tests import Color
from .helpers import literals_of, run, template_of, wait


@dataclasses.dataclass
class Point:
    x: int
    label: str
    seen: datetime.date


@dataclasses.dataclass
class Reading:
    at: datetime.datetime
    amount: decimal.Decimal
    tags: list[str]


_UTC = datetime.timezone.utc

# (id, declared type, value, expected BigQuery column type, expected value read back)
ROWS: list[tuple[str, Any, Any, str, Any]] = [
    ("bool", bool, False, "BOOLEAN", False),
    ("int", int, 2**63 - 1, "INTEGER", 2**63 - 1),
    ("float", float, -0.125, "FLOAT", -0.125),
    ("str", str, "héllo\nworld", "STRING", "héllo\nworld"),
    (
        "str-injection",
        str,
        "'; DROP TABLE samples.daily_downloads; --",
        "STRING",
        "'; DROP TABLE samples.daily_downloads; --",
    ),
    ("bytes", bytes, bytes(range(256)), "BYTES", bytes(range(256))),
    ("date", datetime.date, datetime.date(1999, 12, 31), "DATE", datetime.date(1999, 12, 31)),
    ("time", datetime.time, datetime.time(23, 59, 58, 123456), "TIME", datetime.time(23, 59, 58, 123456)),
    (
        "datetime-aware",
        datetime.datetime,
        datetime.datetime(2024, 6, 1, 12, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
        "TIMESTAMP",
        datetime.datetime(2024, 6, 1, 17, 0, tzinfo=_UTC),
    ),
    (
        "decimal-numeric",
        decimal.Decimal,
        decimal.Decimal("12345.678901234"),
        "NUMERIC",
        decimal.Decimal("12345.678901234"),
    ),
    (
        "decimal-bignumeric",
        decimal.Decimal,
        decimal.Decimal("0.1234567890123"),
        "BIGNUMERIC",
        decimal.Decimal("0.1234567890123"),
    ),
    # timedelta → INTERVAL is covered in tests/core/test_params.py only: the local BigQuery cannot parse BigQuery's
    # canonical interval text ("0-0 2 3:0:0"), which real BigQuery accepts.
    ("float-inf", float, float("inf"), "FLOAT", float("inf")),
    ("enum", Color, Color.BLUE, "STRING", "blue"),
    ("optional-none", typing.Optional[int], None, "INTEGER", None),
    ("optional-value", typing.Optional[str], "x", "STRING", "x"),
    ("list-int", list[int], [3, 1, 2], "INTEGER", [3, 1, 2]),
    ("list-empty", list[str], [], "STRING", []),
    ("list-date", list[datetime.date], [datetime.date(2024, 1, 1)], "DATE", [datetime.date(2024, 1, 1)]),
    ("list-bytes", list[bytes], [b"a", b"\x00"], "BYTES", [b"a", b"\x00"]),
    ("dict-json", dict, {"a": [1, 2], "b": None}, "JSON", {"a": [1, 2], "b": None}),
    (
        "dataclass-struct",
        Point,
        Point(x=1, label="p", seen=datetime.date(2024, 5, 6)),
        "RECORD",
        {"x": 1, "label": "p", "seen": datetime.date(2024, 5, 6)},
    ),
    (
        "list-of-dataclasses",
        list[Point],
        [Point(x=1, label="a", seen=datetime.date(2024, 5, 6)), Point(x=2, label="b", seen=datetime.date(2024, 5, 7))],
        "RECORD",
        [
            {"x": 1, "label": "a", "seen": datetime.date(2024, 5, 6)},
            {"x": 2, "label": "b", "seen": datetime.date(2024, 5, 7)},
        ],
    ),
    (
        "dataclass-naive-datetime-and-decimal",
        Reading,
        Reading(at=datetime.datetime(2024, 1, 2, 3, 4, 5), amount=decimal.Decimal("1.25"), tags=["x"]),
        "RECORD",
        {"at": datetime.datetime(2024, 1, 2, 3, 4, 5), "amount": decimal.Decimal("1.25"), "tags": ["x"]},
    ),
    ("optional-date-none", typing.Optional[datetime.date], None, "DATE", None),
]


@pytest.fixture(scope="module")
def connector(emulator: Any) -> BigQueryConnector:
    return BigQueryConnector()


def _selected(client: bigquery.Client, uri: str) -> tuple[bigquery.SchemaField, Any]:
    table = client.get_table(uri.removeprefix("bq://").replace(":", "."))
    rows = list(client.list_rows(table))
    return table.schema[0], rows[0]["v"]


@pytest.mark.parametrize(("declared", "value", "bq_type", "expected"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_input_round_trips_as_a_typed_parameter(
    connector: BigQueryConnector, emulator: Any, bq_client: Any, declared: Any, value: Any, bq_type: str, expected: Any
) -> None:
    task = BigQueryTask(
        name="round_trip",
        query_template="SELECT @p AS v",
        task_config=BigQueryConfig(ProjectID=emulator.project),
        inputs={"p": declared},
        output_structured_dataset_type=StructuredDataset,
    )
    _, resource = run(connector, task, p=value)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    field, got = _selected(bq_client, resource.outputs["results"].uri)
    assert field.field_type == bq_type
    if bq_type == "JSON" and isinstance(got, str):
        import json

        got = json.loads(got)
    assert got == expected


def test_flyte_file_input_is_refused_naming_task_and_input() -> None:
    from flytekit.types.file import FlyteFile

    with pytest.raises(UnsupportedInputError, match=r"'files'.*'f'.*supported types"):
        BigQueryTask(
            name="files", query_template="SELECT @f", task_config=BigQueryConfig(ProjectID="p"), inputs={"f": FlyteFile}
        )


# --- rolling upgrade: templates of the previous release and of the upstream plugin ---------------------------

#: (id, declared type, value, what the previous release recorded in InputTypes, expected value read back)
OLD_TEMPLATE_ROWS: list[tuple[str, Any, Any, Any, Any]] = [
    ("date", datetime.date, datetime.date(2024, 2, 29), "date", datetime.date(2024, 2, 29)),
    ("bytes", bytes, b"\x00\x01", "bytes", b"\x00\x01"),
    ("decimal", decimal.Decimal, decimal.Decimal("1.25"), "decimal", decimal.Decimal("1.25")),
    ("enum", Color, Color.RED, {"enum": "str"}, "red"),
    ("optional-none", typing.Optional[int], None, {"optional": "int"}, None),
    ("list-of-dates", list[datetime.date], [datetime.date(2024, 1, 1)], {"array": "date"}, [datetime.date(2024, 1, 1)]),
    (
        "dataclass",
        Point,
        Point(x=1, label="p", seen=datetime.date(2024, 5, 6)),
        {"struct": [["x", "int"], ["label", "str"], ["seen", "date"]]},
        {"x": 1, "label": "p", "seen": datetime.date(2024, 5, 6)},
    ),
]


def _run_template(connector: BigQueryConnector, task: BigQueryTask, input_types: Any, **inputs: Any) -> Any:
    template = template_of(task)
    if input_types is None:
        template.custom.pop("InputTypes", None)
    else:
        template.custom["InputTypes"] = input_types
    meta = asyncio.run(connector.create(template, literals_of(task, **inputs)))
    return wait(connector, meta)


def _task(declared: Any, project: str) -> BigQueryTask:
    return BigQueryTask(
        name="rolling_upgrade",
        query_template="SELECT @p AS v",
        task_config=BigQueryConfig(ProjectID=project),
        inputs={"p": declared},
        output_structured_dataset_type=StructuredDataset,
    )


@pytest.mark.parametrize(
    ("declared", "value", "descriptor", "expected"),
    [r[1:] for r in OLD_TEMPLATE_ROWS],
    ids=[r[0] for r in OLD_TEMPLATE_ROWS],
)
def test_template_of_the_previous_release_still_runs(
    connector: BigQueryConnector,
    emulator: Any,
    bq_client: Any,
    declared: Any,
    value: Any,
    descriptor: Any,
    expected: Any,
) -> None:
    resource = _run_template(connector, _task(declared, emulator.project), {"p": descriptor}, p=value)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert _selected(bq_client, resource.outputs["results"].uri)[1] == expected


@pytest.mark.parametrize(
    ("declared", "value", "bq_type", "expected"),
    [
        (int, 7, "INTEGER", 7),
        (str, "x", "STRING", "x"),
        # Without recorded types a date is what Flyte sends: an instant at midnight UTC.
        (datetime.date, datetime.date(2024, 2, 29), "TIMESTAMP", datetime.datetime(2024, 2, 29, tzinfo=_UTC)),
    ],
    ids=["int", "str", "date-is-an-instant"],
)
def test_upstream_template_without_input_types_runs_typed_by_the_value(
    connector: BigQueryConnector, emulator: Any, bq_client: Any, declared: Any, value: Any, bq_type: str, expected: Any
) -> None:
    resource = _run_template(connector, _task(declared, emulator.project), None, p=value)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    field, got = _selected(bq_client, resource.outputs["results"].uri)
    assert (field.field_type, got) == (bq_type, expected)
