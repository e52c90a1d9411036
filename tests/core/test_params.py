"""Value (+ declared or recorded type) → BigQuery query parameter, checked against the client's own ``to_api_repr``."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import typing
from decimal import Decimal
from typing import Annotated, Any, Optional, Union

import pytest
from flyte_bigquery_core.errors import UnsupportedInputError
from flyte_bigquery_core.params import (
    BigQueryType,
    coerce_values,
    parse_input_types,
    pythonTypeToBigQueryType,
    query_parameter,
    query_parameters,
    referenced_parameters,
)
from google.cloud.bigquery import SchemaField
from google.cloud.bigquery._helpers import SCALAR_QUERY_PARAM_PARSER

from .types_for_tests import Color, Empty, Level, Mixed, Node, Pair

UTC = datetime.timezone.utc
PLUS_2 = datetime.timezone(datetime.timedelta(hours=2))
NUMERIC_MAX = Decimal("99999999999999999999999999999.999999999")
NUMERIC_MIN = Decimal("-99999999999999999999999999999.999999999")
BIGNUMERIC_MAX = Decimal("578960446186580977117854925043439539266.34992332820282019728792003956564819967")
BIGNUMERIC_MIN = Decimal("-578960446186580977117854925043439539266.34992332820282019728792003956564819968")


class Size(enum.Enum):
    SMALL = 10
    LARGE = 20


@dataclasses.dataclass
class Point:
    x: int
    y: float


@dataclasses.dataclass
class Tagged:
    name: str
    tags: list[str]
    score: Optional[Decimal] = None


@dataclasses.dataclass
class Outer:
    origin: Point
    path: list[Point]


@dataclasses.dataclass
class Event:
    at: Optional[datetime.datetime]


class FakeFlyteFile:
    """Stands in for FlyteFile & co: an arbitrary object that has no BigQuery meaning."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"FakeFlyteFile({self.path!r})"


# --- expected REST shapes -----------------------------------------------------------------------------------------


def _t(bq_type: str | dict[str, Any]) -> dict[str, Any]:
    return {"type": bq_type} if isinstance(bq_type, str) else bq_type


def ARRAY(element: str | dict[str, Any]) -> dict[str, Any]:
    return {"type": "ARRAY", "arrayType": _t(element)}


def STRUCT(**fields: str | dict[str, Any]) -> dict[str, Any]:
    return {"type": "STRUCT", "structTypes": [{"name": name, "type": _t(t)} for name, t in fields.items()]}


def V(value: object) -> dict[str, Any]:
    return {"value": value}


def A(*values: dict[str, Any]) -> dict[str, Any]:
    return {"arrayValues": list(values)}


def S(**values: dict[str, Any]) -> dict[str, Any]:
    return {"structValues": values}


POINT = STRUCT(x="INT64", y="FLOAT64")

