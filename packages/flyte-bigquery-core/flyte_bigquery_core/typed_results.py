"""Small typed results: a query task's declared scalar or dataclass outputs, filled from its result's single row.

**The rule.** Every output reads the result column of the same name (matched case-insensitively, as BigQuery
matches column names). A task with exactly one output whose type is a dataclass, and no column of that name,
reads the whole row: each field of the dataclass reads the column of its name (extra columns are ignored). The
result must have exactly one row: zero rows, more than one, a missing column, a NULL where the declared type is
not ``Optional``, or a column whose BigQuery type does not fit the declared type (:data:`FITS`) fails the task
permanently, naming the task, the output and what was expected — never the value.

**Where the types come from.** At definition time :func:`declare_outputs` maps each declared Python type
through the one type model (:func:`~.bigquery_types.declared_type`) and records, in the task's custom fields
under :data:`OUTPUTS_KEY`, the BigQuery type expression per output and the paths that may be NULL (``Optional``).
Flyte's connector sees only that record, never the Python classes.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import types
import typing
from collections.abc import Mapping
from typing import Any, Union

from .bigquery_types import DATETIME_BY_VALUE, DECIMAL_BY_VALUE, BigQueryType, declared_type, label
from .errors import InvalidTaskError, PermanentError
from .rows import Column, columns_of, decode_row, parse_interval

__all__ = [
    "FITS",
    "OUTPUTS_KEY",
    "TypedOutputs",
    "declare_outputs",
    "packable",
    "python_type_of",
    "typed_values",
]

#: The custom field holding a task's typed outputs: ``{"types": {name: expression}, "nullable": [path, ...]}``.
OUTPUTS_KEY = "TypedOutputs"

_INTEGERS = frozenset({"INTEGER", "INT64"})
_FLOATS = frozenset({"FLOAT", "FLOAT64"})
_DECIMALS = frozenset({"NUMERIC", "BIGNUMERIC"})

#: Declared BigQuery type → the result column types that fit it (REST spellings, legacy and standard).
FITS: dict[str, frozenset[str]] = {
    "BOOL": frozenset({"BOOL", "BOOLEAN"}),
    "INT64": _INTEGERS,
    "FLOAT64": _FLOATS | _INTEGERS | _DECIMALS,
    "STRING": frozenset({"STRING", "GEOGRAPHY"}),
    "BYTES": frozenset({"BYTES"}),
    "DATE": frozenset({"DATE"}),
    "TIME": frozenset({"TIME"}),
    DATETIME_BY_VALUE: frozenset({"TIMESTAMP", "DATETIME"}),
    "TIMESTAMP": frozenset({"TIMESTAMP"}),
    "DATETIME": frozenset({"DATETIME"}),
    "INTERVAL": frozenset({"INTERVAL"}),
    DECIMAL_BY_VALUE: _DECIMALS | _INTEGERS,
    "NUMERIC": _DECIMALS | _INTEGERS,
    "BIGNUMERIC": _DECIMALS | _INTEGERS,
    "JSON": frozenset({"JSON", "RECORD", "STRUCT"}),
}


@dataclasses.dataclass(frozen=True)
class TypedOutputs:
    """The declared outputs of a task: BigQuery type per output, and the paths (``out``, ``out.field``) that may
    be NULL. :meth:`to_json`/:meth:`from_json` are the form stored in custom fields and in the job handle."""

    types: dict[str, BigQueryType]
    nullable: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        return {"types": {name: str(t) for name, t in self.types.items()}, "nullable": sorted(self.nullable)}

    @classmethod
    def from_json(cls, raw: object, task: str) -> TypedOutputs:
        """Raises :class:`InvalidTaskError` (naming the task) for anything but :meth:`to_json`'s form."""
        try:
            assert isinstance(raw, Mapping)
            types_raw, nullable = raw["types"], raw.get("nullable") or []
            assert isinstance(types_raw, Mapping) and types_raw and isinstance(nullable, list)
            parsed = {str(name): BigQueryType.parse(expression) for name, expression in types_raw.items()}
            return cls(parsed, frozenset(str(path) for path in nullable))
        except (AssertionError, KeyError, ValueError, TypeError):
            raise InvalidTaskError(f"the task's {OUTPUTS_KEY} are malformed", task=task) from None

    @property
    def whole_row(self) -> str | None:
        """The one dataclass output that may read the whole row (see the module docstring), if any."""
        if len(self.types) == 1:
            name, declared = next(iter(self.types.items()))
            return name if declared.is_struct else None
        return None


