"""Task input values → BigQuery named query parameters (``@name``), guided by the one type model.

Inputs never get spliced into the SQL text: each one becomes a typed query parameter, so BigQuery parses the query
once and the value can't change what it means (no SQL injection, no quoting bugs).

At definition time :func:`input_type` maps a declared Python type to the BigQuery type expression the task records
(:mod:`.bigquery_types`); at run time :func:`parse_input_types` reads those expressions back (and the JSON
descriptors of older templates) and :func:`query_parameters` turns plain decoded values into REST
``queryParameters`` entries: each value is coerced to its declared type (:mod:`.scalars`), a value-decided type
(``TIMESTAMP|DATETIME``, ``NUMERIC|BIGNUMERIC``) is settled by the value, and google-cloud-bigquery's parameter
classes serialize the result (:mod:`.resolve`). With no recorded type (templates of the upstream plugin) the
value's own class decides, through the same table.

Error messages name the task, the input and types only, never the value: inputs can be secrets.
"""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .bigquery_types import DATETIME_BY_VALUE, DECIMAL_BY_VALUE, MAX_DEPTH, BigQueryType, Unpinned, declared_type
from .errors import InvalidTaskError, about_task
from .resolve import coerce, parameter

if TYPE_CHECKING:  # google-cloud-bigquery imports pandas, pyarrow and the Storage client: loaded on first use
    from google.cloud.bigquery.query import _AbstractQueryParameter

__all__ = [
    "BigQueryType",
    "coerce_values",
    "enum_values",
    "input_type",
    "parse_input_types",
    "pythonTypeToBigQueryType",
    "query_parameter",
    "query_parameters",
    "referenced_parameters",
]

#: The public Python type → BigQuery type map (a superset of the upstream plugin's). It names the type for a
#: *declared* Python type; the exact type of a value is decided by :func:`query_parameters`.
pythonTypeToBigQueryType: dict[type, str] = {
    list: "ARRAY",
    bool: "BOOL",
    bytes: "BYTES",
    # Kept as DATETIME for compatibility with the upstream map. A tz-aware value (which is what flytekit hands
    # over: Flyte datetimes are instants) becomes TIMESTAMP, a naive one DATETIME.
    datetime.datetime: "DATETIME",
    datetime.date: "DATE",
    datetime.time: "TIME",
    datetime.timedelta: "INTERVAL",
    # NUMERIC when the value fits (38 digits, 9 after the point), else BIGNUMERIC.
    decimal.Decimal: "NUMERIC",
    dict: "JSON",
    float: "FLOAT64",
    int: "INT64",
    str: "STRING",
}

# --- InputTypes: type expressions, and the JSON descriptors of templates written before them ---------------------

_DESCRIPTOR_SCALARS: dict[str, str] = {
    "bool": "BOOL",
    "int": "INT64",
    "float": "FLOAT64",
    "str": "STRING",
    "bytes": "BYTES",
    "date": "DATE",
    "time": "TIME",
    "datetime": DATETIME_BY_VALUE,
    "timedelta": "INTERVAL",
    "decimal": DECIMAL_BY_VALUE,
    "json": "JSON",
}
_DESCRIPTOR_ENUMS: dict[str, str] = {"int": "INT64", "str": "STRING"}


def _is_descriptor(raw: object) -> bool:
    """Whether a recorded input type is an old JSON descriptor rather than a type expression."""
    return isinstance(raw, dict) or (isinstance(raw, str) and raw in _DESCRIPTOR_SCALARS)


def _from_descriptor(descriptor: object, depth: int = 0) -> BigQueryType:
    """The type an old JSON descriptor stands for; raises ``ValueError`` for anything else."""
    if depth > MAX_DEPTH:
        raise ValueError("the descriptor is nested too deeply")
    if isinstance(descriptor, str) and descriptor in _DESCRIPTOR_SCALARS:
        return BigQueryType(_DESCRIPTOR_SCALARS[descriptor])
    if not isinstance(descriptor, dict) or len(descriptor) != 1:
        raise ValueError("not a type descriptor")
    ((kind, inner),) = descriptor.items()
    if kind == "optional":
        return _from_descriptor(inner, depth + 1)
    if kind == "array":
        element = _from_descriptor(inner, depth + 1)
        if element.is_array:
            raise ValueError("BigQuery has no ARRAY of ARRAY")
        return BigQueryType("ARRAY", element=element)
    if kind == "enum" and isinstance(inner, str) and inner in _DESCRIPTOR_ENUMS:
        return BigQueryType(_DESCRIPTOR_ENUMS[inner])
    if kind == "struct" and isinstance(inner, list) and inner:
        fields = []
        for field in inner:
            if not (isinstance(field, list) and len(field) == 2 and isinstance(field[0], str) and field[0]):
                raise ValueError("a struct descriptor's fields are [name, descriptor] pairs")
            fields.append((field[0], _from_descriptor(field[1], depth + 1)))
        return BigQueryType("STRUCT", fields=tuple(fields))
    raise ValueError("not a type descriptor")


# --- public API ---------------------------------------------------------------------------------------------------


