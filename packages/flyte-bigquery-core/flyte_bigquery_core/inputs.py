"""Flyte inputs → BigQuery query parameters, safely, in the connector.

The connector only sees Flyte literals, and literals lose Python type information: a ``date`` arrives as a
UTC datetime, ``bytes``/``Decimal``/``time`` arrive as pickle files, a dataclass as msgpack. So the task
records, at definition time, a small JSON *type descriptor* per input in its custom fields
(:func:`describe_type`), and the connector decodes each literal guided by it (:func:`decode_inputs`).

Security: the connector service must never unpickle — that would run arbitrary code with the service's
BigQuery credentials. Pickled inputs are decoded by :mod:`.safe_pickle`, which understands only bytes,
decimals and date/time values and refuses everything else.

Descriptors: ``"bool" "int" "float" "str" "bytes" "date" "time" "datetime" "timedelta" "decimal" "json"``,
``{"array": d}``, ``{"optional": d}``, ``{"struct": [[field, d], ...]}``, ``{"enum": "str" | "int"}``.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import functools
import json
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from .errors import PermanentError, UnsupportedInputError
from .params import query_parameter
from .safe_pickle import load_restricted

__all__ = ["SUPPORTED_TYPES", "DeferredRead", "decode_inputs", "describe_type", "python_type_of", "to_query_parameters"]

SUPPORTED_TYPES = (
    "bool, int, float, str, bytes, datetime.date, datetime.time, datetime.datetime, datetime.timedelta, "
    "decimal.Decimal, Enum, dict (JSON), list[T], Optional[T] and dataclasses of these"
)

# Ordered: bool before int (bool is an int), datetime before date (datetime is a date).
_SCALAR_DESCRIPTORS: tuple[tuple[type, str], ...] = (
    (bool, "bool"),
    (int, "int"),
    (float, "float"),
    (str, "str"),
    (bytes, "bytes"),
    (datetime.datetime, "datetime"),
    (datetime.date, "date"),
    (datetime.time, "time"),
    (datetime.timedelta, "timedelta"),
    (decimal.Decimal, "decimal"),
    (dict, "json"),
)
_DESCRIPTOR_TYPES: dict[str, Any] = {d: t for t, d in _SCALAR_DESCRIPTORS}


def _unsupported(task: str, name: str, python_type: object) -> UnsupportedInputError:
    type_name = getattr(python_type, "__qualname__", None) or repr(python_type)
    return UnsupportedInputError(
        f"task {task!r}: input {name!r} has type {type_name}, which has no BigQuery query parameter type; "
        f"supported types are {SUPPORTED_TYPES}"
    )


def describe_type(python_type: object, task: str = "?", name: str = "?") -> Any:
    """A JSON-safe descriptor of a declared input type; raises :class:`UnsupportedInputError` if none."""
    origin = typing.get_origin(python_type)
    args = typing.get_args(python_type)
    if origin is typing.Annotated:
        return describe_type(args[0], task, name)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return {"optional": describe_type(rest[0], task, name)}
        raise _unsupported(task, name, python_type)
    if origin in (list, tuple) and args and not (origin is tuple and len(args) != 2):
        element = describe_type(args[0], task, name)
        if isinstance(element, dict) and ("array" in element or "array" in element.get("optional", {})):
            raise UnsupportedInputError(
                f"task {task!r}: input {name!r} is a list of lists; BigQuery has no arrays of arrays. "
                "Wrap the inner list in a dataclass (a STRUCT) or flatten it"
            )
        return {"array": element}
    if origin is dict:
        return "json"
    if isinstance(python_type, type):
        if python_type.__module__.split(".")[0] == "flytekit":
            # FlyteFile, FlyteDirectory, StructuredDataset…: data by reference, not a value to bind.
            raise _unsupported(task, name, python_type)
        if issubclass(python_type, enum.Enum):
            values = [m.value for m in python_type]
            return {"enum": "int" if values and all(isinstance(v, int) for v in values) else "str"}
        if dataclasses.is_dataclass(python_type):
            hints = typing.get_type_hints(python_type)
            return {
                "struct": [
                    [f.name, describe_type(hints[f.name], task, f"{name}.{f.name}")]
                    for f in dataclasses.fields(python_type)
                ]
            }
        for scalar, descriptor in _SCALAR_DESCRIPTORS:
            if python_type is scalar:
                return descriptor
        for scalar, descriptor in _SCALAR_DESCRIPTORS:
            if issubclass(python_type, scalar):
                return descriptor
    raise _unsupported(task, name, python_type)


def python_type_of(descriptor: Any) -> Any:
    """The Python type a descriptor stands for (dataclasses are rebuilt from their field list).

    Cached, so that a value built for a STRUCT descriptor is an instance of the very class that the
    parameter converter is later told to expect.
    """
    return _python_type_of(json.dumps(descriptor, sort_keys=True))


@functools.lru_cache(maxsize=512)
def _python_type_of(key: str) -> Any:
    descriptor = json.loads(key)
    if isinstance(descriptor, str):
        return _DESCRIPTOR_TYPES[descriptor]
    if "array" in descriptor:
        return list[python_type_of(descriptor["array"])]  # type: ignore[misc]
    if "optional" in descriptor:
        return typing.Optional[python_type_of(descriptor["optional"])]
    if "enum" in descriptor:
        return int if descriptor["enum"] == "int" else str
    if "struct" in descriptor:
        fields = [(f, python_type_of(d)) for f, d in descriptor["struct"]]
        return dataclasses.make_dataclass("Struct", fields)
    raise ValueError(f"unknown input type descriptor {descriptor!r}")


class DeferredRead(Exception):
    """Raised by a ``read_blob`` that declines to read storage now (e.g. on an event loop); passed through
    untouched so the caller can decode again where blocking reads are fine."""


# --- literals → plain values ------------------------------------------------------------------------------


def _literal_value(literal: Any, read_blob: Callable[[str], bytes], where: str) -> Any:
    """A plain Python value from a flytekit ``Literal``, without unpickling or running user code."""
    if literal.collection is not None:
        return [_literal_value(lit, read_blob, where) for lit in literal.collection.literals]
    if literal.map is not None:
        return {k: _literal_value(lit, read_blob, where) for k, lit in literal.map.literals.items()}
    scalar = literal.scalar
    if scalar is None:
        raise UnsupportedInputError(f"{where}: unsupported literal kind; expected a scalar, list or map")
    if scalar.union is not None:
        return _literal_value(scalar.union.value, read_blob, where)
    if scalar.none_type is not None:
        return None
    if scalar.primitive is not None:
        return scalar.primitive.value
    if scalar.binary is not None:
        if scalar.binary.tag == "msgpack":
            import msgpack

            try:
                return msgpack.unpackb(scalar.binary.value, strict_map_key=False)
            except (ValueError, msgpack.UnpackException) as e:
                raise UnsupportedInputError(
                    f"{where}: the msgpack value could not be decoded ({type(e).__name__})"
                ) from None
        raise UnsupportedInputError(f"{where}: binary literal with tag {scalar.binary.tag!r} is not supported")
    if scalar.generic is not None:
        from google.protobuf import json_format

        return json_format.MessageToDict(scalar.generic)
    if scalar.blob is not None and scalar.blob.metadata.type.format == "PythonPickle":
        try:
            data = read_blob(scalar.blob.uri)
        except DeferredRead:
            raise
        except PermanentError as e:
            raise PermanentError(f"{where}: {e}") from None
        except Exception as e:  # flytekit's download errors are not OSErrors
            raise PermanentError(f"{where}: the pickled input could not be read ({type(e).__name__})") from None
        try:
            return load_restricted(data)
        except UnsupportedInputError as e:
            raise UnsupportedInputError(f"{where}: {e}") from None
    raise UnsupportedInputError(
        f"{where}: files, directories and structured datasets cannot be query parameters; "
        f"supported types are {SUPPORTED_TYPES}"
    )


def _coerce(value: Any, descriptor: Any, where: str) -> Any:
    """Shape a decoded value as its descriptor says (Flyte's transport lost the distinction)."""
    if value is None or descriptor is None:
        return value
    if isinstance(descriptor, str):
        converter = _COERCIONS.get(descriptor)
        try:
            return converter(value) if converter else value
        except (TypeError, ValueError, decimal.InvalidOperation) as e:
            raise UnsupportedInputError(f"{where}: expected a {descriptor} value ({type(e).__name__})") from None
    if "optional" in descriptor:
        return _coerce(value, descriptor["optional"], where)
    if "array" in descriptor:
        return [_coerce(v, descriptor["array"], where) for v in value]
    if "struct" in descriptor:
        if not isinstance(value, Mapping):
            raise UnsupportedInputError(f"{where}: expected a record for a STRUCT parameter")
        cls = python_type_of(descriptor)
        return cls(**{f: _coerce(value.get(f), d, f"{where}.{f}") for f, d in descriptor["struct"]})
    return value


def _to_datetime(value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromisoformat(str(value))


def _to_date(value: Any) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value))