# --- definition time: Python types → TypedOutputs ----------------------------------------------------------------


def _optional_arm(declared: object) -> tuple[object, bool]:
    """``(T, True)`` for ``Optional[T]``, else ``(declared, False)``; Annotated is looked through."""
    while typing.get_origin(declared) is typing.Annotated:
        declared = typing.get_args(declared)[0]
    origin = typing.get_origin(declared)
    if origin is Union or origin is types.UnionType:
        arms = [arm for arm in typing.get_args(declared) if arm is not type(None)]
        if len(arms) == 1 and len(typing.get_args(declared)) == 2:
            return arms[0], True
    return declared, False


def _nullable_paths(declared: object, path: str) -> list[str]:
    inner, optional = _optional_arm(declared)
    paths = [path] if optional else []
    if isinstance(inner, type) and dataclasses.is_dataclass(inner):
        hints = typing.get_type_hints(inner, include_extras=True)
        for field in dataclasses.fields(inner):
            paths += _nullable_paths(hints.get(field.name), f"{path}.{field.name}")
    return paths


def declare_outputs(outputs: Mapping[str, object], task: str, table_output: str | None = None) -> TypedOutputs:
    """The :class:`TypedOutputs` of a task's declared outputs (name → Python type). ``table_output`` names the
    adapter's result-table parameter when the task was given that too (the two exclude each other).

    Raises :class:`~.errors.UnsupportedInputError` for a type with no BigQuery form and :class:`InvalidTaskError`
    for an Enum or both kinds of output, naming the task and the output.
    """
    if table_output is not None:
        raise InvalidTaskError(
            f"declare either {table_output} (the result table) or outputs (typed values from its single row), not both",
            task=task,
        )
    if not outputs:
        raise InvalidTaskError("a typed result needs at least one output", task=task)
    declared: dict[str, BigQueryType] = {}
    nullable: list[str] = []
    for name, python_type in outputs.items():
        where = f"task {task!r}: output {name!r}"
        inner, _ = _optional_arm(python_type)
        if isinstance(inner, type) and issubclass(inner, enum.Enum):
            raise InvalidTaskError(f"output {name!r} is an Enum; declare str or int and compare in code", task=task)
        declared[name] = declared_type(python_type, where)
        nullable += _nullable_paths(python_type, name)
    return TypedOutputs(declared, frozenset(nullable))


# --- run time: the result's single row → values ------------------------------------------------------------------


def _python_label(declared: BigQueryType) -> str:
    if declared.element is not None:
        return f"list[{_python_label(declared.element)}]"
    if declared.is_struct:
        return f"a dataclass ({declared})"
    return label(python_type_of(declared))


def python_type_of(declared: BigQueryType) -> type:
    """The Python class a scalar BigQuery type's values have (``str`` for any other)."""
    return _PYTHON.get(declared.name, str)


_PYTHON: dict[str, type] = {
    "BOOL": bool,
    "INT64": int,
    "FLOAT64": float,
    "STRING": str,
    "BYTES": bytes,
    "DATE": datetime.date,
    "TIME": datetime.time,
    DATETIME_BY_VALUE: datetime.datetime,
    "TIMESTAMP": datetime.datetime,
    "DATETIME": datetime.datetime,
    "INTERVAL": datetime.timedelta,
    DECIMAL_BY_VALUE: decimal.Decimal,
    "NUMERIC": decimal.Decimal,
    "BIGNUMERIC": decimal.Decimal,
    "JSON": dict,
}


