"""The one type model: declared Python types → recorded BigQuery type expressions → parsed back at run time."""

from __future__ import annotations

import dataclasses
import datetime
import typing
from decimal import Decimal
from typing import Annotated, Any, Optional, Union

import pytest
from flyte_bigquery_core.errors import InvalidTaskError, UnsupportedInputError
from flyte_bigquery_core.params import BigQueryType, input_type, parse_input_types

from .types_for_tests import Color, Empty, Level, Mixed, Node, Pair


@dataclasses.dataclass
class Point:
    x: int
    seen: datetime.date


@dataclasses.dataclass
class Reading:
    at: Optional[datetime.datetime]
    value: Decimal
    tags: list[str]
    origin: Point


@dataclasses.dataclass
class HoldsAny:
    x: Any


# --- declared Python type → recorded expression -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "expression"),
    [
        (bool, "BOOL"),
        (int, "INT64"),
        (float, "FLOAT64"),
        (str, "STRING"),
        (bytes, "BYTES"),
        (datetime.date, "DATE"),
        (datetime.time, "TIME"),
        (datetime.datetime, "TIMESTAMP|DATETIME"),
        (datetime.timedelta, "INTERVAL"),
        (Decimal, "NUMERIC|BIGNUMERIC"),
        (dict, "JSON"),
        (dict[str, int], "JSON"),
        (Color, "STRING"),
        (Level, "INT64"),
        (Optional[int], "INT64"),
        (int | None, "INT64"),
        (Annotated[Optional[bytes], "meta"], "BYTES"),
        (list[int], "ARRAY<INT64>"),
        (typing.List[str], "ARRAY<STRING>"),  # noqa: UP006
        (list[Optional[Decimal]], "ARRAY<NUMERIC|BIGNUMERIC>"),
        (Point, "STRUCT<x INT64, seen DATE>"),
        (list[Point], "ARRAY<STRUCT<x INT64, seen DATE>>"),
        (
            Reading,
            "STRUCT<at TIMESTAMP|DATETIME, value NUMERIC|BIGNUMERIC, tags ARRAY<STRING>, "
            "origin STRUCT<x INT64, seen DATE>>",
        ),
    ],
)
def test_input_type_records_the_bigquery_type_expression(declared: object, expression: str) -> None:
    assert input_type(declared, "t", "x") == expression


# (declared type, fragments the message must contain besides the task and the input)
REFUSED = [
    pytest.param(tuple[int, str], ["tuple", "supported types:"], id="tuple"),
    pytest.param(tuple[int, ...], ["tuple", "supported types:"], id="variable-tuple"),
    pytest.param(Pair, ["NamedTuple", "never unpickled", "dataclass"], id="namedtuple"),
    pytest.param(Mixed, ["Enum", "all str"], id="enum-of-mixed-values"),
    pytest.param(list[list[int]], ["list of lists", "STRUCT"], id="list-of-lists"),
    pytest.param(list[Optional[list[int]]], ["list of lists"], id="list-of-optional-lists"),
    pytest.param(set[int], ["set", "supported types:"], id="set"),
    pytest.param(object, ["object", "supported types:"], id="object"),
    pytest.param(Any, ["does not pin"], id="any"),
    pytest.param(Union[int, str], ["Union of several types"], id="union"),
    pytest.param(list, ["element type"], id="bare-list"),
    pytest.param(Node, ["contains itself"], id="recursive-dataclass"),
    pytest.param(Empty, ["no fields"], id="dataclass-without-fields"),
    pytest.param(HoldsAny, ["'x'.x", "does not pin"], id="dataclass-field-of-any"),
    pytest.param(list[Pair], ["'x'[]", "NamedTuple"], id="list-of-namedtuples"),
]


@pytest.mark.parametrize(("declared", "fragments"), REFUSED)
def test_input_type_refuses_naming_task_input_and_problem(declared: object, fragments: list[str]) -> None:
    with pytest.raises(UnsupportedInputError) as caught:
        input_type(declared, "my_task", "x")
    message = str(caught.value)
    assert message.startswith("task 'my_task': input 'x'")
    for fragment in fragments:
        assert fragment in message


# --- expressions parse back into the same tree ------------------------------------------------------------------