# (value, declared type, expected BigQuery type, expected parameterValue)
ROWS = [
    # scalars
    pytest.param(True, None, "BOOL", V("true"), id="bool"),
    pytest.param(False, bool, "BOOL", V("false"), id="bool-declared"),
    pytest.param(42, None, "INT64", V("42"), id="int"),
    pytest.param(2**63 - 1, int, "INT64", V("9223372036854775807"), id="int64-max"),
    pytest.param(-(2**63), int, "INT64", V("-9223372036854775808"), id="int64-min"),
    pytest.param(1.5, None, "FLOAT64", V(1.5), id="float"),
    pytest.param(3, float, "FLOAT64", V(3.0), id="int-declared-float"),
    pytest.param(float("nan"), float, "FLOAT64", V("nan"), id="float-nan"),
    pytest.param(float("inf"), float, "FLOAT64", V("inf"), id="float-inf"),
    pytest.param(float("-inf"), None, "FLOAT64", V("-inf"), id="float-minus-inf"),
    pytest.param("hello", None, "STRING", V("hello"), id="str"),
    pytest.param("", str, "STRING", V(""), id="str-empty"),
    pytest.param("x" * 100_000, str, "STRING", V("x" * 100_000), id="str-long"),
    pytest.param(b"\x00\xff", None, "BYTES", V("AP8="), id="bytes"),
    pytest.param(bytearray(b"ab"), bytes, "BYTES", V("YWI="), id="bytearray-declared-bytes"),
    pytest.param(bytearray(b"ab"), None, "BYTES", V("YWI="), id="bytearray"),
    pytest.param(datetime.date(2024, 2, 29), None, "DATE", V("2024-02-29"), id="date"),
    pytest.param(
        datetime.datetime(2024, 2, 29, 23, 0, tzinfo=UTC),
        datetime.date,
        "DATE",
        V("2024-02-29"),
        id="datetime-declared-date-keeps-its-date",
    ),
    pytest.param("2024-02-29", datetime.date, "DATE", V("2024-02-29"), id="iso-text-declared-date"),
    pytest.param(datetime.time(1, 2, 3, 4), None, "TIME", V("01:02:03.000004"), id="time"),
    pytest.param(datetime.time(1, 2, 3, tzinfo=UTC), datetime.time, "TIME", V("01:02:03"), id="time-utc"),
    pytest.param(
        datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
        None,
        "DATETIME",
        V("2024-01-02T03:04:05.000006"),
        id="datetime-naive",
    ),
    pytest.param(
        datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=PLUS_2),
        None,
        "TIMESTAMP",
        V("2024-01-02 01:04:05+00:00"),
        id="datetime-aware",
    ),
    pytest.param(
        datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime.datetime,
        "TIMESTAMP",
        V("2024-01-02 03:04:05.000006+00:00"),
        id="datetime-aware-declared",
    ),
    pytest.param(
        datetime.timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=5),
        None,
        "INTERVAL",
        V("0-0 1 2:3:4.000005"),
        id="timedelta",
    ),
    pytest.param(datetime.timedelta(seconds=-1), None, "INTERVAL", V("0-0 0 -0:0:1"), id="timedelta-negative"),
    pytest.param(datetime.timedelta(days=-2, hours=-3), None, "INTERVAL", V("0-0 -2 -3:0:0"), id="timedelta-neg-days"),
    pytest.param(datetime.timedelta(0), datetime.timedelta, "INTERVAL", V("0-0 0 0:0:0"), id="timedelta-zero"),
    pytest.param(Decimal("1.5"), None, "NUMERIC", V("1.5"), id="decimal-numeric"),
    pytest.param(NUMERIC_MAX, Decimal, "NUMERIC", V(str(NUMERIC_MAX)), id="decimal-numeric-max"),
    pytest.param(NUMERIC_MIN, Decimal, "NUMERIC", V(str(NUMERIC_MIN)), id="decimal-numeric-min"),
    pytest.param(Decimal("1.50000000000000"), None, "NUMERIC", V("1.50000000000000"), id="decimal-trailing-zeros"),
    pytest.param(Decimal("0E+100"), None, "NUMERIC", V("0"), id="decimal-zero-exponent"),
    pytest.param(Decimal("1E+29"), None, "BIGNUMERIC", V("1" + "0" * 29), id="decimal-too-wide-for-numeric"),
    pytest.param(Decimal("1E-10"), None, "BIGNUMERIC", V("0.0000000001"), id="decimal-too-precise-for-numeric"),
    pytest.param(Decimal("-1E+38"), None, "BIGNUMERIC", V("-1" + "0" * 38), id="decimal-exponent-written-out"),
    pytest.param(BIGNUMERIC_MAX, None, "BIGNUMERIC", V(str(BIGNUMERIC_MAX)), id="decimal-bignumeric-max"),
    pytest.param(BIGNUMERIC_MIN, None, "BIGNUMERIC", V(str(BIGNUMERIC_MIN)), id="decimal-bignumeric-min"),
    pytest.param(Color.RED, None, "STRING", V("red"), id="enum-str"),
    pytest.param(Color.BLUE, Color, "STRING", V("blue"), id="enum-str-declared"),
    pytest.param(Level.HIGH, None, "INT64", V("3"), id="intenum"),
    pytest.param(Size.LARGE, Size, "INT64", V("20"), id="enum-int-values"),
    pytest.param("red", Color, "STRING", V("red"), id="enum-declared-takes-its-value"),
    pytest.param({"a": [1, 2], "b": None}, None, "JSON", V('{"a": [1, 2], "b": null}'), id="dict-json"),
    pytest.param({}, dict[str, int], "JSON", V("{}"), id="dict-json-declared"),
    pytest.param(5, Annotated[int, "meta"], "INT64", V("5"), id="annotated"),
    pytest.param(5, Any, "INT64", V("5"), id="any-infers"),
    pytest.param(5, Union[int, str], "INT64", V("5"), id="union-infers"),
    # typed NULLs
    pytest.param(None, Optional[int], "INT64", V(None), id="null-int"),
    pytest.param(None, int | None, "INT64", V(None), id="null-int-pipe"),
    pytest.param(None, Optional[str], "STRING", V(None), id="null-str"),
    pytest.param(None, Optional[bytes], "BYTES", V(None), id="null-bytes"),
    pytest.param(None, Optional[datetime.datetime], "TIMESTAMP", V(None), id="null-datetime"),
    pytest.param(None, Optional[datetime.date], "DATE", V(None), id="null-date"),
    pytest.param(None, Optional[Decimal], "NUMERIC", V(None), id="null-decimal"),
    pytest.param(None, Optional[datetime.timedelta], "INTERVAL", V(None), id="null-interval"),
    pytest.param(None, Optional[dict], "JSON", V(None), id="null-json"),
    pytest.param(None, Optional[Color], "STRING", V(None), id="null-enum"),
    pytest.param(None, Annotated[Optional[float], "meta"], "FLOAT64", V(None), id="null-annotated"),
    pytest.param(None, Optional[list[int]], ARRAY("INT64"), A(), id="null-array-is-empty"),
    pytest.param(None, Optional[Point], POINT, S(x=V(None), y=V(None)), id="null-struct-has-null-fields"),
    # arrays
    pytest.param([1, 2, 3], None, ARRAY("INT64"), A(V("1"), V("2"), V("3")), id="array"),
    pytest.param(["a"], list[str], ARRAY("STRING"), A(V("a")), id="array-declared"),
    pytest.param([], list[int], ARRAY("INT64"), A(), id="array-empty"),
    pytest.param([], typing.List[str], ARRAY("STRING"), A(), id="array-empty-typing-list"),  # noqa: UP006
    pytest.param([], list[Decimal], ARRAY("NUMERIC"), A(), id="array-empty-decimal"),
    pytest.param(["a", None], list[Optional[str]], ARRAY("STRING"), A(V("a"), V(None)), id="array-null-element"),
    pytest.param([None, 1], None, ARRAY("INT64"), A(V(None), V("1")), id="array-undeclared-null-element"),
    pytest.param(
        [Decimal("1"), Decimal("1E+30")],
        list[Decimal],
        ARRAY("BIGNUMERIC"),
        A(V("1"), V("1" + "0" * 30)),
        id="array-decimal-widens",
    ),
    pytest.param(
        [None, datetime.datetime(2024, 1, 1)],
        list[Optional[datetime.datetime]],
        ARRAY("DATETIME"),
        A(V(None), V("2024-01-01T00:00:00.000000")),
        id="array-null-datetime-takes-sibling-type",
    ),
    pytest.param([Color.RED], list[Color], ARRAY("STRING"), A(V("red")), id="array-enum"),
    pytest.param([{"k": 1}], list[dict], ARRAY("JSON"), A(V('{"k": 1}')), id="array-json"),
    pytest.param([], list[Point], ARRAY(POINT), A(), id="array-empty-struct"),
    pytest.param(
        [Point(1, 2.5), Point(3, 4.0)],
        None,
        ARRAY(POINT),
        A(S(x=V("1"), y=V(2.5)), S(x=V("3"), y=V(4.0))),
        id="array-struct",
    ),
    # structs
    pytest.param(Point(1, 2.5), None, POINT, S(x=V("1"), y=V(2.5)), id="struct-dataclass"),
    pytest.param(Point(1, 2), Point, POINT, S(x=V("1"), y=V(2.0)), id="struct-field-declared-float"),
    pytest.param({"x": 1, "y": 2.5}, Point, POINT, S(x=V("1"), y=V(2.5)), id="struct-from-mapping"),
    pytest.param({"x": 1}, Point, POINT, S(x=V("1"), y=V(None)), id="struct-from-mapping-missing-field-is-null"),
    pytest.param((1, 2.5), Point, POINT, S(x=V("1"), y=V(2.5)), id="struct-from-tuple"),
    pytest.param(
        Tagged("n", ["a", "b"]),
        Tagged,
        STRUCT(name="STRING", tags=ARRAY("STRING"), score="NUMERIC"),
        S(name=V("n"), tags=A(V("a"), V("b")), score=V(None)),
        id="struct-with-array-and-null",
    ),
    pytest.param(
        Outer(Point(0, 0.0), [Point(1, 1.0)]),
        None,
        STRUCT(origin=POINT, path=ARRAY(POINT)),
        S(origin=S(x=V("0"), y=V(0.0)), path=A(S(x=V("1"), y=V(1.0)))),
        id="struct-nested-array-of-struct",
    ),
    pytest.param(
        [Event(None), Event(datetime.datetime(2024, 1, 1, tzinfo=UTC))],
        list[Event],
        ARRAY(STRUCT(at="TIMESTAMP")),
        A(S(at=V(None)), S(at=V("2024-01-01 00:00:00+00:00"))),
        id="array-struct-null-field",
    ),
]


