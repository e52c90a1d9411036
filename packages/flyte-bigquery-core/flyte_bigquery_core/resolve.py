"""A value and its BigQuery type → the resolved parameter, built with google-cloud-bigquery's classes.

:func:`coerce` shapes a plain decoded value as its type says (per scalar type: :mod:`.scalars`);
:func:`parameter` checks the value against the type, settles value-decided types (``TIMESTAMP|DATETIME``,
``NUMERIC|BIGNUMERIC``, also across the elements of an ARRAY) and builds the client's parameter object, whose
``to_api_repr`` is the REST form. With no type, the value's own class decides, through the same table
(:func:`~.bigquery_types.declared_type`). A STRUCT's value is a mapping (missing fields are NULL), a
dataclass or a plain tuple; an ARRAY's a list.

What google-cloud-bigquery 3.x cannot express, and what we do instead:

* a NULL ARRAY: ``ArrayQueryParameter(values=None)`` crashes in ``to_api_repr``; BigQuery treats a NULL array
  like an empty one (and stores/returns it as empty), so a NULL array is sent as an empty array of the declared type.
* a NULL STRUCT: ``StructQueryParameter`` always sends ``structValues``, so a NULL struct is sent as a STRUCT of
  NULL fields (``@s IS NULL`` is FALSE; test a field instead).

Messages start with ``where`` (e.g. ``task 't': input 'x'``) and name types only, never the value.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Union

from .bigquery_types import BigQueryType, arrays_of_arrays, declared_type, label
from .errors import UnsupportedInputError
from .scalars import SCALARS, Refused

__all__ = ["coerce", "parameter"]

_WIDENING: dict[frozenset[str], str] = {frozenset({"NUMERIC", "BIGNUMERIC"}): "BIGNUMERIC"}

if TYPE_CHECKING:  # google-cloud-bigquery imports pandas, pyarrow and the Storage client: loaded on first use
    from google.cloud.bigquery.query import (
        ArrayQueryParameterType,
        ScalarQueryParameterType,
        StructQueryParameterType,
        _AbstractQueryParameter,
    )

    _ParamType = Union[ScalarQueryParameterType, ArrayQueryParameterType, StructQueryParameterType]


@dataclasses.dataclass(frozen=True)
class _Typed:
    """A resolved value: its concrete type and a value tree — client-ready scalar, list of trees (ARRAY) or tuple
    of trees (STRUCT); None is NULL."""

    type: BigQueryType
    value: object


def _declared_label(declared: BigQueryType) -> str:
    """The Python type a BigQuery type stands for, as users declare it (``int``, ``list[str]``)."""
    if declared.element is not None:
        return f"list[{_declared_label(declared.element)}]"
    if declared.is_struct:
        return f"a dataclass ({declared})"
    return SCALARS[declared.name].python


def _is_plain_tuple(value: object) -> bool:
    return isinstance(value, tuple) and not hasattr(value, "_fields")


def _mismatch(where: str, declared: BigQueryType, value: object) -> UnsupportedInputError:
    return UnsupportedInputError(
        f"{where} is declared as {_declared_label(declared)} but holds a {label(type(value))}."
    )


def _null_type(declared: BigQueryType) -> BigQueryType:
    """The concrete type of a NULL: a marker becomes its guess (TIMESTAMP, NUMERIC)."""
    if declared.element is not None:
        return BigQueryType("ARRAY", element=_null_type(declared.element))
    if declared.is_struct:
        return BigQueryType("STRUCT", fields=tuple((name, _null_type(f)) for name, f in declared.fields))
    guess = SCALARS[declared.name].null
    return BigQueryType(guess, guessed=True) if guess else declared


def _resolve(declared: BigQueryType | None, value: object, where: str) -> _Typed:
    if value is None:
        if declared is None:
            raise UnsupportedInputError(
                f"{where} is None and has no declared type, so its BigQuery type is unknown; "
                "declare it, e.g. Optional[int]."
            )
        return _Typed(_null_type(declared), None)
    if declared is None:
        if isinstance(value, list):
            return _resolve_array(None, value, where)
        declared = declared_type(type(value), where)  # the value's class decides, by the same table
    if declared.element is not None:
        return _resolve_array(declared.element, value, where)
    if declared.is_struct:
        return _resolve_struct(declared, value, where)
    return _resolve_scalar(declared, value, where)


def coerce(declared: BigQueryType | None, value: object, where: str) -> object:
    """``value`` shaped as its declared type says (what Flyte's transport lost: ISO text for a date, a datetime
    for a DATE, seconds for an INTERVAL…); anything that does not fit is left for the type check to report."""
    if value is None or declared is None:
        return value
    if declared.element is not None:
        if not isinstance(value, list) and not _is_plain_tuple(value):
            return value
        items = typing.cast("list[object]", value)
        return [coerce(declared.element, item, f"{where}[{index}]") for index, item in enumerate(items)]
    if declared.is_struct:
        if not isinstance(value, Mapping):
            return value
        fields = dict(declared.fields)
        return {key: coerce(fields.get(key), item, f"{where}.{key}") for key, item in value.items()}
    scalar = SCALARS[declared.name]
    if scalar.coerce is None:
        return value
    try:
        return scalar.coerce(value)
    except (TypeError, ValueError, ArithmeticError, RecursionError) as e:
        expected = scalar.python.rsplit(".", 1)[-1]
        raise UnsupportedInputError(f"{where}: expected a {expected} value ({type(e).__name__}).") from None


def _resolve_scalar(declared: BigQueryType, value: object, where: str) -> _Typed:
    scalar = SCALARS[declared.name]
    value = coerce(declared, value.value if isinstance(value, enum.Enum) else value, where)
    if not isinstance(value, scalar.accepts) or isinstance(value, scalar.rejects):
        raise _mismatch(where, declared, value)
    try:
        name = scalar.by_value(value) if scalar.by_value is not None else declared.name
        return _Typed(BigQueryType(name), scalar.convert(value))
    except Refused as refused:
        raise UnsupportedInputError(
            f"{where} ({label(type(value))}) cannot be a BigQuery query parameter: {refused}."
        ) from None


def _resolve_array(element: BigQueryType | None, value: object, where: str) -> _Typed:
    if _is_plain_tuple(value):
        value = list(typing.cast("tuple[object, ...]", value))
    if not isinstance(value, list):
        assert element is not None
        raise UnsupportedInputError(
            f"{where} holds a {label(type(value))}, but it is a list whose elements are declared as "
            f"{_declared_label(element)} (ARRAY<{element}>)."
        )
    if any(isinstance(item, list) for item in value):
        raise UnsupportedInputError(arrays_of_arrays(where) + ".")
    items: list[object] = []
    found: BigQueryType | None = None
    for index, item in enumerate(value):
        if item is None and element is None:
            items.append(None)  # an undeclared NULL element takes its siblings' type
            continue
        typed = _resolve(element, item, f"{where}[{index}]")
        items.append(typed.value)
        found = typed.type if found is None else _unify(found, typed.type, where)
    if found is None:
        if element is None:
            raise UnsupportedInputError(
                f"{where} is an empty list (or holds only None) and has no declared element type; "
                "declare it, e.g. list[int]."
            )
        found = _null_type(element)
    if found.element is not None:
        raise UnsupportedInputError(arrays_of_arrays(where) + ".")
    return _Typed(BigQueryType("ARRAY", element=found), items)


def _struct_items(declared: BigQueryType, value: object, where: str) -> list[object]:
    """A STRUCT's field values from a mapping (missing fields are NULL), a dataclass or a plain tuple."""
    names = [name for name, _ in declared.fields]
    if isinstance(value, Mapping):
        unknown = [key for key in value if key not in names]
        if unknown:
            raise UnsupportedInputError(
                f"{where} holds a record with {len(unknown)} key(s) that are not fields of {declared}."
            )
        return [value.get(name) for name in names]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if [field.name for field in dataclasses.fields(value)] != names:
            raise _mismatch(where, declared, value)
        return [getattr(value, name) for name in names]
    if _is_plain_tuple(value):
        items = list(typing.cast("tuple[object, ...]", value))
        if len(items) != len(names):
            raise UnsupportedInputError(f"{where} holds {len(items)} values for the {len(names)} fields of {declared}.")
        return items
    raise UnsupportedInputError(
        f"{where} is declared as {_declared_label(declared)}: expected a record (a mapping, dataclass or tuple) "
        f"but it holds a {label(type(value))}."
    )