def _to_time(value: Any) -> datetime.time:
    return value if isinstance(value, datetime.time) else datetime.time.fromisoformat(str(value))


def _to_bytes(value: Any) -> bytes:
    return bytes(value)


def _to_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _to_timedelta(value: Any) -> datetime.timedelta:
    if isinstance(value, datetime.timedelta):
        return value
    return datetime.timedelta(seconds=float(value))


_COERCIONS: dict[str, Callable[[Any], Any]] = {
    "datetime": _to_datetime,
    "date": _to_date,
    "time": _to_time,
    "bytes": _to_bytes,
    "decimal": lambda v: v if isinstance(v, decimal.Decimal) else decimal.Decimal(str(v)),
    "json": _to_json,
    "timedelta": _to_timedelta,
    "float": float,
}


def decode_inputs(
    literals: Mapping[str, Any],
    descriptors: Mapping[str, Any],
    read_blob: Callable[[str], bytes],
    task: str,
) -> dict[str, Any]:
    """Plain Python values for a task's input literals, shaped by the recorded descriptors."""
    values: dict[str, Any] = {}
    for name, literal in literals.items():
        where = f"task {task!r}: input {name!r}"
        values[name] = _coerce(_literal_value(literal, read_blob, where), descriptors.get(name), where)
    return values


def to_query_parameters(values: Mapping[str, Any], descriptors: Mapping[str, Any], task: str) -> list[Any]:
    """BigQuery query parameters for decoded input values, typed by their descriptors when recorded."""
    params = []
    for name, value in values.items():
        descriptor = descriptors.get(name)
        python_type = python_type_of(descriptor) if descriptor is not None else None
        try:
            params.append(query_parameter(name, value, python_type))
        except UnsupportedInputError as e:
            message = str(e)
            raise UnsupportedInputError(message if task in message else f"task {task!r}: {message}") from None
    return params