@pytest.mark.parametrize(("value", "declared", "bq_type", "api_value"), ROWS)
def test_query_parameter_has_expected_type_and_wire_value(
    value: object, declared: object, bq_type: str | dict[str, Any], api_value: dict[str, Any]
) -> None:
    param = query_parameter("p", value, declared)
    assert param.to_api_repr() == {"name": "p", "parameterType": _t(bq_type), "parameterValue": api_value}


@pytest.mark.parametrize(("value", "declared", "bq_type", "api_value"), ROWS)
def test_query_parameter_wire_form_is_json_serializable(
    value: object, declared: object, bq_type: object, api_value: object
) -> None:
    json.dumps(query_parameter("p", value, declared).to_api_repr(), allow_nan=False)


@pytest.mark.parametrize(
    "delta",
    [
        datetime.timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=5),
        datetime.timedelta(seconds=-1),
        datetime.timedelta(days=-1, seconds=5, microseconds=7),
        datetime.timedelta(days=3_660_000),
        -datetime.timedelta(days=3_660_000, hours=23, minutes=59, seconds=59, microseconds=999_999),
    ],
)
def test_interval_text_parses_back_to_the_same_duration_with_the_clients_parser(delta: datetime.timedelta) -> None:
    text = query_parameter("p", delta).to_api_repr()["parameterValue"]["value"]
    parsed = SCALAR_QUERY_PARAM_PARSER.interval_to_py(text, SchemaField("p", "INTERVAL"))
    assert parsed is not None
    assert (parsed.years, parsed.months) == (0, 0)
    units = ("days", "hours", "minutes", "seconds", "microseconds")
    assert datetime.timedelta(**{unit: getattr(parsed, unit) for unit in units}) == delta