def _resolve_struct(declared: BigQueryType, value: object, where: str) -> _Typed:
    fields: list[tuple[str, BigQueryType]] = []
    values: list[object] = []
    for (name, field), item in zip(declared.fields, _struct_items(declared, value, where), strict=True):
        typed = _resolve(field, item, f"{where}.{name}")
        fields.append((name, typed.type))
        values.append(typed.value)
    return _Typed(BigQueryType("STRUCT", fields=tuple(fields)), tuple(values))


def _unify(first: BigQueryType, second: BigQueryType, where: str) -> BigQueryType:
    """The one element type two array elements share, or an error: BigQuery arrays are homogeneous. Recursive
    (not ``==``) so that a guessed NULL type deep inside a STRUCT yields to a sibling's real one."""
    if first.element is not None and second.element is not None:
        return BigQueryType("ARRAY", element=_unify(first.element, second.element, where))
    if first.is_struct and second.is_struct and [n for n, _ in first.fields] == [n for n, _ in second.fields]:
        fields = tuple((n, _unify(a, b, where)) for (n, a), (_, b) in zip(first.fields, second.fields, strict=True))
        return BigQueryType("STRUCT", fields=fields)
    scalars = first.element is None and second.element is None and not (first.is_struct or second.is_struct)
    if scalars and first.guessed:
        return second
    if scalars and (second.guessed or first.name == second.name):
        return first
    widened = _WIDENING.get(frozenset({first.name, second.name})) if scalars else None
    if widened is not None:
        return BigQueryType(widened)
    raise UnsupportedInputError(
        f"{where} mixes {first} and {second} elements; a BigQuery ARRAY holds a single element type."
    )