class _Shaper:
    """Shapes decoded cells as their declared types, checking each fits; ``where`` names the output path."""

    def __init__(self, outputs: TypedOutputs) -> None:
        self.nullable = outputs.nullable

    def value(self, column: Column, declared: BigQueryType, value: Any, path: str) -> Any:
        where = f"output {path.split('.', 1)[0]!r}" + (f" (field {path.split('.', 1)[1]!r})" if "." in path else "")
        expected = _python_label(declared)
        if declared.is_array:
            if not column.repeated:
                raise PermanentError(f"{where} is declared {expected} but column {column.name!r} is {column.type}")
            item_type = declared.element
            assert item_type is not None
            return [self._scalar(column.element(), item_type, item, path, where) for item in value]
        if column.repeated:
            raise PermanentError(f"{where} is declared {expected} but column {column.name!r} is {column.describe()}")
        return self._scalar(column, declared, value, path, where)

    def _scalar(self, column: Column, declared: BigQueryType, value: Any, path: str, where: str) -> Any:
        expected = _python_label(declared)
        if value is None:
            if path in self.nullable:
                return None
            raise PermanentError(
                f"{where} is declared {expected}, but column {column.name!r} is NULL; declare Optional[...] to "
                "accept NULL"
            )
        if declared.is_struct:
            if not column.is_record:
                raise PermanentError(f"{where} is declared {expected} but column {column.name!r} is {column.type}")
            return self.record(column.fields, value, declared, path, where)
        if column.type not in FITS.get(declared.name, frozenset()):
            raise PermanentError(
                f"{where} is declared {expected} but column {column.name!r} is {column.type}; cast it in SQL"
            )
        if declared.name == "FLOAT64":
            return float(value)
        if declared.name in ("INTERVAL",):
            months, rest = parse_interval(value)
            if months:
                raise PermanentError(f"{where} is declared datetime.timedelta but the INTERVAL holds months")
            return rest
        if declared.name == "JSON" and column.is_record:
            return value
        if declared.name in (DECIMAL_BY_VALUE, "NUMERIC", "BIGNUMERIC") and isinstance(value, int):
            return decimal.Decimal(value)
        return value

    def record(
        self, columns: list[Column], values: Mapping[str, Any], declared: BigQueryType, path: str, where: str
    ) -> dict[str, Any]:
        by_name = {column.name.casefold(): column for column in columns}
        missing = [name for name, _ in declared.fields if name.casefold() not in by_name]
        if missing:
            have = ", ".join(column.name for column in columns) or "none"
            raise PermanentError(f"{where} needs column(s) {', '.join(missing)}; the result has {have}")
        shaped = {}
        for name, field_type in declared.fields:
            column = by_name[name.casefold()]
            shaped[name] = self.value(column, field_type, values[column.name], f"{path}.{name}")
        return shaped


def typed_values(response: Mapping[str, Any], outputs: TypedOutputs, task: str) -> dict[str, Any]:
    """Output name → value from a ``jobs.getQueryResults`` answer (``schema``, ``totalRows``, ``rows``): plain
    Python values shaped as declared (a dataclass output as a dict of its fields). Raises
    :class:`PermanentError` naming the task and the output(s)."""
    names = ", ".join(repr(name) for name in outputs.types)
    total = int(response.get("totalRows") or 0)
    rows = response.get("rows") or []
    if total == 0 or not rows:
        raise PermanentError(
            f"output(s) {names}: the query returned no rows; a typed result needs exactly one", task=task
        )
    if total > 1 or len(rows) > 1:
        raise PermanentError(
            f"output(s) {names}: the query returned {max(total, len(rows))} rows; a typed result needs exactly one "
            "(aggregate, or add LIMIT 1)",
            task=task,
        )
    columns = columns_of(response.get("schema"))
    try:
        row = decode_row(columns, rows[0])
        shaper = _Shaper(outputs)
        by_name = {column.name.casefold(): column for column in columns}
        whole = outputs.whole_row
        if whole is not None and whole.casefold() not in by_name:
            return {whole: shaper.record(columns, row, outputs.types[whole], whole, f"output {whole!r}")}
        values = {}
        for name, declared in outputs.types.items():
            column = by_name.get(name.casefold())
            if column is None:
                have = ", ".join(c.name for c in columns) or "none"
                raise PermanentError(f"output {name!r} reads the column of its name, but the result has {have}")
            values[name] = shaper.value(column, declared, row[column.name], name)
        return values
    except PermanentError as e:
        e.task = e.task or task
        raise


def packable(value: Any) -> Any:
    """A dataclass (or JSON) output's value in the form both SDKs' MessagePack decoders (mashumaro) read back
    into the declared class: ISO text for dates and times, text for decimals, seconds for durations; bytes,
    numbers, text and booleans as they are."""
    if isinstance(value, dict):
        return {key: packable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [packable(item) for item in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return value
