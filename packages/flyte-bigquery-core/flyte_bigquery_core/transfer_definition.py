"""Defining a load, extract or copy task, whatever the SDK: what a ``BigQueryConfig``, a typed spec and the
declared inputs become in the task's custom fields.

Both adapters (flytekit 1's and Flyte 2's) call :func:`define_transfer` when a task is defined and write
:meth:`TransferDefinition.custom_fields` when it is serialized, so their templates carry the same fields: ``ProjectID``,
``Location``, ``Domain``, the spec under its kind's key (``LoadJob``, ``ExtractJob``, ``CopyJob``), the task's own
``Labels`` and its identity and capacity fields (:func:`~.definition.access_fields`). Every definition mistake is
raised here as :class:`~.errors.InvalidTaskError` naming the task and the setting or input: a missing project,
a query-only setting, a ``source`` or ``partition`` type the kind cannot read, a spec that cannot work
(:func:`~.transfer.check_definition`).
"""

from __future__ import annotations

import datetime as dt
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .definition import BigQueryConfig, access_fields
from .errors import InvalidTaskError, about_task
from .jobconfig import require_project
from .transfer import JOB_KINDS, LABELS_KEY, PARTITION_INPUT, SOURCE_INPUT, TransferTask, check_definition

__all__ = [
    "PARTITION_TYPES",
    "QUERY_ONLY_FIELDS",
    "TransferDefinition",
    "check_partition_type",
    "define_transfer",
    "schema_fields",
]

#: ``BigQueryConfig`` fields that only a query task uses; a transfer task refuses them rather than ignore them.
QUERY_ONLY_FIELDS = ("QueryJobConfig", "ResultsDataset", "Estimate", "MaximumBytes", "RawTemplateInputs")
#: The types a load's ``partition`` input may have.
PARTITION_TYPES: tuple[type, ...] = (dt.date, dt.datetime, int, str)


@dataclass(frozen=True)
class TransferDefinition:
    """A checked load, extract or copy task: its name, kind (a key of :data:`~.transfer.JOB_KINDS`), project,
    location, spec (``to_api_repr``'d), own labels and identity fields."""

    name: str
    kind: str
    project: str
    location: str | None
    spec: Mapping[str, Any]
    labels: Mapping[str, str] = field(default_factory=dict)
    access: Mapping[str, Any] = field(default_factory=dict)

    def custom_fields(self, domain: str | None) -> dict[str, Any]:
        """The template's custom fields (JSON) for a task registered in ``domain``."""
        custom: dict[str, Any] = {
            "ProjectID": self.project,
            "Location": self.location,
            "Domain": domain,
            JOB_KINDS[self.kind].custom_key: dict(self.spec),
        }
        if self.labels:
            custom[LABELS_KEY] = dict(self.labels)
        custom.update(self.access)
        return custom


def _accepts(declared: object, allowed: Sequence[object]) -> bool:
    for kind in allowed:
        if typing.get_origin(kind) is not None:
            if declared == kind:
                return True
        elif isinstance(declared, type) and isinstance(kind, type) and issubclass(declared, kind):
            return True
    return False


def check_partition_type(partition_type: object, task: str) -> None:
    """Refuse a load's ``partition`` input type other than :data:`PARTITION_TYPES` (``None``: no such input)."""
    if partition_type is not None and partition_type not in PARTITION_TYPES:
        raise InvalidTaskError(
            f"input 'partition' is declared as {partition_type!r}; expected one of "
            "datetime.date, datetime.datetime, int, str",
            task=task,
        )


def schema_fields(schema: Sequence[Any] | Mapping[str, str] | None, task: str) -> tuple[dict[str, Any], ...] | None:
    """A load's schema as users write it (``SchemaField``-like objects with ``to_api_repr``, REST field dicts, or
    ``{"column": "TYPE"}``) as REST ``TableFieldSchema`` dicts; ``None`` stays ``None``."""
    if schema is None:
        return None
    if isinstance(schema, Mapping):
        return tuple({"name": name, "type": kind} for name, kind in schema.items())
    fields = []
    for column in schema:
        if hasattr(column, "to_api_repr"):
            fields.append(column.to_api_repr())
        elif isinstance(column, Mapping):
            fields.append(dict(column))
        else:
            raise InvalidTaskError(
                f"schema holds a {type(column).__name__}; expected SchemaField objects, REST field dicts or a "
                "{'column': 'TYPE'} mapping",
                task=task,
            )
    return tuple(fields)


def define_transfer(
    name: str,
    kind: str,
    config: BigQueryConfig,
    spec: Any,
    inputs: Mapping[str, object],
    source_types: Sequence[object],
    labels: Mapping[str, str] | None = None,
) -> TransferDefinition:
    """Check and record a ``kind`` task: ``spec`` is the kind's typed spec (``LoadSpec``, ``ExtractSpec``,
    ``CopySpec``), ``inputs`` the declared inputs (name → the SDK's type), ``source_types`` the SDK types a
    ``source`` input may have. Raises :class:`~.errors.InvalidTaskError` naming the task."""
    project = require_project(getattr(config, "ProjectID", None), name)
    used = [f for f in QUERY_ONLY_FIELDS if getattr(config, f, None) not in (None, False, "")]
    if used:
        raise InvalidTaskError(
            f"BigQueryConfig.{', '.join(used)} only apply to query tasks; a {kind} task takes ProjectID and "
            "Location (and the identity and capacity fields)",
            task=name,
        )
    source_type = inputs.get(SOURCE_INPUT)
    if SOURCE_INPUT in inputs and not _accepts(source_type, source_types):
        expected = ", ".join(str(t) if typing.get_origin(t) else getattr(t, "__name__", str(t)) for t in source_types)
        raise InvalidTaskError(f"input 'source' is declared as {source_type!r}; expected one of {expected}", task=name)
    check_partition_type(inputs.get(PARTITION_INPUT), name)
    definition = TransferDefinition(
        name=name,
        kind=kind,
        project=project,
        location=config.Location,
        spec=spec.to_api_repr(),
        labels=dict(labels or {}),
        access=access_fields(config, name),  # who runs the job, where, on which slots
    )
    with about_task(name):
        check_definition(TransferTask(name, kind, definition.custom_fields(None)), list(inputs))
    return definition