# (value, declared type, fragments the message must contain)
ERRORS = [
    pytest.param(2**63, None, ["INT64", "range"], id="int-above-int64"),
    pytest.param(-(2**63) - 1, int, ["INT64", "range"], id="int-below-int64"),
    pytest.param(Level, None, ["EnumType"], id="enum-class-not-member"),
    pytest.param(Decimal("1E+39"), None, ["BIGNUMERIC"], id="decimal-too-big"),
    pytest.param(
        Decimal("578960446186580977117854925043439539266.34992332820282019728792003956564819968"),
        Decimal,
        ["BIGNUMERIC"],
        id="decimal-just-above-bignumeric",
    ),
    pytest.param(Decimal("1E-39"), None, ["38 digits"], id="decimal-too-precise"),
    pytest.param(Decimal("NaN"), None, ["NaN"], id="decimal-nan"),
    pytest.param(Decimal("-Infinity"), Decimal, ["Infinity"], id="decimal-infinity"),
    pytest.param([[1, 2]], None, ["ARRAY of ARRAY", "STRUCT"], id="array-of-arrays"),
    pytest.param([], list[list[int]], ["ARRAY of ARRAY", "STRUCT"], id="array-of-arrays-declared-empty"),
    pytest.param(None, Optional[list[list[int]]], ["ARRAY of ARRAY"], id="array-of-arrays-declared-null"),
    pytest.param([], None, ["declare", "list[int]"], id="array-empty-undeclared"),
    pytest.param([], list, ["declare", "list[int]"], id="array-empty-bare-list"),
    pytest.param([None], None, ["declare"], id="array-only-nulls-undeclared"),
    pytest.param([1, "a"], None, ["INT64", "STRING", "single element type"], id="array-mixed"),
    pytest.param([1, 2.0], None, ["INT64", "FLOAT64"], id="array-int-and-float"),
    pytest.param(
        [datetime.datetime(2024, 1, 1), datetime.datetime(2024, 1, 1, tzinfo=UTC)],
        None,
        ["DATETIME", "TIMESTAMP"],
        id="array-naive-and-aware",
    ),
    pytest.param(
        [Event(None), Event(datetime.datetime(2024, 1, 1, tzinfo=UTC)), Event(datetime.datetime(2024, 1, 1))],
        None,
        ["TIMESTAMP", "DATETIME"],
        id="array-struct-null-does-not-hide-naive-and-aware",
    ),
    pytest.param({1, 2}, None, ["set", "supported types:"], id="set"),
    pytest.param((1, 2), None, ["tuple", "supported types:"], id="plain-tuple"),
    pytest.param(Pair(1, "b"), None, ["Pair", "NamedTuple", "dataclass"], id="namedtuple"),
    pytest.param(Pair(1, "b"), Point, ["expected a record"], id="namedtuple-for-dataclass"),
    pytest.param((1, 2.5, 3), Point, ["3 values", "2 fields"], id="tuple-of-wrong-length-for-dataclass"),
    pytest.param(FakeFlyteFile("s3://bucket/key"), None, ["FakeFlyteFile", "supported types:"], id="flytefile-like"),
    pytest.param(object(), None, ["object", "supported types:"], id="object"),
    pytest.param(None, set[int], ["set", "supported types:"], id="declared-unsupported"),
    pytest.param(None, None, ["no declared type"], id="null-undeclared"),
    pytest.param(None, Union[int, str, None], ["does not pin"], id="null-of-union"),
    pytest.param(None, Optional[list], ["element type"], id="null-bare-list"),
    pytest.param("7", int, ["declared as int", "str"], id="mismatch-str-for-int"),
    pytest.param(True, int, ["declared as int", "bool"], id="mismatch-bool-for-int"),
    pytest.param("2024-13-01", datetime.date, ["expected a date value"], id="unparseable-date-text"),
    pytest.param(
        datetime.date(2024, 1, 1), datetime.datetime, ["declared as datetime.datetime", "date"], id="date-for-dt"
    ),
    pytest.param({"a": 1}, Point, ["not fields of STRUCT<x INT64, y FLOAT64>"], id="mapping-with-unknown-key"),
    pytest.param(5, Point, ["expected a record", "int"], id="int-for-dataclass"),
    pytest.param(datetime.time(9, tzinfo=PLUS_2), None, ["TIME", "time zone"], id="time-with-offset"),
    pytest.param(datetime.timedelta(days=3_660_001), None, ["INTERVAL"], id="interval-too-long"),
    pytest.param(datetime.datetime(1, 1, 1, tzinfo=PLUS_2), None, ["TIMESTAMP"], id="timestamp-below-year-1"),
    pytest.param({"a": float("nan")}, None, ["JSON"], id="json-nan"),
    pytest.param({"a": object()}, None, ["JSON"], id="json-non-json-type"),
    pytest.param(Mixed.A, None, ["Enum"], id="enum-mixed-values"),
    pytest.param(Node(1, None), None, ["contains itself"], id="recursive-struct"),
    pytest.param(Empty(), None, ["no fields"], id="empty-struct"),
    pytest.param(Point(1, "2"), None, ["'p'.y", "declared as float"], id="struct-field-mismatch"),  # type: ignore[arg-type]
    pytest.param([1, "x"], list[int], ["'p'[1]"], id="array-element-mismatch-named-by-index"),
]


