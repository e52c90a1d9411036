"""Typed results: declared outputs → recorded types (definition time), and the single row → output values."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from typing import Any, Optional

import pytest
from flyte_bigquery_core.errors import InvalidTaskError, PermanentError, UnsupportedInputError
from flyte_bigquery_core.typed_results import TypedOutputs, declare_outputs, packable, typed_values

from .types_for_tests import Color

UTC = datetime.timezone.utc


@dataclasses.dataclass
class Stats:
    n: int
    day: datetime.date
    share: Optional[float]
    amount: decimal.Decimal


@dataclasses.dataclass
class Wrapper:
    stats: Stats
    tags: list[str]


def _response(fields: list[tuple[str, str]], *rows: list[Any], total: int | None = None) -> dict[str, Any]:
    """A jobs.getQueryResults answer: (name, type) columns and rows of cell texts."""
    return {
        "schema": {
            "fields": [
                {"name": n, "type": t.removesuffix("[]"), **({"mode": "REPEATED"} if t.endswith("[]") else {})}
                for n, t in fields
            ]
        },
        "totalRows": str(len(rows) if total is None else total),
        "rows": [{"f": [{"v": cell} for cell in row]} for row in rows],
    }


# --- definition time ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "types", "nullable"),
    [
        ({"n": int}, {"n": "INT64"}, []),
        ({"n": Optional[int], "day": datetime.date}, {"n": "INT64", "day": "DATE"}, ["n"]),
        ({"at": datetime.datetime}, {"at": "TIMESTAMP|DATETIME"}, []),
        ({"ok": bool, "x": float, "s": str}, {"ok": "BOOL", "x": "FLOAT64", "s": "STRING"}, []),
        ({"d": datetime.timedelta, "j": dict}, {"d": "INTERVAL", "j": "JSON"}, []),
        ({"xs": list[int]}, {"xs": "ARRAY<INT64>"}, []),
        ({"m": decimal.Decimal, "b": bytes}, {"m": "NUMERIC|BIGNUMERIC", "b": "BYTES"}, []),
        ({"t": Optional[datetime.time]}, {"t": "TIME"}, ["t"]),
        (
            {"row": Stats},
            {"row": "STRUCT<n INT64, day DATE, share FLOAT64, amount NUMERIC|BIGNUMERIC>"},
            ["row.share"],
        ),
    ],
)
def test_declared_outputs_record_bigquery_types_and_nullable_paths(
    declared: dict[str, Any], types: dict[str, str], nullable: list[str]
) -> None:
    assert declare_outputs(declared, "t").to_json() == {"types": types, "nullable": nullable}


@pytest.mark.parametrize(
    ("declared", "error", "text"),
    [
        ({"c": Color}, InvalidTaskError, "output 'c' is an Enum"),
        ({"x": object}, UnsupportedInputError, "output 'x' has Python type object"),
        ({}, InvalidTaskError, "at least one output"),
    ],
)
def test_outputs_with_no_bigquery_form_are_refused(declared: dict[str, Any], error: type[Exception], text: str) -> None:
    with pytest.raises(error) as caught:
        declare_outputs(declared, "t")
    assert text in str(caught.value) and "'t'" in str(caught.value)


def test_recorded_outputs_read_back_and_malformed_records_are_refused() -> None:
    outputs = declare_outputs({"n": Optional[int], "row": Wrapper}, "t")
    assert TypedOutputs.from_json(outputs.to_json(), "t") == outputs
    for raw in (None, {}, {"types": {}}, {"types": {"n": "NOPE"}}, {"types": {"n": "INT64"}, "nullable": "n"}):
        with pytest.raises(InvalidTaskError, match="TypedOutputs are malformed"):
            TypedOutputs.from_json(raw, "t")


# --- run time -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "fields", "row", "expected"),
    [
        ({"n": int}, [("n", "INTEGER")], ["3"], {"n": 3}),
        ({"N": int}, [("n", "INTEGER")], ["3"], {"N": 3}),  # names match case-insensitively
        ({"x": float}, [("x", "INTEGER")], ["3"], {"x": 3.0}),  # INT64 widens to float
        ({"x": float}, [("x", "NUMERIC")], ["0.5"], {"x": 0.5}),
        ({"n": Optional[int]}, [("n", "INTEGER")], [None], {"n": None}),
        ({"day": datetime.date}, [("day", "DATE")], ["2024-01-02"], {"day": datetime.date(2024, 1, 2)}),
        (
            {"at": datetime.datetime},
            [("at", "TIMESTAMP")],
            ["1704067200000000"],
            {"at": datetime.datetime(2024, 1, 1, tzinfo=UTC)},
        ),
        (
            {"at": datetime.datetime},
            [("at", "DATETIME")],
            ["2024-01-01T05:00:00"],
            {"at": datetime.datetime(2024, 1, 1, 5)},
        ),
        ({"d": datetime.timedelta}, [("d", "INTERVAL")], ["0-0 2 1:0:0"], {"d": datetime.timedelta(days=2, hours=1)}),
        ({"j": dict}, [("j", "JSON")], ['{"a": 1}'], {"j": {"a": 1}}),
        ({"xs": list[int]}, [("xs", "INTEGER[]")], [[{"v": "1"}, {"v": "2"}]], {"xs": [1, 2]}),
        ({"n": int}, [("other", "STRING"), ("n", "INTEGER")], ["x", "3"], {"n": 3}),  # other columns are ignored
        (
            {"row": Stats},  # one dataclass output, no column of its name: the whole row
            [("N", "INTEGER"), ("day", "DATE"), ("share", "FLOAT"), ("amount", "NUMERIC"), ("extra", "STRING")],
            ["7", "2024-01-02", None, "1.25", "ignored"],
            {"row": {"n": 7, "day": datetime.date(2024, 1, 2), "share": None, "amount": decimal.Decimal("1.25")}},
        ),
    ],
)
def test_the_single_row_fills_each_output_from_the_column_of_its_name(
    declared: dict[str, Any], fields: list[tuple[str, str]], row: list[Any], expected: dict[str, Any]
) -> None:
    assert typed_values(_response(fields, row), declare_outputs(declared, "t"), "t") == expected


def test_a_dataclass_output_with_a_column_of_its_name_reads_that_record() -> None:
    response = {
        "schema": {
            "fields": [
                {
                    "name": "wrapper",
                    "type": "RECORD",
                    "fields": [
                        {
                            "name": "stats",
                            "type": "RECORD",
                            "fields": [
                                {"name": "n", "type": "INTEGER"},
                                {"name": "day", "type": "DATE"},
                                {"name": "share", "type": "FLOAT"},
                                {"name": "amount", "type": "INTEGER"},
                            ],
                        },
                        {"name": "tags", "type": "STRING", "mode": "REPEATED"},
                    ],
                }
            ]
        },
        "totalRows": "1",
        "rows": [
            {
                "f": [
                    {
                        "v": {
                            "f": [
                                {"v": {"f": [{"v": "1"}, {"v": "2024-01-02"}, {"v": "0.5"}, {"v": "2"}]}},
                                {"v": [{"v": "a"}]},
                            ]
                        }
                    }
                ]
            }
        ],
    }
    values = typed_values(response, declare_outputs({"wrapper": Wrapper}, "t"), "t")
    assert values == {
        "wrapper": {
            "stats": {"n": 1, "day": datetime.date(2024, 1, 2), "share": 0.5, "amount": decimal.Decimal(2)},
            "tags": ["a"],
        }
    }


@pytest.mark.parametrize(
    ("declared", "response", "text"),
    [
        ({"n": int}, _response([("n", "INTEGER")]), "output(s) 'n': the query returned no rows"),
        ({"n": int}, _response([("n", "INTEGER")], ["1"], ["2"]), "the query returned 2 rows"),
        ({"n": int}, _response([("n", "INTEGER")], ["1"], total=5), "the query returned 5 rows"),
        (
            {"n": int},
            _response([("m", "INTEGER")], ["1"]),
            "output 'n' reads the column of its name, but the result has m",
        ),
        ({"n": int}, _response([("n", "INTEGER")], [None]), "output 'n' is declared int, but column 'n' is NULL"),
        ({"n": int}, _response([("n", "FLOAT")], ["1.5"]), "output 'n' is declared int but column 'n' is FLOAT"),
        ({"n": int}, _response([("n", "STRING")], ["1"]), "output 'n' is declared int but column 'n' is STRING"),
        (
            {"d": datetime.date},
            _response([("d", "TIMESTAMP")], ["0"]),
            "declared datetime.date but column 'd' is TIMESTAMP",
        ),
        ({"xs": list[int]}, _response([("xs", "INTEGER")], ["1"]), "declared list[int] but column 'xs' is INTEGER"),
        ({"n": int}, _response([("n", "INTEGER[]")], [[]]), "declared int but column 'n' is ARRAY<INTEGER>"),
        ({"d": datetime.timedelta}, _response([("d", "INTERVAL")], ["1-0 0 0:0:0"]), "the INTERVAL holds months"),
        (
            {"row": Stats},
            _response([("n", "INTEGER"), ("day", "DATE")], ["1", "2024-01-01"]),
            "output 'row' needs column(s) share, amount; the result has n, day",
        ),
        (
            {"row": Stats},
            _response(
                [("n", "INTEGER"), ("day", "DATE"), ("share", "FLOAT"), ("amount", "NUMERIC")], ["1", None, None, "1"]
            ),
            "output 'row' (field 'day') is declared datetime.date, but column 'day' is NULL",
        ),
    ],
)
def test_a_row_that_does_not_fit_fails_permanently_naming_task_and_output(
    declared: dict[str, Any], response: dict[str, Any], text: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        typed_values(response, declare_outputs(declared, "wf.typed"), "wf.typed")
    assert text in str(caught.value)
    assert str(caught.value).startswith("task 'wf.typed': ")


def test_typed_outputs_and_a_result_table_exclude_each_other_naming_the_adapters_parameter() -> None:
    with pytest.raises(InvalidTaskError) as caught:
        declare_outputs({"n": int}, "wf.q", table_output="output_dataframe_type")
    assert str(caught.value) == (
        "task 'wf.q': declare either output_dataframe_type (the result table) or outputs (typed values from its "
        "single row), not both"
    )


def test_packable_gives_the_forms_messagepack_decoders_read_back() -> None:
    row = {
        "day": datetime.date(2024, 1, 2),
        "at": datetime.time(10, 30),
        "amount": decimal.Decimal("1.50"),
        "took": datetime.timedelta(minutes=1),
        "raw": b"\x00",
        "nested": [{"seen": datetime.datetime(2024, 1, 2, 3, 4)}],
    }
    assert packable(row) == {
        "day": "2024-01-02",
        "at": "10:30:00",
        "amount": "1.50",
        "took": 60.0,
        "raw": b"\x00",
        "nested": [{"seen": "2024-01-02T03:04:00"}],
    }
