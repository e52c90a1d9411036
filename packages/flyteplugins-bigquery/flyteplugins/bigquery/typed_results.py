"""Small typed results for Flyte 2: a ``BigQueryTask``'s ``outputs=`` (scalars or one dataclass) ↔ the core.

The core decides everything (:mod:`flyte_bigquery_core.typed_results`: which column feeds which output, exactly
one row, what fits); this module translates its plain values into the native values Flyte 2 carries. A connector
hands ``Resource.outputs`` to Flyte 2, whose ``get_resource_proto`` (``flyte/connectors/_connector.py``) turns
each value into a literal *by the value's own class* — the connector has the recorded BigQuery types, never the
user's classes — so each value is given the class whose literal the declared type reads back:

* ``int``, ``float``, ``bool``, ``str``, ``date``, ``datetime``, ``timedelta`` and ``None`` (an ``Optional``
  output's NULL) as they are: Flyte 2's own primitives;
* a dataclass (or ``dict``) output as a ``dict`` of its fields in MessagePack-ready form
  (:func:`~flyte_bigquery_core.typed_results.packable`): Flyte 2 writes a MessagePack literal that its dataclass
  decoder reads into the declared class;
* ``Decimal``, ``bytes`` and ``datetime.time`` as they are: Flyte 2 has no literal for them and writes a small
  pickle (``cloudpickle.dumps``, which runs nothing; the task that consumes the output loads it, as it would any
  Flyte 2 pickle). The connector and our service never unpickle.

A top-level ``list`` output is refused at definition time (:func:`declare`): Flyte 2 would pickle a bare list,
which its list decoder cannot read back; a dataclass field may be a list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flyte_bigquery_core.errors import InvalidTaskError
from flyte_bigquery_core.typed_results import TypedOutputs, declare_outputs, packable

__all__ = ["as_declared", "declare", "native_outputs"]


def declare(outputs: Mapping[str, object], task: str, table_output: str | None = None) -> TypedOutputs:
    """The core's record of a task's ``outputs=`` (see :func:`~flyte_bigquery_core.typed_results.declare_outputs`;
    raises :class:`~flyte_bigquery_core.errors.InvalidTaskError` or
    :class:`~flyte_bigquery_core.errors.UnsupportedInputError` naming the task and the output)."""
    declared = declare_outputs(outputs, task, table_output)
    for name, bq_type in declared.types.items():
        if bq_type.is_array:
            raise InvalidTaskError(
                f"output {name!r} is a list, which Flyte 2 cannot carry from a connector; declare a dataclass "
                "with a list field instead",
                task=task,
            )
    return declared


def native_outputs(values: Mapping[str, Any], outputs: TypedOutputs) -> dict[str, Any]:
    """Output name → the native value to put in ``Resource.outputs`` (in the declared order), from the values the
    core read (:func:`~flyte_bigquery_core.typed_results.typed_values`)."""
    native = {}
    for name, bq_type in outputs.types.items():
        value = values.get(name)
        native[name] = packable(value) if bq_type.is_struct or bq_type.name == "JSON" else value
    return native


async def as_declared(outputs: Mapping[str, Any], declared: Mapping[str, type]) -> tuple[Any, ...]:
    """In a local run: ``outputs`` (from the connector) through the literals a connector service would send, read
    back as the declared types — so a local run returns what a remote one does (a dataclass, not a dict)."""
    from flyte.connectors import Resource
    from flyte.connectors._connector import get_resource_proto
    from flyte.types import TypeEngine
    from flyteidl2.core.execution_pb2 import TaskExecution

    proto = await get_resource_proto(Resource(phase=TaskExecution.SUCCEEDED, outputs=dict(outputs)))
    literals = {named.name: named.value for named in proto.outputs.literals}
    return tuple([await TypeEngine.to_python_value(literals[name], declared[name]) for name in declared])
