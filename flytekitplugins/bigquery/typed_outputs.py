"""Typed outputs read from a query's single row (:mod:`flyte_bigquery_core.typed_results`) → Flyte literals.

The connector has no Python classes, only the BigQuery type recorded per output, so each value becomes the
literal flytekit itself would write for the declared type: scalars through flytekit's own transformers
(``Optional[T]`` as a union), a dataclass as MessagePack of its fields in the forms flytekit's dataclass decoder
reads back (ISO text for dates and times, text for decimals, seconds for durations), a list as a collection.
"""

from __future__ import annotations

import datetime
import decimal
import typing
from collections.abc import Mapping
from typing import Any

from flyte_bigquery_core.bigquery_types import BigQueryType
from flyte_bigquery_core.typed_results import TypedOutputs, python_type_of
from flytekit import FlyteContextManager
from flytekit.core.type_engine import TypeEngine
from flytekit.models.literals import Binary, Literal, LiteralCollection, LiteralMap, Scalar, Void

__all__ = ["output_literals"]

_MSGPACK = "msgpack"


def _packable(value: Any) -> Any:
    """A dataclass field's value in the form flytekit's MessagePack decoder (mashumaro) reads back."""
    if isinstance(value, dict):
        return {key: _packable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_packable(item) for item in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return value


def _literal(value: Any, declared: BigQueryType, nullable: bool) -> Literal:
    if value is None:
        return Literal(scalar=Scalar(none_type=Void()))
    if declared.is_struct or declared.name == "JSON":
        import msgpack

        return Literal(scalar=Scalar(binary=Binary(value=msgpack.dumps(_packable(value)), tag=_MSGPACK)))
    if declared.element is not None:
        return Literal(collection=LiteralCollection([_literal(item, declared.element, False) for item in value]))
    python_type: Any = python_type_of(declared)
    if nullable:
        python_type = typing.Optional[python_type]
    ctx = FlyteContextManager.current_context()
    return TypeEngine.to_literal(ctx, value, python_type, TypeEngine.to_literal_type(python_type))


def output_literals(values: Mapping[str, Any], outputs: TypedOutputs) -> LiteralMap:
    """The ``LiteralMap`` of a task's typed outputs (values as :func:`~flyte_bigquery_core.typed_results.typed_values`
    returns them)."""
    return LiteralMap(
        {
            name: _literal(values.get(name), declared, name in outputs.nullable)
            for name, declared in outputs.types.items()
        }
    )