def _parameter_type(bq_type: BigQueryType, name: str | None = None) -> _ParamType:
    from google.cloud.bigquery.query import ArrayQueryParameterType, ScalarQueryParameterType, StructQueryParameterType

    if bq_type.element is not None:
        return ArrayQueryParameterType(_parameter_type(bq_type.element), name=name)
    if bq_type.is_struct:
        return StructQueryParameterType(*(_parameter_type(field, n) for n, field in bq_type.fields), name=name)
    return ScalarQueryParameterType(bq_type.name, name=name)


def _build(name: str | None, bq_type: BigQueryType, value: object) -> _AbstractQueryParameter:
    from google.cloud.bigquery.query import ArrayQueryParameter, ScalarQueryParameter, StructQueryParameter

    if bq_type.element is not None:
        items = value if isinstance(value, list) else []  # NULL array → empty array (the client has no NULL array)
        if bq_type.element.is_struct:
            structs = [_build(None, bq_type.element, item) for item in items]
            return ArrayQueryParameter(name, _parameter_type(bq_type.element), structs)
        return ArrayQueryParameter(name, bq_type.element.name, items)
    if bq_type.is_struct:
        # NULL struct → a struct of NULL fields (the client always sends structValues).
        values = value if isinstance(value, tuple) else (None,) * len(bq_type.fields)
        fields = (_build(n, field, v) for (n, field), v in zip(bq_type.fields, values, strict=True))
        return StructQueryParameter(name, *fields)
    return ScalarQueryParameter(name, bq_type.name, typing.cast("Any", value))


def parameter(name: str, declared: BigQueryType | None, value: object, where: str) -> _AbstractQueryParameter:
    try:
        typed = _resolve(declared, value, where)
    except RecursionError:
        raise UnsupportedInputError(f"{where} is nested too deeply (or contains itself).") from None
    return _build(name, typed.type, typed.value)
