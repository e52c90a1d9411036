"""Python task inputs → BigQuery named query parameters (``@name``).

Inputs never get spliced into the SQL text: each one becomes a typed query parameter, so BigQuery parses the query
once and the value can't change what it means (no SQL injection, no quoting bugs). This module decides the BigQuery
type and hands google-cloud-bigquery a value its own serializers (``_helpers._SCALAR_VALUE_TO_JSON_PARAM``) turn
into the REST form.

The scalar mapping is the ordered table :data:`_RULES`. Order matters because Python's class tree is not
BigQuery's: ``bool`` is an ``int``, ``datetime`` is a ``date``, and an ``IntEnum`` is an ``int``. ARRAY, STRUCT and
``Optional`` are handled by a small recursive resolver that first works out a :class:`_Type` tree and then builds
the client's parameter objects from it.

What google-cloud-bigquery 3.x cannot express, and what we do instead:

* INTERVAL: there is no INTERVAL parameter serializer (the client passes an unknown type's value through
  verbatim), so a ``timedelta`` is rendered by us in BigQuery's canonical ``Y-M D H:M:S.F`` form.
* a NULL ARRAY: ``ArrayQueryParameter(values=None)`` crashes in ``to_api_repr``; BigQuery treats a NULL array
  like an empty one (and stores/returns it as empty), so a NULL array is sent as an empty array of the declared type.
* a NULL STRUCT: ``StructQueryParameter`` always sends ``structValues``, so a NULL struct is sent as a STRUCT of
  NULL fields (``@s IS NULL`` is FALSE; test a field instead).

Error messages name the input and Python types only, never the value: inputs can be secrets.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import re
import types
import typing
from collections.abc import Callable
from typing import Any, Union

from google.cloud.bigquery.query import (
    ArrayQueryParameter,
    ArrayQueryParameterType,
    ScalarQueryParameter,
    ScalarQueryParameterType,
    StructQueryParameter,
    StructQueryParameterType,
    _AbstractQueryParameter,
)

from .errors import UnsupportedInputError

__all__ = ["bigquery_type", "pythonTypeToBigQueryType", "query_parameter", "referenced_parameters"]

#: The public Python type → BigQuery type map (a superset of the upstream plugin's). It names the type for a
#: *declared* Python type; the exact type of a value is decided by :func:`query_parameter`.
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

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# NUMERIC is a 38-digit decimal with 9 digits after the point; BIGNUMERIC a 256-bit integer scaled by 10**38.
_NUMERIC_SCALE, _NUMERIC_MAX_UNSCALED = 9, 10**38 - 1
_BIGNUMERIC_SCALE, _BIGNUMERIC_MIN_UNSCALED, _BIGNUMERIC_MAX_UNSCALED = 38, -(2**255), 2**255 - 1
# The largest day part of a BigQuery INTERVAL ("-10000-0 -3660000 -87840000:0:0 to 10000-0 3660000 87840000:0:0").
_INTERVAL_MAX_DAYS = 3_660_000
_MICROS_PER_DAY = 86_400 * 10**6

_ParamType = Union[ScalarQueryParameterType, ArrayQueryParameterType, StructQueryParameterType]


class _Refused(Exception):
    """A value (or enum class) has no BigQuery form; the message says why without quoting the value."""


# --- scalar converters: Python value → the value google-cloud-bigquery serializes --------------------------------


def _same(value: Any) -> object:
    return value


def _to_int64(value: Any) -> int:
    number = int(value)
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise _Refused("it is outside INT64's range [-2**63, 2**63 - 1]")
    return number


def _to_float(value: Any) -> float:
    # NaN and ±inf are legal FLOAT64 values; the client sends them as the strings "nan"/"inf"/"-inf".
    return float(value)


def _to_bytes(value: Any) -> bytes:
    # The client base64-encodes only real ``bytes``; a bytearray would reach the JSON encoder raw.
    return bytes(value)


def _to_time(value: datetime.time) -> datetime.time:
    offset = value.utcoffset()
    if offset:
        raise _Refused("BigQuery TIME has no time zone; pass a naive time (or one at UTC)")
    return value.replace(tzinfo=None)


def _datetime_type(value: datetime.datetime) -> str:
    # Python's own rule for "aware": a tzinfo that actually yields an offset.
    return "TIMESTAMP" if value.utcoffset() is not None else "DATETIME"


def _to_datetime(value: datetime.datetime) -> datetime.datetime:
    if value.utcoffset() is None:
        # The client would call astimezone() on a tzinfo without an offset, i.e. reinterpret it as local time.
        return value.replace(tzinfo=None)
    try:
        return value.astimezone(datetime.timezone.utc)
    except OverflowError:
        raise _Refused("in UTC it falls outside TIMESTAMP's range (years 1 to 9999)") from None


def _to_interval(value: datetime.timedelta) -> str:
    """Render BigQuery's canonical INTERVAL text ``Y-M D H:M:S[.F]``: whole days in the day part, the rest in
    the time part, both carrying the sign (a timedelta's own ``days`` may be negative with positive seconds)."""
    total = (value.days * 86_400 + value.seconds) * 10**6 + value.microseconds
    days, rest = divmod(abs(total), _MICROS_PER_DAY)
    if days > _INTERVAL_MAX_DAYS:
        raise _Refused(f"it exceeds {_INTERVAL_MAX_DAYS:,} days, BigQuery's INTERVAL range")
    seconds, micros = divmod(rest, 10**6)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    day_sign = "-" if total < 0 and days else ""
    time_sign = "-" if total < 0 and rest else ""
    fraction = f".{micros:06d}" if micros else ""
    return f"0-0 {day_sign}{days} {time_sign}{hours}:{minutes}:{seconds}{fraction}"


def _unscaled(value: decimal.Decimal) -> tuple[int, int]:
    """A finite decimal as (integer, scale) with value == integer / 10**scale, trailing zeros dropped. Exact:
    ``normalize``/``scaleb`` would round to the context's 28 digits."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    if exponent < 0:
        dropped = min(len(text) - len(text.rstrip("0")), -exponent)
        text, exponent = text[: len(text) - dropped], exponent + dropped
    number = int(text or "0") * 10 ** max(exponent, 0)
    return (-number if sign else number), max(-exponent, 0)


def _decimal_type(value: decimal.Decimal) -> str:
    if not value.is_finite():
        raise _Refused("NaN and Infinity have no NUMERIC or BIGNUMERIC form")
    if value.is_zero():
        return "NUMERIC"
    if value.adjusted() > 38:  # larger than any BIGNUMERIC; also keeps _unscaled from building a huge integer
        raise _Refused("it is larger than BIGNUMERIC's range (about ±5.79E+38)")
    number, scale = _unscaled(value)
    if scale <= _NUMERIC_SCALE and abs(number * 10 ** (_NUMERIC_SCALE - scale)) <= _NUMERIC_MAX_UNSCALED:
        return "NUMERIC"
    if scale <= _BIGNUMERIC_SCALE:
        if _BIGNUMERIC_MIN_UNSCALED <= number * 10 ** (_BIGNUMERIC_SCALE - scale) <= _BIGNUMERIC_MAX_UNSCALED:
            return "BIGNUMERIC"
        raise _Refused("it is outside BIGNUMERIC's range (about ±5.79E+38)")
    raise _Refused("it has more than 38 digits after the point (BIGNUMERIC's scale); round it first")


def _to_decimal(value: decimal.Decimal) -> str:
    # Fixed-point text: str(Decimal) may use exponent notation ('-1E+40'); the client sends whatever it gets.
    return format(value, "f")


def _to_json(value: Any) -> object:
    # The client json.dumps the object itself (a pre-dumped string would be double-encoded), so only check here
    # that it can: failing now names the input; failing inside the client would not.
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise _Refused("it holds something JSON cannot represent (a non-JSON type, NaN/Infinity, or a cycle)") from None
    return value


def _enum_type(enum_class: type) -> str:
    member_values = [member.value for member in typing.cast("type[enum.Enum]", enum_class)]
    if member_values and all(isinstance(v, str) for v in member_values):
        return "STRING"
    if member_values and all(isinstance(v, int) and not isinstance(v, bool) for v in member_values):
        return "INT64"
    raise _Refused("only an Enum whose values are all str (STRING) or all int (INT64) has a BigQuery type")


def _to_enum(value: enum.Enum) -> object:
    return _to_int64(value.value) if isinstance(value.value, int) else value.value


@dataclasses.dataclass(frozen=True)
class _Rule:
    """One row of the scalar table: Python class → BigQuery type → how to hand the value to the client."""

    python_type: type
    #: The type a declaration alone implies (also a NULL's type); a callable when the class decides (Enum).
    bigquery_type: str | Callable[[type], str]
    convert: Callable[[Any], object]
    #: Set when the *value* refines the type (aware datetime → TIMESTAMP, big Decimal → BIGNUMERIC).
    by_value: Callable[[Any], str] | None = None
    also_accepts: tuple[type, ...] = ()
    rejects: tuple[type, ...] = ()


#: Ordered: the first row whose class matches wins (Enum before int/str, bool before int, datetime before date).
_RULES: tuple[_Rule, ...] = (
    _Rule(enum.Enum, _enum_type, _to_enum),
    _Rule(bool, "BOOL", _same),
    _Rule(int, "INT64", _to_int64, rejects=(bool,)),
    _Rule(float, "FLOAT64", _to_float, also_accepts=(int,), rejects=(bool,)),
    _Rule(str, "STRING", _same),
    _Rule(bytes, "BYTES", _to_bytes, also_accepts=(bytearray,)),
    # A NULL datetime is typed TIMESTAMP: flytekit's datetimes are instants, so a non-NULL run would be too.
    _Rule(datetime.datetime, "TIMESTAMP", _to_datetime, by_value=_datetime_type),
    _Rule(datetime.date, "DATE", _same, rejects=(datetime.datetime,)),
    _Rule(datetime.time, "TIME", _to_time),
    _Rule(datetime.timedelta, "INTERVAL", _to_interval),
    _Rule(decimal.Decimal, "NUMERIC", _to_decimal, by_value=_decimal_type),
    _Rule(dict, "JSON", _to_json),
)

#: When array elements disagree only in precision, the wider type holds them all.
_WIDENING: dict[frozenset[str], str] = {frozenset({"NUMERIC", "BIGNUMERIC"}): "BIGNUMERIC"}


def _label(python_type: object) -> str:
    if isinstance(python_type, type):
        if python_type.__module__ == "builtins":
            return python_type.__qualname__
        return f"{python_type.__module__}.{python_type.__qualname__}"
    return repr(python_type)


_SUPPORTED = (
    ", ".join(_label(rule.python_type) for rule in _RULES)
    + ", list[T] (ARRAY), dataclass or NamedTuple (STRUCT), Optional[T] (NULL)"
)


# --- the type tree ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Type:
    """A BigQuery type: a scalar name, ``ARRAY`` with an element, or ``STRUCT`` with named fields."""

    name: str
    element: _Type | None = None
    fields: tuple[tuple[str, _Type], ...] = ()
    #: A NULL's guessed type (datetime → TIMESTAMP, Decimal → NUMERIC): a sibling element's real type wins.
    guessed: bool = dataclasses.field(default=False, compare=False)

    def __str__(self) -> str:
        if self.element is not None:
            return f"ARRAY<{self.element}>"
        if self.name == "STRUCT":
            return "STRUCT<" + ", ".join(f"{name} {field}" for name, field in self.fields) + ">"
        return self.name

    def parameter_type(self, name: str | None = None) -> _ParamType:
        if self.element is not None:
            return ArrayQueryParameterType(self.element.parameter_type(), name=name)
        if self.name == "STRUCT":
            return StructQueryParameterType(*(field.parameter_type(n) for n, field in self.fields), name=name)
        return ScalarQueryParameterType(self.name, name=name)


@dataclasses.dataclass(frozen=True)
class _Typed:
    """A resolved value: its type (None only for an undeclared NULL array element, typed by its siblings) and a
    value tree — client-ready scalar, list of trees (ARRAY) or tuple of trees (STRUCT); None is NULL."""

    type: _Type | None
    value: object


def _unwrap(declared: object) -> object:
    """Strip ``Annotated`` and ``Optional``; None when the declaration pins nothing (absent, Any, a Union of
    several types), in which case the value decides."""
    while True:
        if declared is None or declared is Any or declared is object:
            return None
        origin = typing.get_origin(declared)
        if origin is typing.Annotated:
            declared = typing.get_args(declared)[0]
        elif origin is Union or origin is types.UnionType:
            arms = [arm for arm in typing.get_args(declared) if arm is not type(None)]
            if len(arms) != 1:
                return None
            declared = arms[0]
        else:
            return declared


def _is_list(declared: object) -> bool:
    return declared is list or typing.get_origin(declared) is list


def _list_element(declared: object) -> object:
    args = typing.get_args(declared)
    return args[0] if args else None


def _class_of(declared: object) -> object:
    return typing.get_origin(declared) or declared


def _is_struct_class(cls: object) -> bool:
    return isinstance(cls, type) and (
        dataclasses.is_dataclass(cls) or (issubclass(cls, tuple) and hasattr(cls, "_fields"))
    )


def _struct_fields(cls: type) -> tuple[tuple[str, ...], dict[str, Any]]:
    """Field names in declaration order and whatever annotations resolve (unresolvable ones: inferred)."""
    if dataclasses.is_dataclass(cls):
        names = tuple(field.name for field in dataclasses.fields(cls))
    else:
        names = tuple(typing.cast("Any", cls)._fields)
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except (NameError, TypeError):
        hints = {}
    return names, hints


def _rule_for(cls: object) -> _Rule | None:
    if not isinstance(cls, type):
        return None
    return next((rule for rule in _RULES if issubclass(cls, (rule.python_type, *rule.also_accepts))), None)


def _rule_type(rule: _Rule, cls: type) -> str:
    return rule.bigquery_type if isinstance(rule.bigquery_type, str) else rule.bigquery_type(cls)


def _unsupported(where: str, python_type: object) -> UnsupportedInputError:
    return UnsupportedInputError(
        f"Input {where} has Python type {_label(python_type)}, which has no BigQuery query parameter type. "
        f"Supported: {_SUPPORTED}."
    )


def _mismatch(where: str, declared: object, value: object) -> UnsupportedInputError:
    return UnsupportedInputError(f"Input {where} is declared as {_label(declared)} but holds a {_label(type(value))}.")


def _arrays_of_arrays(where: str) -> UnsupportedInputError:
    return UnsupportedInputError(
        f"Input {where} is a list of lists; BigQuery has no ARRAY of ARRAY. Wrap the inner list in a STRUCT "
        "(a dataclass with one list field)."
    )


def _declared_type(declared: object, where: str, *, null: bool, stack: tuple[type, ...]) -> _Type | None:
    """The type a declaration implies. With ``null`` (typing a NULL) it must decide, guessing for value-dependent
    types; otherwise None means "the value decides"."""
    python_type = _unwrap(declared)
    if python_type is None:
        if null:
            raise UnsupportedInputError(
                f"Input {where} is None and its declared type {_label(declared)} does not pin a BigQuery type; "
                "declare a single type, e.g. Optional[int]."
            )
        return None
    if _is_list(python_type):
        element_declared = _list_element(python_type)
        if element_declared is None:
            if null:
                raise UnsupportedInputError(f"Input {where} needs a declared element type, e.g. list[int].")
            return None
        element = _declared_type(element_declared, f"{where}[]", null=null, stack=stack)
        if element is not None and element.element is not None:
            raise _arrays_of_arrays(where)
        return None if element is None else _Type("ARRAY", element=element)
    cls = _class_of(python_type)
    if isinstance(cls, type) and _is_struct_class(cls):
        if cls in stack:
            raise UnsupportedInputError(f"Input {where}: {_label(cls)} contains itself; BigQuery STRUCTs are finite.")
        names, hints = _struct_fields(cls)
        if not names:
            raise UnsupportedInputError(f"Input {where}: {_label(cls)} has no fields; a BigQuery STRUCT needs one.")
        fields = []
        for name in names:
            if name not in hints:
                if null:
                    raise UnsupportedInputError(f"Input {where}.{name} is None and has no type annotation.")
                return None
            field = _declared_type(hints[name], f"{where}.{name}", null=null, stack=(*stack, cls))
            if field is None:
                return None
            fields.append((name, field))
        return _Type("STRUCT", fields=tuple(fields))
    rule = _rule_for(cls)
    if rule is None or not isinstance(cls, type):
        raise _unsupported(where, python_type)
    if rule.by_value is not None and not null:
        return None
    try:
        return _Type(_rule_type(rule, cls), guessed=rule.by_value is not None)
    except _Refused as refused:
        raise UnsupportedInputError(f"Input {where} ({_label(cls)}) has no BigQuery type: {refused}") from None


def _resolve(declared: object, value: object, where: str, stack: tuple[type, ...]) -> _Typed:
    if value is None:
        if declared is None:
            raise UnsupportedInputError(
                f"Input {where} is None and has no declared type, so its BigQuery type is unknown; "
                "declare it, e.g. Optional[int]."
            )
        return _Typed(_declared_type(declared, where, null=True, stack=stack), None)
    python_type = _unwrap(declared)
    if _is_list(python_type) or (python_type is None and isinstance(value, list)):
        return _resolve_array(python_type, value, where, stack)
    cls = type(value) if python_type is None else _class_of(python_type)
    if _is_struct_class(cls):
        return _resolve_struct(typing.cast("type", cls), value, where, stack)
    rule = _rule_for(cls)
    if rule is None or not isinstance(cls, type):
        raise _unsupported(where, type(value) if python_type is None else python_type)
    if not isinstance(value, (cls, *rule.also_accepts)) or isinstance(value, rule.rejects):
        raise _mismatch(where, python_type, value)
    try:
        type_name = rule.by_value(value) if rule.by_value is not None else _rule_type(rule, cls)
        return _Typed(_Type(type_name), rule.convert(value))
    except _Refused as refused:
        raise UnsupportedInputError(
            f"Input {where} ({_label(type(value))}) cannot be a BigQuery query parameter: {refused}."
        ) from None


def _resolve_array(declared: object, value: object, where: str, stack: tuple[type, ...]) -> _Typed:
    if not isinstance(value, list):
        raise _mismatch(where, declared, value)
    element_declared = _list_element(declared) if declared is not None else None
    if _is_list(_unwrap(element_declared)) or any(isinstance(item, list) for item in value):
        raise _arrays_of_arrays(where)
    pins_element = _unwrap(element_declared) is not None
    items: list[object] = []
    element: _Type | None = None
    for index, item in enumerate(value):
        if item is None and not pins_element:
            items.append(None)  # an undeclared NULL element takes its siblings' type
            continue
        typed = _resolve(element_declared, item, f"{where}[{index}]", stack)
        items.append(typed.value)
        if typed.type is not None:
            element = typed.type if element is None else _unify(element, typed.type, where)
    if element is None:
        if not pins_element:
            raise UnsupportedInputError(
                f"Input {where} is an empty list (or holds only None) and has no declared element type; "
                "declare it, e.g. list[int]."
            )
        element = _declared_type(element_declared, f"{where}[]", null=True, stack=stack)
        assert element is not None
    if element.element is not None:
        raise _arrays_of_arrays(where)
    return _Typed(_Type("ARRAY", element=element), items)


def _resolve_struct(cls: type, value: object, where: str, stack: tuple[type, ...]) -> _Typed:
    if not isinstance(value, cls):
        raise _mismatch(where, cls, value)
    names, hints = _struct_fields(cls)
    if not names:
        raise UnsupportedInputError(f"Input {where}: {_label(cls)} has no fields; a BigQuery STRUCT needs one.")
    fields: list[tuple[str, _Type]] = []
    values: list[object] = []
    for name in names:
        typed = _resolve(hints.get(name), getattr(value, name), f"{where}.{name}", (*stack, cls))
        assert typed.type is not None
        fields.append((name, typed.type))
        values.append(typed.value)
    return _Typed(_Type("STRUCT", fields=tuple(fields)), tuple(values))


def _unify(first: _Type, second: _Type, where: str) -> _Type:
    """The one element type two array elements share, or an error: BigQuery arrays are homogeneous. Recursive
    (not ``==``) so that a guessed NULL type deep inside a STRUCT yields to a sibling's real one."""
    if first.element is not None and second.element is not None:
        return _Type("ARRAY", element=_unify(first.element, second.element, where))
    if first.name == second.name == "STRUCT" and [n for n, _ in first.fields] == [n for n, _ in second.fields]:
        fields = tuple((n, _unify(a, b, where)) for (n, a), (_, b) in zip(first.fields, second.fields, strict=True))
        return _Type("STRUCT", fields=fields)
    scalars = first.element is None and second.element is None and "STRUCT" not in (first.name, second.name)
    if scalars and first.guessed:
        return second
    if scalars and (second.guessed or first.name == second.name):
        return first
    widened = _WIDENING.get(frozenset({first.name, second.name})) if scalars else None
    if widened is not None:
        return _Type(widened)
    raise UnsupportedInputError(
        f"Input {where} mixes {first} and {second} elements; a BigQuery ARRAY holds a single element type."
    )


def _build(name: str | None, bq_type: _Type, value: object) -> _AbstractQueryParameter:
    if bq_type.element is not None:
        items = value if isinstance(value, list) else []  # NULL array → empty array (the client has no NULL array)
        if bq_type.element.name == "STRUCT":
            structs = [_build(None, bq_type.element, item) for item in items]
            return ArrayQueryParameter(name, bq_type.element.parameter_type(), structs)
        return ArrayQueryParameter(name, bq_type.element.name, items)
    if bq_type.name == "STRUCT":
        # NULL struct → a struct of NULL fields (the client always sends structValues).
        values = value if isinstance(value, tuple) else (None,) * len(bq_type.fields)
        fields = (_build(n, field, v) for (n, field), v in zip(bq_type.fields, values, strict=True))
        return StructQueryParameter(name, *fields)
    return ScalarQueryParameter(name, bq_type.name, typing.cast("Any", value))


# --- public API ---------------------------------------------------------------------------------------------------


def query_parameter(name: str, value: object, python_type: object = None) -> _AbstractQueryParameter:
    """The BigQuery named parameter ``@name`` for ``value``.

    ``python_type`` is the input's declared annotation (``int``, ``Optional[int]``, ``list[str]``, a dataclass,
    ...). It decides the type of a NULL or an empty list and guards against a value of another type; without it
    the type is inferred from the value. Raises :class:`UnsupportedInputError` (naming the input and its type,
    never the value) when the value has no BigQuery form.
    """
    where = repr(name)
    try:
        typed = _resolve(python_type, value, where, ())
    except RecursionError:
        raise UnsupportedInputError(f"Input {where} is nested too deeply (or contains itself).") from None
    assert typed.type is not None
    return _build(name, typed.type, typed.value)


def bigquery_type(python_type: object) -> str | None:
    """The BigQuery type (e.g. ``INT64``, ``ARRAY<STRING>``, ``STRUCT<a INT64>``) a declared Python type maps to,
    or None when the value must decide: ``datetime`` (DATETIME or TIMESTAMP), ``Decimal`` (NUMERIC or
    BIGNUMERIC), a bare ``list``, ``Any`` or a Union of several types. Raises :class:`UnsupportedInputError` for
    a type with no BigQuery form."""
    declared = _declared_type(python_type, _label(python_type), null=False, stack=())
    return None if declared is None else str(declared)


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