EXPRESSIONS = [
    "INT64",
    "TIMESTAMP|DATETIME",
    "NUMERIC|BIGNUMERIC",
    "ARRAY<STRING>",
    "STRUCT<x INT64, seen DATE>",
    "ARRAY<STRUCT<x INT64, seen DATE>>",
    "STRUCT<a ARRAY<STRUCT<b NUMERIC|BIGNUMERIC>>, c JSON>",
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_expression_round_trips_through_parse(expression: str) -> None:
    assert str(BigQueryType.parse(expression)) == expression


def test_parse_builds_the_tree() -> None:
    parsed = BigQueryType.parse("ARRAY<STRUCT<x INT64, seen DATE>>")
    assert parsed == BigQueryType(
        "ARRAY",
        element=BigQueryType("STRUCT", fields=(("x", BigQueryType("INT64")), ("seen", BigQueryType("DATE")))),
    )


def test_parse_tolerates_spacing() -> None:
    assert BigQueryType.parse(" ARRAY < STRUCT<x INT64,y DATE> > ") == BigQueryType.parse(
        "ARRAY<STRUCT<x INT64, y DATE>>"
    )


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "INT",
        "int64",
        "ARRAY<INT64",
        "ARRAY<>",
        "ARRAY<ARRAY<INT64>>",
        "STRUCT<>",
        "STRUCT<INT64>",
        "STRUCT<a INT64, a STRING>",
        "INT64 INT64",
        "DATE|TIME",
        "ARRAY<" * 40 + "INT64" + ">" * 40,
    ],
)
def test_parse_refuses_what_is_not_a_type_expression(expression: str) -> None:
    with pytest.raises(ValueError):
        BigQueryType.parse(expression)


# --- InputTypes of every template generation --------------------------------------------------------------------

#: What the previous release wrote in InputTypes (JSON descriptors), and the type each stands for now.
OLD_DESCRIPTORS: dict[str, tuple[Any, str]] = {
    "bool": ("bool", "BOOL"),
    "int": ("int", "INT64"),
    "float": ("float", "FLOAT64"),
    "str": ("str", "STRING"),
    "bytes": ("bytes", "BYTES"),
    "date": ("date", "DATE"),
    "time": ("time", "TIME"),
    "datetime": ("datetime", "TIMESTAMP|DATETIME"),
    "timedelta": ("timedelta", "INTERVAL"),
    "decimal": ("decimal", "NUMERIC|BIGNUMERIC"),
    "json": ("json", "JSON"),
    "enum_str": ({"enum": "str"}, "STRING"),
    "enum_int": ({"enum": "int"}, "INT64"),
    "optional": ({"optional": "int"}, "INT64"),
    "array": ({"array": "date"}, "ARRAY<DATE>"),
    "array_of_optional": ({"array": {"optional": "decimal"}}, "ARRAY<NUMERIC|BIGNUMERIC>"),
    "struct": (
        {"struct": [["x", "int"], ["label", "str"], ["seen", "date"], ["at", {"optional": "datetime"}]]},
        "STRUCT<x INT64, label STRING, seen DATE, at TIMESTAMP|DATETIME>",
    ),
    "array_of_struct": (
        {"array": {"struct": [["p", {"struct": [["x", "float"]]}], ["tags", {"array": "str"}]]}},
        "ARRAY<STRUCT<p STRUCT<x FLOAT64>, tags ARRAY<STRING>>>",
    ),
}


def test_old_descriptors_read_as_the_same_types() -> None:
    raw = {name: descriptor for name, (descriptor, _) in OLD_DESCRIPTORS.items()}
    parsed = parse_input_types(raw, "t")
    assert {name: str(t) for name, t in parsed.items()} == {name: e for name, (_, e) in OLD_DESCRIPTORS.items()}


def test_new_expressions_read_as_types() -> None:
    parsed = parse_input_types({"a": "ARRAY<STRUCT<x INT64, seen DATE>>", "b": "TIMESTAMP|DATETIME"}, "t")
    assert parsed == {
        "a": BigQueryType.parse("ARRAY<STRUCT<x INT64, seen DATE>>"),
        "b": BigQueryType("TIMESTAMP|DATETIME"),
    }


def test_upstream_template_without_input_types_reads_as_no_types() -> None:
    assert parse_input_types(None, "t") == {}


@pytest.mark.parametrize(
    "recorded",
    [
        "no_such_type",
        "INT",
        "ARRAY<ARRAY<INT64>>",
        {"weird": 1},
        {"array": "nope"},
        {"array": {"array": "int"}},
        {"enum": "float"},
        {"struct": []},
        {"struct": [["x"]]},
        {"optional": "int", "array": "int"},
        7,
        None,
        ["INT64"],
    ],
)
def test_unknown_input_type_is_an_invalid_task_naming_task_and_input(recorded: object) -> None:
    with pytest.raises(InvalidTaskError) as caught:
        parse_input_types({"x": recorded}, "my_task")
    message = str(caught.value)
    assert "task 'my_task'" in message
    assert "input 'x'" in message
    assert "InputTypes" in message


@pytest.mark.parametrize("raw", [["INT64"], "INT64", 3])
def test_input_types_that_are_not_a_map_are_an_invalid_task(raw: Any) -> None:
    with pytest.raises(InvalidTaskError, match=r"task 'my_task'.*InputTypes"):
        parse_input_types(raw, "my_task")