@pytest.mark.parametrize(("value", "declared", "fragments"), ERRORS)
def test_query_parameter_refuses_with_message_naming_input_and_problem(
    value: object, declared: object, fragments: list[str]
) -> None:
    with pytest.raises(UnsupportedInputError) as caught:
        query_parameter("p", value, declared)
    message = str(caught.value)
    assert "'p'" in message
    for fragment in fragments:
        assert fragment in message


SECRET = "s3cr3t-T0KEN"

SECRET_VALUES = [
    pytest.param({SECRET}, None, id="set"),
    pytest.param(FakeFlyteFile(SECRET), None, id="flytefile-like"),
    pytest.param(SECRET, int, id="mismatch"),
    pytest.param({SECRET: float("nan")}, None, id="json-nan"),
    pytest.param({SECRET: object()}, None, id="json-bad-type"),
    pytest.param([SECRET, 1], None, id="mixed-array"),
    pytest.param([[SECRET]], None, id="array-of-arrays"),
    pytest.param((SECRET,), None, id="tuple"),
    pytest.param({SECRET: 1}, Point, id="mapping-key"),
    pytest.param(SECRET, datetime.date, id="unparseable-date-text"),
    pytest.param(SECRET, Decimal, id="unparseable-decimal-text"),
    pytest.param(Point(1, SECRET), None, id="struct-field"),  # type: ignore[arg-type]
    pytest.param(int("9" * 30), None, id="int-out-of-range"),
    pytest.param(Decimal("9" * 45), None, id="decimal-out-of-range"),
]


