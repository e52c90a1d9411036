"""Arrow → pandas for ``bq://`` reads: every BigQuery type keeps its exact values (README: "BigQuery type →
pandas dtype"). Arrow types are those the read path gives each BigQuery type (``io/arrow_types.py``)."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from flyte_bigquery_core.io.frames import PANDAS

UTC = dt.timezone.utc
BIG = 2**53 + 1  # the first integer a float64 cannot hold
MISSING = object()  # a cell pandas reports as missing (pd.isna)
STRING_DTYPE = "str" if int(pd.__version__.split(".")[0]) >= 3 else "object"
NUMERIC_MAX = decimal.Decimal("99999999999999999999999999999.999999999")
NUMERIC_MIN = decimal.Decimal("-99999999999999999999999999999.999999999")  # not NUMERIC_MIN: that rounds to 28 digits
BIGNUMERIC_MAX = decimal.Decimal("9" * 38 + "." + "9" * 38)


def cells(series: pd.Series) -> list[Any]:
    """The column's cells as plain Python values (numpy arrays as lists), missing cells as :data:`MISSING`."""
    out: list[Any] = []
    for value in series.tolist():
        if isinstance(value, np.ndarray):
            out.append(value.tolist())
        elif not isinstance(value, (dict, list)) and pd.isna(value):
            out.append(MISSING)
        else:
            out.append(value)
    return out


def same(actual: Any, expected: Any) -> bool:
    """Equal, and of the same Python type all the way down (so 10 is not 10.0 and a Decimal is no float)."""
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(same(actual[k], v) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(map(same, actual, expected))
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    return type(actual) is type(expected) and actual == expected


# (BigQuery type, Arrow array as read, pandas dtype, exact cells)
ROWS = [
    ("INT64", pa.array([BIG, None, -(2**63)]), "Int64", [BIG, MISSING, -(2**63)]),
    ("INT64 without NULL", pa.array([BIG, 2**63 - 1]), "Int64", [BIG, 2**63 - 1]),
    ("BOOL", pa.array([True, None, False]), "boolean", [True, MISSING, False]),
    ("FLOAT64", pa.array([0.1, None, math.inf, -0.0]), "float64", [0.1, MISSING, math.inf, -0.0]),
    ("FLOAT64 NaN", pa.array([math.nan]), "float64", [MISSING]),  # pandas' missing value is NaN
    ("STRING", pa.array(["a", None, ""]), STRING_DTYPE, ["a", MISSING, ""]),
    ("JSON", pa.array(['{"a": 1}', None]), STRING_DTYPE, ['{"a": 1}', MISSING]),
    ("GEOGRAPHY", pa.array(["POINT(1 2)", None]), STRING_DTYPE, ["POINT(1 2)", MISSING]),
    ("BYTES", pa.array([b"\x00\xff", None], pa.binary()), "object", [b"\x00\xff", MISSING]),
    (
        "NUMERIC",
        pa.array([NUMERIC_MIN, None, decimal.Decimal("0.000000001")], pa.decimal128(38, 9)),
        "object",
        [NUMERIC_MIN, MISSING, decimal.Decimal("0.000000001")],
    ),
    ("BIGNUMERIC", pa.array([BIGNUMERIC_MAX, None], pa.decimal256(76, 38)), "object", [BIGNUMERIC_MAX, MISSING]),
    (
        "TIMESTAMP",
        pa.array(
            [dt.datetime(1, 1, 1, tzinfo=UTC), None, dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)],
            pa.timestamp("us", tz="UTC"),
        ),
        "datetime64[us, UTC]",
        [pd.Timestamp(dt.datetime(1, 1, 1, tzinfo=UTC)), MISSING, pd.Timestamp("9999-12-31 23:59:59.999999+00:00")],
    ),
    (
        "DATETIME",
        pa.array([dt.datetime(1, 1, 1), None, dt.datetime(2024, 2, 29, 1, 2, 3, 4)], pa.timestamp("us")),
        "datetime64[us]",
        [pd.Timestamp(dt.datetime(1, 1, 1)), MISSING, pd.Timestamp("2024-02-29 01:02:03.000004")],
    ),
    (
        "DATE",
        pa.array([dt.date(1, 1, 1), None, dt.date(9999, 12, 31)], pa.date32()),
        "object",
        [dt.date(1, 1, 1), MISSING, dt.date(9999, 12, 31)],
    ),
    (
        "TIME",
        pa.array([dt.time(23, 59, 59, 999999), None], pa.time64("us")),
        "object",
        [dt.time(23, 59, 59, 999999), MISSING],
    ),
    (
        "STRUCT<a INT64, b STRING>",
        pa.array(
            [{"a": BIG, "b": "x"}, {"a": None, "b": None}, {"a": 10, "b": "y"}, None],
            pa.struct([("a", pa.int64()), ("b", pa.string())]),
        ),
        "object",
        [{"a": BIG, "b": "x"}, {"a": None, "b": None}, {"a": 10, "b": "y"}, MISSING],
    ),
    (
        "STRUCT<ts TIMESTAMP, d DATE, n NUMERIC>",
        pa.array(
            [{"ts": dt.datetime(1, 1, 1, tzinfo=UTC), "d": dt.date(1, 1, 1), "n": NUMERIC_MAX}],
            pa.struct([("ts", pa.timestamp("us", tz="UTC")), ("d", pa.date32()), ("n", pa.decimal128(38, 9))]),
        ),
        "object",
        [{"ts": dt.datetime(1, 1, 1, tzinfo=UTC), "d": dt.date(1, 1, 1), "n": NUMERIC_MAX}],
    ),
    ("ARRAY<INT64>", pa.array([[BIG, 1], []], pa.list_(pa.int64())), "object", [[BIG, 1], []]),
    ("ARRAY<DATE>", pa.array([[dt.date(1, 1, 1)]], pa.list_(pa.date32())), "object", [[dt.date(1, 1, 1)]]),
    (
        "ARRAY<STRUCT<a INT64>>",
        pa.array([[{"a": BIG}, {"a": None}], []], pa.list_(pa.struct([("a", pa.int64())]))),
        "object",
        [[{"a": BIG}, {"a": None}], []],
    ),
]


@pytest.mark.parametrize(("bigquery_type", "column", "dtype", "expected"), ROWS, ids=[row[0] for row in ROWS])
def test_every_bigquery_type_reads_into_pandas_with_its_exact_values(
    bigquery_type: str, column: pa.Array, dtype: str, expected: list[Any]
) -> None:
    frame = PANDAS.from_arrow(pa.table({"c": column}))
    assert str(frame["c"].dtype) == dtype
    actual = cells(frame["c"])
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert got is MISSING if want is MISSING else same(got, want), (got, want)


def test_an_empty_integer_column_is_still_nullable_int64() -> None:
    frame = PANDAS.from_arrow(pa.table({"c": pa.array([], pa.int64()), "b": pa.array([], pa.bool_())}))
    assert [str(t) for t in frame.dtypes] == ["Int64", "boolean"]


ROUND_TRIP = [row for row in ROWS if row[0] != "FLOAT64 NaN"]  # NaN is pandas' missing value: it writes a NULL


@pytest.mark.parametrize(("bigquery_type", "column"), [r[:2] for r in ROUND_TRIP], ids=[r[0] for r in ROUND_TRIP])
def test_a_read_frame_writes_back_the_same_arrow_values(bigquery_type: str, column: pa.Array) -> None:
    table = pa.table({"c": column})
    back = PANDAS.to_arrow(PANDAS.from_arrow(table))
    assert back.column("c").to_pylist() == column.to_pylist()
