"""REST result rows → Python values, by the schema's column types."""

from __future__ import annotations

import datetime
import decimal
from typing import Any

import pytest
from flyte_bigquery_core.errors import PermanentError
from flyte_bigquery_core.rows import Column, columns_of, decode_row, parse_interval

UTC = datetime.timezone.utc


@pytest.mark.parametrize(
    ("field_type", "text", "expected"),
    [
        ("BOOLEAN", "true", True),
        ("BOOL", "false", False),
        ("INTEGER", "-9223372036854775808", -(2**63)),
        ("FLOAT", "1.5", 1.5),
        ("FLOAT64", "Infinity", float("inf")),
        ("NUMERIC", "0.000000001", decimal.Decimal("0.000000001")),
        ("BIGNUMERIC", "1e+38", decimal.Decimal("1e+38")),
        ("STRING", "héllo", "héllo"),
        ("BYTES", "YWI=", b"ab"),
        ("DATE", "2024-01-02", datetime.date(2024, 1, 2)),
        ("DATETIME", "2024-01-01T01:02:03.456789", datetime.datetime(2024, 1, 1, 1, 2, 3, 456789)),
        ("TIME", "10:00:00.5", datetime.time(10, 0, 0, 500000)),
        ("TIMESTAMP", "1704067200000001", datetime.datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)),
        ("TIMESTAMP", "1704067200.5", datetime.datetime(2024, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        ("JSON", '{"a": [1]}', {"a": [1]}),
        ("INTERVAL", "0-0 1 0:0:0", "0-0 1 0:0:0"),
        ("GEOGRAPHY", "POINT(1 2)", "POINT(1 2)"),
    ],
)
def test_each_scalar_type_decodes_its_text(field_type: str, text: str, expected: Any) -> None:
    assert Column({"name": "c", "type": field_type}).decode(text) == expected


def test_null_is_none_and_a_null_repeated_field_is_empty() -> None:
    assert Column({"name": "c", "type": "INTEGER"}).decode(None) is None
    assert Column({"name": "c", "type": "INTEGER", "mode": "REPEATED"}).decode(None) == []


def test_records_and_repeated_fields_nest() -> None:
    schema = {
        "fields": [
            {"name": "a", "type": "INTEGER", "mode": "REPEATED"},
            {"name": "s", "type": "RECORD", "fields": [{"name": "d", "type": "DATE"}, {"name": "x", "type": "FLOAT"}]},
        ]
    }
    row = {"f": [{"v": [{"v": "1"}, {"v": "2"}]}, {"v": {"f": [{"v": "2024-01-02"}, {"v": None}]}}]}
    assert decode_row(columns_of(schema), row) == {"a": [1, 2], "s": {"d": datetime.date(2024, 1, 2), "x": None}}


def test_a_cell_its_type_cannot_hold_names_the_column_not_the_value() -> None:
    with pytest.raises(PermanentError) as caught:
        Column({"name": "n", "type": "INTEGER"}).decode("secret-value")
    assert "'n' (INTEGER)" in str(caught.value) and "secret-value" not in str(caught.value)


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(PermanentError, match="2 cells for 1 columns"):
        decode_row(columns_of({"fields": [{"name": "a", "type": "STRING"}]}), {"f": [{"v": "x"}, {"v": "y"}]})


@pytest.mark.parametrize(
    ("text", "months", "rest"),
    [
        ("0-0 1 0:0:0", 0, datetime.timedelta(days=1)),
        ("0-0 0 1:2:3.5", 0, datetime.timedelta(hours=1, minutes=2, seconds=3, microseconds=500000)),
        ("0-0 -2 -0:0:1", 0, datetime.timedelta(days=-2, seconds=-1)),
        ("1-2 0 0:0:0", 14, datetime.timedelta()),
        ("-1-0 0 0:0:0", -12, datetime.timedelta()),
    ],
)
def test_intervals_split_into_months_and_a_duration(text: str, months: int, rest: datetime.timedelta) -> None:
    assert parse_interval(text) == (months, rest)


def test_text_that_is_no_interval_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_interval("1 day")