@pytest.mark.parametrize(("value", "declared"), SECRET_VALUES)
def test_refusal_message_never_contains_the_value(value: object, declared: object) -> None:
    with pytest.raises(UnsupportedInputError) as caught:
        query_parameter("p", value, declared)
    message = str(caught.value)
    assert SECRET not in message and "9" * 20 not in message
    # no chained exception that could carry the value into a traceback
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_public_type_map_keeps_upstream_entries() -> None:
    upstream = {
        list: "ARRAY",
        bool: "BOOL",
        bytes: "BYTES",
        datetime.datetime: "DATETIME",
        float: "FLOAT64",
        int: "INT64",
        str: "STRING",
    }
    assert upstream.items() <= pythonTypeToBigQueryType.items()


def test_public_type_map_adds_modern_types() -> None:
    added = {
        datetime.date: "DATE",
        datetime.time: "TIME",
        Decimal: "NUMERIC",
        dict: "JSON",
        datetime.timedelta: "INTERVAL",
    }
    assert added.items() <= pythonTypeToBigQueryType.items()


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1", set()),
        ("SELECT @a", {"a"}),
        ("SELECT @a, @b_2 FROM t WHERE x = @a", {"a", "b_2"}),
        ("SELECT @Name", {"Name"}),
        ("SELECT 'a' || @x || 'b'", {"x"}),
        ("SELECT '@no', @yes", {"yes"}),
        ('SELECT "@no", @yes', {"yes"}),
        ("SELECT '''@no\n''', @yes", {"yes"}),
        ('SELECT """@no\n""", @yes', {"yes"}),
        ("SELECT 'it\\'s @no', @yes", {"yes"}),
        ('SELECT "it\'s", @yes', {"yes"}),
        ("SELECT r'a\\'@no', @yes", {"yes"}),
        ("SELECT b'@no', rb'@no', @yes", {"yes"}),
        ("SELECT `@no`.col FROM `p.d.@t`, @yes", {"yes"}),
        ("SELECT 1 -- @no\n, @yes", {"yes"}),
        ("SELECT 1 # @no\n, @yes", {"yes"}),
        ("SELECT /* @no \n @no2 */ @yes", {"yes"}),
        ("SELECT '-- not a comment', @yes", {"yes"}),
        ("SELECT @@project_id, @@script.job_id, @yes", {"yes"}),
        ("SELECT * FROM t WHERE email = 'me@example.com' AND id = @id", {"id"}),
        ("SELECT @yes /* unterminated @no", {"yes"}),
        ("SELECT @yes, 'unterminated @no", {"yes"}),
    ],
)
def test_referenced_parameters(sql: str, expected: set[str]) -> None:
    assert referenced_parameters(sql) == expected


# --- run time: recorded types + plain decoded values → REST queryParameters -----------------------------------

#: A naive datetime, and BigQuery's texts of it as a TIMESTAMP (read as UTC) and as a DATETIME.
_AT = datetime.datetime(2024, 1, 2, 3, 4, 5)
_AT_UTC, _AT_WALL = "2024-01-02 03:04:05+00:00", "2024-01-02T03:04:05.000000"