def input_type(python_type: object, task: str, name: str) -> str:
    """Definition time: the BigQuery type expression to record for an input declared as ``python_type``
    (``INT64``, ``ARRAY<STRUCT<x INT64, seen DATE>>``, ``TIMESTAMP|DATETIME``…). Raises
    :class:`UnsupportedInputError` naming the task, the input and the supported types when there is none."""
    with about_task(task):
        return str(declared_type(python_type, f"input {name!r}"))


def parse_input_types(raw: Mapping[str, Any] | None, task: str) -> dict[str, BigQueryType]:
    """Run time: the recorded input types of a task template (its ``InputTypes``), as type trees. Reads the type
    expressions written by :func:`input_type` and the JSON descriptors of templates written before them; no
    recorded types (upstream templates) is an empty map, so values decide. Raises :class:`InvalidTaskError`
    naming the task and the input for anything else."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidTaskError(
            "the task template's InputTypes is malformed; expected a map of input names to types", task=task
        )
    types: dict[str, BigQueryType] = {}
    for name, recorded in raw.items():
        try:
            types[name] = _from_descriptor(recorded) if _is_descriptor(recorded) else BigQueryType.parse(recorded)
        except (ValueError, TypeError, RecursionError):
            raise InvalidTaskError(
                f"input {name!r} has an unknown type in the task template's InputTypes; expected a BigQuery type "
                "expression such as INT64 or ARRAY<STRING>",
                task=task,
            ) from None
    return types


def coerce_values(values: Mapping[str, Any], types: Mapping[str, BigQueryType], task: str) -> dict[str, Any]:
    """Plain decoded values shaped as their recorded types say — a datetime for a DATE becomes its date, ISO
    text a date, time or datetime, a number a Decimal… — as :func:`query_parameters` shapes them itself; for
    rendering ``{{ .inputs.name }}`` placeholders from the same values. Raises :class:`UnsupportedInputError`
    naming the task and the input, never the value."""
    with about_task(task):
        return {name: coerce(types.get(name), value, f"input {name!r}") for name, value in values.items()}


def enum_values(values: Mapping[str, Any], enums: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Enum inputs that arrived as their member's *name* (Flyte 2's transport; also in a list) replaced by the
    member's value, from the ``{member name: value}`` map the task recorded. Anything else is left as it is."""

    def value(item: Any, members: Mapping[str, Any]) -> Any:
        if isinstance(item, list):
            return [value(element, members) for element in item]
        return members[item] if isinstance(item, str) and item in members else item

    return {name: value(item, enums[name]) if name in enums else item for name, item in values.items()}


def query_parameters(values: Mapping[str, Any], types: Mapping[str, BigQueryType], task: str) -> list[dict[str, Any]]:
    """Run time: BigQuery REST ``queryParameters`` entries for plain decoded input values. Each value is coerced
    to its recorded type (a datetime for a DATE becomes its date, ISO text a date/time, a number a Decimal…);
    an input with no recorded type is typed by its value. Raises :class:`UnsupportedInputError` naming the task
    and the input, never the value."""
    with about_task(task):
        return [
            parameter(name, types.get(name), value, f"input {name!r}").to_api_repr() for name, value in values.items()
        ]


def query_parameter(name: str, value: object, python_type: object = None) -> _AbstractQueryParameter:
    """The BigQuery named parameter ``@name`` for ``value``, for direct use.

    ``python_type`` is the input's declared annotation (``int``, ``Optional[int]``, ``list[str]``, a dataclass,
    ...), mapped by the same rules as :func:`input_type`. It decides the type of a NULL or an empty list and
    guards against a value of another type; without it (or when it pins no single type, like ``Any``) the type
    is inferred from the value. Raises :class:`UnsupportedInputError` (naming the input and its type, never the
    value) when the value has no BigQuery form.
    """
    where = f"Input {name!r}"
    declared = None
    if python_type is not None:
        try:
            declared = declared_type(python_type, where)
        except Unpinned:
            if value is None:
                raise
    return parameter(name, declared, value, where)


# A GoogleSQL token that can hide an "@": comments, string/bytes literals (any r/b prefix: the prefix does not
# change where a literal ends, and a backslash always protects the next character), quoted identifiers, and
# @@system variables. Triple quotes come before single ones; unterminated ones run to the end (BigQuery rejects
# the query anyway).
_SQL_TOKENS = re.compile(
    r"""
    --[^\n]* | \#[^\n]* | /\*.*?(?:\*/|\Z)
    | '''(?:\\.|.)*?(?:'''|\Z) | \"\"\"(?:\\.|.)*?(?:\"\"\"|\Z)
    | '(?:\\.|[^\\'])*(?:'|\Z) | "(?:\\.|[^\\"])*(?:"|\Z)
    | `(?:\\.|[^\\`])*(?:`|\Z)
    | @@[A-Za-z0-9_.]*
    | @(?P<parameter>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE | re.DOTALL,
)


def referenced_parameters(sql: str) -> set[str]:
    """The ``@name`` query parameters a GoogleSQL query uses, as written — so a reference to an input that was
    never declared can be reported before BigQuery fails with a less helpful message. Names inside comments,
    string literals and backtick-quoted identifiers don't count, nor do ``@@system_variables``."""
    return {match["parameter"] for match in _SQL_TOKENS.finditer(sql) if match["parameter"]}
