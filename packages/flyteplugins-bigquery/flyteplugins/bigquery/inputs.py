"""The input values Flyte 2 hands a connector → the plain values the core plans with.

Flyte 2 delivers native Python values: the caller's own in a local run, and in a connector service whatever the
service decoded from the request's literals (ours decodes them with
:func:`flyte_bigquery_core.literal_values.plain_values`, never unpickling). What Flyte's transport lost is restored
by the core from the types the task recorded: a ``date`` carried as a midnight-UTC ``datetime``, an enum carried
as its member's name, a dataclass's dates carried as ISO text (:func:`~flyte_bigquery_core.planning.plan_query`).

A value that arrives still as a Flyte ``Literal`` message (a service that passes literals through) is decoded
here by the core's literal reader, whose only unpickler is the restricted one
(:mod:`flyte_bigquery_core.safe_pickle`); ``pickle``/``cloudpickle.loads`` is never called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["plain_inputs"]


def _is_literal(value: object) -> bool:
    """A ``flyteidl2.core.literals_pb2.Literal`` (without importing the IDL to check)."""
    descriptor = getattr(value, "DESCRIPTOR", None)
    return getattr(descriptor, "full_name", None) in ("flyteidl2.core.Literal", "flyteidl.core.Literal")


async def plain_inputs(inputs: Mapping[str, Any] | None, task: str) -> dict[str, Any]:
    """``inputs`` as plain values (``name → value``; empty without inputs). Literal messages among them are
    decoded without unpickling; pickle *files* are not read here (the service reads them from its blob store),
    so one raises :class:`~flyte_bigquery_core.errors.PermanentError` naming the task and the input."""
    values = dict(inputs or {})
    literals = {name: value for name, value in values.items() if _is_literal(value)}
    if literals:
        from flyte_bigquery_core.literal_values import plain_values

        values.update(plain_values(literals, {}, task))
    return values