# (recorded InputTypes entry, or None for an upstream template; value as decoded from Flyte's literals;
#  expected BigQuery type; expected parameterValue)
RUN_TIME_ROWS = [
    pytest.param("INT64", 7, "INT64", V("7"), id="int"),
    pytest.param("FLOAT64", 3, "FLOAT64", V(3.0), id="int-for-float"),
    pytest.param("STRING", "red", "STRING", V("red"), id="enum-as-its-value"),
    pytest.param("BYTES", b"\x00\xff", "BYTES", V("AP8="), id="bytes-from-pickle"),
    pytest.param(
        "DATE", datetime.datetime(2024, 2, 29, tzinfo=UTC), "DATE", V("2024-02-29"), id="date-sent-as-datetime"
    ),
    pytest.param("TIME", "01:02:03.000004", "TIME", V("01:02:03.000004"), id="time-as-iso-text"),
    pytest.param(
        "TIMESTAMP|DATETIME", _AT.replace(tzinfo=UTC), "TIMESTAMP", V(_AT_UTC), id="aware-datetime-is-timestamp"
    ),
    pytest.param("TIMESTAMP|DATETIME", _AT.isoformat(), "DATETIME", V(_AT_WALL), id="naive-iso-text-is-datetime"),
    pytest.param("TIMESTAMP|DATETIME", None, "TIMESTAMP", V(None), id="null-datetime-is-timestamp"),
    pytest.param("TIMESTAMP", _AT, "TIMESTAMP", V(_AT_UTC), id="naive-for-declared-timestamp-is-utc"),
    pytest.param(
        "DATETIME",
        _AT.replace(tzinfo=PLUS_2),
        "DATETIME",
        V("2024-01-02T01:04:05.000000"),
        id="aware-for-declared-datetime-is-utc-wall-clock",
    ),
    pytest.param("NUMERIC|BIGNUMERIC", 1.5, "NUMERIC", V("1.5"), id="float-for-decimal"),
    pytest.param("NUMERIC|BIGNUMERIC", "1E-10", "BIGNUMERIC", V("0.0000000001"), id="decimal-text-needing-bignumeric"),
    pytest.param("NUMERIC|BIGNUMERIC", None, "NUMERIC", V(None), id="null-decimal-is-numeric"),
    pytest.param("BIGNUMERIC", Decimal("1.5"), "BIGNUMERIC", V("1.5"), id="declared-bignumeric-stays"),
    pytest.param("INTERVAL", 90.5, "INTERVAL", V("0-0 0 0:1:30.500000"), id="seconds-for-interval"),
    pytest.param("JSON", '{"a": [1]}', "JSON", V('{"a": [1]}'), id="json-text"),
    pytest.param("JSON", {"a": None}, "JSON", V('{"a": null}'), id="json-mapping"),
    pytest.param("ARRAY<DATE>", [], ARRAY("DATE"), A(), id="empty-array-keeps-element-type"),
    pytest.param(
        "ARRAY<NUMERIC|BIGNUMERIC>",
        [1, "1E+30", None],
        ARRAY("BIGNUMERIC"),
        A(V("1"), V("1" + "0" * 30), V(None)),
        id="array-of-decimals-widens",
    ),
    pytest.param(
        "STRUCT<x INT64, seen DATE>",
        {"x": 1, "seen": "2024-05-06"},
        STRUCT(x="INT64", seen="DATE"),
        S(x=V("1"), seen=V("2024-05-06")),
        id="struct-from-msgpack-mapping",
    ),
    pytest.param(
        "STRUCT<x INT64, seen DATE>",
        None,
        STRUCT(x="INT64", seen="DATE"),
        S(x=V(None), seen=V(None)),
        id="null-struct",
    ),
    pytest.param(
        "ARRAY<STRUCT<at TIMESTAMP|DATETIME>>",
        [{"at": None}, {"at": "2024-01-01T00:00:00+00:00"}],
        ARRAY(STRUCT(at="TIMESTAMP")),
        A(S(at=V(None)), S(at=V("2024-01-01 00:00:00+00:00"))),
        id="array-of-structs-with-value-decided-field",
    ),
    pytest.param({"array": "int"}, (1, 2), ARRAY("INT64"), A(V("1"), V("2")), id="old-descriptor-tuple-of-ints"),
    pytest.param({"optional": "date"}, None, "DATE", V(None), id="old-descriptor-optional-date"),
    pytest.param(None, 7, "INT64", V("7"), id="upstream-template-int"),
    pytest.param(
        None,
        datetime.datetime(2024, 1, 2, tzinfo=UTC),
        "TIMESTAMP",
        V("2024-01-02 00:00:00+00:00"),
        id="upstream-template-datetime",
    ),
    pytest.param(None, {"x": 1}, "JSON", V('{"x": 1}'), id="upstream-template-record-is-json"),
    pytest.param(None, [1, 2], ARRAY("INT64"), A(V("1"), V("2")), id="upstream-template-list"),
]


