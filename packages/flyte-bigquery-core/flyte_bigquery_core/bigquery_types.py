"""The one type model: BigQuery parameter types, written as BigQuery type expressions.

A task records, per input, the BigQuery type its declared Python type maps to (:func:`declared_type`), as
an expression such as ``INT64``, ``ARRAY<STRING>`` or ``STRUCT<x INT64, seen DATE>``; the connector parses
it straight back (:meth:`BigQueryType.parse`) and builds the query parameter from the value guided by it.
Two markers stand where the *value* decides: ``TIMESTAMP|DATETIME`` (a ``datetime``: aware → TIMESTAMP,
naive → DATETIME) and ``NUMERIC|BIGNUMERIC`` (a ``Decimal``: NUMERIC when it fits). ``Optional[T]`` is
recorded as ``T``, since every BigQuery parameter can be NULL.

The Python side is the ordered table :data:`RULES`. Order matters because Python's class tree is not
BigQuery's: ``bool`` is an ``int``, ``datetime`` is a ``date``, and an ``IntEnum`` is an ``int``.
Templates written before this model carry JSON *descriptors* (``"int"``, ``{"array": d}``…) instead;
:func:`~.params.parse_input_types` reads them.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import functools
import re
import types
import typing
from collections.abc import Callable
from typing import Any, Union

from .errors import UnsupportedInputError

__all__ = [
    "DATETIME_BY_VALUE",
    "DECIMAL_BY_VALUE",
    "MAX_DEPTH",
    "RULES",
    "SCALAR_TYPES",
    "SUPPORTED_TYPES",
    "BigQueryType",
    "TypeRule",
    "Unpinned",
    "arrays_of_arrays",
    "declared_type",
    "label",
]

#: Markers for types the value decides (see the module docstring).
DATETIME_BY_VALUE = "TIMESTAMP|DATETIME"
DECIMAL_BY_VALUE = "NUMERIC|BIGNUMERIC"

SCALAR_TYPES = frozenset(
    {
        *("BOOL", "INT64", "FLOAT64", "STRING", "BYTES", "DATE", "TIME", "DATETIME", "TIMESTAMP", "INTERVAL"),
        *("NUMERIC", "BIGNUMERIC", "JSON", DATETIME_BY_VALUE, DECIMAL_BY_VALUE),
    }
)

#: STRUCTs nest at most 15 levels in BigQuery; the cap keeps a hostile template from exhausting the stack.
MAX_DEPTH = 32


@dataclasses.dataclass(frozen=True)
class BigQueryType:
    """A BigQuery type: a scalar name (or a marker), ``ARRAY`` with an element, or ``STRUCT`` with named fields.
    ``str()`` is the expression :meth:`parse` reads back."""

    name: str
    element: BigQueryType | None = None
    fields: tuple[tuple[str, BigQueryType], ...] = ()
    #: A NULL's guessed type for a marker (TIMESTAMP, NUMERIC): a sibling array element's real type wins.
    guessed: bool = dataclasses.field(default=False, compare=False)

    def __str__(self) -> str:
        if self.element is not None:
            return f"ARRAY<{self.element}>"
        if self.name == "STRUCT":
            return "STRUCT<" + ", ".join(f"{name} {field}" for name, field in self.fields) + ">"
        return self.name

    @property
    def is_array(self) -> bool:
        return self.element is not None

    @property
    def is_struct(self) -> bool:
        return self.name == "STRUCT"

    @staticmethod
    def parse(expression: str) -> BigQueryType:
        """The type an expression written by ``str()`` denotes; raises ``ValueError`` for anything else."""
        if not isinstance(expression, str):
            raise ValueError("a BigQuery type expression must be a string")
        return _parse(expression)


_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*(?:\|[A-Za-z_][A-Za-z0-9_]*)?)|([<>,]))")


@functools.lru_cache(maxsize=1024)
def _parse(expression: str) -> BigQueryType:
    tokens: list[str] = []
    position = 0
    while position < len(expression.rstrip()):
        match = _TOKEN.match(expression, position)
        if match is None:
            raise ValueError(f"unexpected character at offset {position}")
        tokens.append(match.group(1) or match.group(2))
        position = match.end()
    parsed, end = _parse_type(tokens, 0, 0)
    if end != len(tokens):
        raise ValueError("unexpected text after the type")
    return parsed


def _expect(tokens: list[str], at: int, token: str) -> int:
    if at >= len(tokens) or tokens[at] != token:
        raise ValueError(f"expected {token!r}")
    return at + 1


def _parse_type(tokens: list[str], at: int, depth: int) -> tuple[BigQueryType, int]:
    if depth > MAX_DEPTH:
        raise ValueError("the type is nested too deeply")
    if at >= len(tokens):
        raise ValueError("expected a type")
    word = tokens[at]
    if word == "ARRAY":
        element, at = _parse_type(tokens, _expect(tokens, at + 1, "<"), depth + 1)
        if element.is_array:
            raise ValueError("BigQuery has no ARRAY of ARRAY")
        return BigQueryType("ARRAY", element=element), _expect(tokens, at, ">")
    if word == "STRUCT":
        at = _expect(tokens, at + 1, "<")
        fields: list[tuple[str, BigQueryType]] = []
        while True:
            name = tokens[at] if at < len(tokens) else ""
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError("expected a STRUCT field name")
            field, at = _parse_type(tokens, at + 1, depth + 1)
            fields.append((name, field))
            if at < len(tokens) and tokens[at] == ",":
                at += 1
                continue
            break
        if len({name for name, _ in fields}) != len(fields):
            raise ValueError("a STRUCT field name repeats")
        return BigQueryType("STRUCT", fields=tuple(fields)), _expect(tokens, at, ">")
    if word not in SCALAR_TYPES:
        raise ValueError("unknown type name")
    return BigQueryType(word), at + 1


# --- Python types → BigQuery types ------------------------------------------------------------------------------


class Unpinned(UnsupportedInputError):
    """A declaration that pins no single BigQuery type (``Any``, a Union of several types, a bare ``list``); the
    message says why and ends with what to declare instead."""


class _Refused(Exception):
    """A declared type has no BigQuery form; the message says why."""


def _enum_type(enum_class: type) -> str:
    member_values = [member.value for member in typing.cast("type[enum.Enum]", enum_class)]
    if member_values and all(isinstance(v, str) for v in member_values):
        return "STRING"
    if member_values and all(isinstance(v, int) and not isinstance(v, bool) for v in member_values):
        return "INT64"
    raise _Refused("only an Enum whose values are all str (STRING) or all int (INT64) has a BigQuery type")


@dataclasses.dataclass(frozen=True)
class TypeRule:
    """One row of the table: Python class → BigQuery type (a callable when the class decides, as for Enum)."""

    python_type: type
    bigquery_type: str | Callable[[type], str]


#: Ordered: the first row whose class matches wins (Enum before int/str, bool before int, datetime before date).
RULES: tuple[TypeRule, ...] = (
    TypeRule(enum.Enum, _enum_type),
    TypeRule(bool, "BOOL"),
    TypeRule(int, "INT64"),
    TypeRule(float, "FLOAT64"),
    TypeRule(str, "STRING"),
    TypeRule(bytes, "BYTES"),
    TypeRule(bytearray, "BYTES"),
    TypeRule(datetime.datetime, DATETIME_BY_VALUE),
    TypeRule(datetime.date, "DATE"),
    TypeRule(datetime.time, "TIME"),
    TypeRule(datetime.timedelta, "INTERVAL"),
    TypeRule(decimal.Decimal, DECIMAL_BY_VALUE),
    TypeRule(dict, "JSON"),
)


def label(python_type: object) -> str:
    """A Python type as users write it (``int``, ``datetime.date``, ``list[int]``)."""
    if isinstance(python_type, type) and not typing.get_args(python_type):
        if python_type.__module__ == "builtins":
            return python_type.__qualname__
        return f"{python_type.__module__}.{python_type.__qualname__}"
    return repr(python_type).replace("typing.", "")


SUPPORTED_TYPES = (
    ", ".join(label(rule.python_type) for rule in RULES if rule.python_type is not bytearray)
    + ", list[T] (ARRAY), dataclass (STRUCT) and Optional[T] (NULL) of these"
)


def arrays_of_arrays(where: str) -> str:
    """The refusal of a list of lists, at definition time and at run time alike."""
    return (
        f"{where} is a list of lists; BigQuery has no ARRAY of ARRAY. Wrap the inner list in a STRUCT "
        "(a dataclass with one list field)"
    )


def _unsupported(where: str, python_type: object, why: str = "") -> _Refused:
    return _Refused(
        f"{where} has Python type {label(python_type)}, which has no BigQuery query parameter type"
        f"{why}; supported types: {SUPPORTED_TYPES}"
    )


def declared_type(python_type: object, where: str) -> BigQueryType:
    """The BigQuery type a declared Python type maps to. ``where`` (e.g. ``task 't': input 'x'``) starts every
    message. This is the one answer to "is this type supported": it raises :class:`UnsupportedInputError` for a
    type with no BigQuery form, and its subclass :class:`Unpinned` for a declaration that pins no single type."""
    try:
        return _declared(python_type, where, ())
    except _Refused as refused:
        raise UnsupportedInputError(str(refused)) from None


def _unwrap(declared: object, where: str) -> object:
    """Strip ``Annotated`` and ``Optional``; raise :class:`Unpinned` when nothing single is left."""
    while True:
        if declared is None or declared is Any:
            raise Unpinned(
                f"{where} has declared type {label(declared)}, which does not pin a BigQuery type; "
                "declare a single type, e.g. Optional[int]"
            )
        origin = typing.get_origin(declared)
        if origin is typing.Annotated:
            declared = typing.get_args(declared)[0]
        elif origin is Union or origin is types.UnionType:
            arms = [arm for arm in typing.get_args(declared) if arm is not type(None)]
            if len(arms) != 1:
                raise Unpinned(
                    f"{where} has declared type {label(declared)}, a Union of several types, which does not pin "
                    "a BigQuery type; declare a single type, e.g. Optional[int]"
                )
            declared = arms[0]
        else:
            return declared


def _declared(declared: object, where: str, stack: tuple[type, ...]) -> BigQueryType:
    python_type = _unwrap(declared, where)
    origin = typing.get_origin(python_type) or python_type
    if origin is list:
        args = typing.get_args(python_type)
        if not args:
            raise Unpinned(f"{where} needs a declared element type, e.g. list[int]")
        element = _declared(args[0], f"{where}[]", stack)
        if element.is_array:
            raise _Refused(arrays_of_arrays(where))
        return BigQueryType("ARRAY", element=element)
    if origin is dict:
        return BigQueryType("JSON")
    if not isinstance(origin, type):
        raise _unsupported(where, python_type)
    if origin.__module__.split(".")[0] == "flytekit":
        # FlyteFile, FlyteDirectory, StructuredDataset (a dataclass!)…: data by reference, not a value to bind.
        raise _unsupported(where, python_type)
    if issubclass(origin, tuple):
        why = (
            " (flytekit passes a NamedTuple as a pickle, which is never unpickled); use a dataclass (STRUCT)"
            if hasattr(origin, "_fields")
            else "; use list[T] (ARRAY) or a dataclass (STRUCT)"
        )
        raise _unsupported(where, python_type, why)
    if dataclasses.is_dataclass(origin):
        return _struct(origin, where, stack)
    rule = next((rule for rule in RULES if issubclass(origin, rule.python_type)), None)
    if rule is None:
        raise _unsupported(where, python_type)
    if isinstance(rule.bigquery_type, str):
        return BigQueryType(rule.bigquery_type)
    try:
        return BigQueryType(rule.bigquery_type(origin))
    except _Refused as refused:
        raise _Refused(f"{where} ({label(origin)}) has no BigQuery type: {refused}") from None


def _struct(cls: type, where: str, stack: tuple[type, ...]) -> BigQueryType:
    if cls in stack:
        raise _Refused(f"{where}: {label(cls)} contains itself; BigQuery STRUCTs are finite")
    names = [field.name for field in dataclasses.fields(cls)]
    if not names:
        raise _Refused(f"{where}: {label(cls)} has no fields; a BigQuery STRUCT needs one")
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except (NameError, TypeError):
        raise _Refused(f"{where}: the field annotations of {label(cls)} cannot be resolved") from None
    fields = tuple((name, _declared(hints.get(name), f"{where}.{name}", (*stack, cls))) for name in names)
    return BigQueryType("STRUCT", fields=fields)