def _recorded_as(recorded: object, task: str) -> dict[str, BigQueryType]:
    """The types of a task whose input ``p`` was recorded as ``recorded`` (``None``: an upstream template,
    which records none)."""
    return parse_input_types({} if recorded is None else {"p": recorded}, task)


@pytest.mark.parametrize(("recorded", "value", "bq_type", "api_value"), RUN_TIME_ROWS)
def test_query_parameters_coerce_plain_values_to_the_recorded_type(
    recorded: object, value: object, bq_type: str | dict[str, Any], api_value: dict[str, Any]
) -> None:
    types = _recorded_as(recorded, "t")
    assert query_parameters({"p": value}, types, "t") == [
        {"name": "p", "parameterType": _t(bq_type), "parameterValue": api_value}
    ]


def test_query_parameters_keep_the_order_of_the_inputs() -> None:
    types = {"b": BigQueryType.parse("INT64"), "a": BigQueryType.parse("STRING")}
    assert [p["name"] for p in query_parameters({"b": 1, "a": "x"}, types, "t")] == ["b", "a"]


# (recorded type, value, fragments of the message)
RUN_TIME_ERRORS = [
    pytest.param("INT64", SECRET, ["declared as int", "str"], id="text-for-int"),
    pytest.param("INT64", 2.5, ["declared as int", "float"], id="float-for-int"),
    pytest.param("DATE", SECRET, ["expected a date value"], id="unparseable-date"),
    pytest.param("NUMERIC|BIGNUMERIC", SECRET, ["expected a Decimal value"], id="unparseable-decimal"),
    pytest.param("JSON", SECRET, ["expected a dict value"], id="unparseable-json"),
    pytest.param("NUMERIC", Decimal("1E-10"), ["does not fit NUMERIC"], id="too-precise-for-declared-numeric"),
    pytest.param("ARRAY<INT64>", SECRET, ["list", "declared as int", "str"], id="text-for-array"),
    pytest.param("ARRAY<INT64>", [[1]], ["list of lists"], id="nested-list"),
    pytest.param("STRUCT<x INT64>", 5, ["expected a record"], id="int-for-struct"),
    pytest.param("STRUCT<x INT64>", {SECRET: 1}, ["not fields of STRUCT<x INT64>"], id="unknown-key"),
    pytest.param("STRUCT<x INT64>", {"x": SECRET}, ["'p'.x", "declared as int"], id="struct-field-names-the-path"),
    pytest.param(None, None, ["no declared type"], id="upstream-null"),
    pytest.param(None, (SECRET,), ["tuple", "supported types:"], id="upstream-tuple"),
]


@pytest.mark.parametrize(("recorded", "value", "fragments"), RUN_TIME_ERRORS)
def test_query_parameters_refusal_names_task_and_input_never_the_value(
    recorded: object, value: object, fragments: list[str]
) -> None:
    types = _recorded_as(recorded, "my_task")
    with pytest.raises(UnsupportedInputError) as caught:
        query_parameters({"p": value}, types, "my_task")
    message = str(caught.value)
    assert "task 'my_task': input 'p'" in message
    for fragment in fragments:
        assert fragment in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("recorded", "value", "expected"),
    [
        ("DATE", datetime.datetime(2024, 2, 29, tzinfo=UTC), datetime.date(2024, 2, 29)),
        ("NUMERIC|BIGNUMERIC", 1.25, Decimal("1.25")),
        ("TIME", "01:02:03", datetime.time(1, 2, 3)),
        ("INTERVAL", 61, datetime.timedelta(seconds=61)),
        ("STRUCT<seen DATE>", {"seen": "2024-05-06"}, {"seen": datetime.date(2024, 5, 6)}),
        ("ARRAY<DATE>", ["2024-05-06"], [datetime.date(2024, 5, 6)]),
        ("STRING", "x", "x"),
        (None, datetime.datetime(2024, 2, 29, tzinfo=UTC), datetime.datetime(2024, 2, 29, tzinfo=UTC)),
    ],
)
def test_coerce_values_shape_plain_values_as_recorded(recorded: object, value: object, expected: object) -> None:
    types = _recorded_as(recorded, "t")
    assert coerce_values({"p": value}, types, "t") == {"p": expected}
