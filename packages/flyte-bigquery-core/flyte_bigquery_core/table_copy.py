"""Copy jobs: the typed spec a copy task records (:class:`CopySpec`) and the ``configuration.copy`` it becomes
for one run (:func:`copy_configuration`). Pure: every check happens here, before submission.

A copy writes one or more tables (or partitions, ``events$20240101``) into a table or partition; a snapshot
(``operationType`` ``SNAPSHOT``) keeps a read-only, cheap point-in-time copy of one table, optionally expiring;
a clone (``CLONE``) a writable one; ``RESTORE`` makes a table from a snapshot. Source:
https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationTableCopy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidTaskError
from .load import CREATE_DISPOSITIONS, LOAD_WRITE_DISPOSITIONS, check_choice
from .partitioning import check_decorator
from .table_refs import TableRef, parse_table

__all__ = ["COPY_OPERATIONS", "CopySpec", "copy_configuration"]

#: ``operationType`` → (how many sources it takes, whether partition decorators may appear, the only write
#: disposition allowed or ``None`` for any).
COPY_OPERATIONS: dict[str, tuple[str, bool, str | None]] = {
    "COPY": ("one or more", True, None),
    "SNAPSHOT": ("one", False, "WRITE_EMPTY"),
    "CLONE": ("one", False, "WRITE_EMPTY"),
    "RESTORE": ("one", False, None),
}


@dataclass(frozen=True)
class CopySpec:
    """What a copy task asks for: the destination, the sources (``()``: the task's ``source`` input), the
    operation, dispositions, and for a snapshot when it expires (RFC 3339, ``destinationExpirationTime``)."""

    destination: str
    sources: tuple[str, ...] = field(default_factory=tuple)
    operation: str = "COPY"
    write_disposition: str | None = None
    create_disposition: str | None = None
    expiration_time: str | None = None

    def to_api_repr(self) -> dict[str, Any]:
        out: dict[str, Any] = {"destination": self.destination, "operationType": self.operation}
        optional = {
            "sources": list(self.sources) or None,
            "writeDisposition": self.write_disposition,
            "createDisposition": self.create_disposition,
            "destinationExpirationTime": self.expiration_time,
        }
        return {**out, **{k: v for k, v in optional.items() if v is not None}}

    @classmethod
    def from_api_repr(cls, data: Any) -> CopySpec:
        if not isinstance(data, Mapping) or not isinstance(data.get("destination"), str):
            raise InvalidTaskError("the task template's CopyJob is missing or has no destination table")
        sources = data.get("sources") or ()
        if isinstance(sources, str) or not isinstance(sources, Sequence):
            raise InvalidTaskError("the task template's CopyJob.sources is not a list of tables")
        return cls(
            destination=data["destination"],
            sources=tuple(sources),
            operation=str(data.get("operationType") or "COPY"),
            write_disposition=data.get("writeDisposition"),
            create_disposition=data.get("createDisposition"),
            expiration_time=data.get("destinationExpirationTime"),
        )


def _sources(spec: CopySpec, source: Any, project: str) -> list[TableRef]:
    if source is None:
        if not spec.sources:
            raise InvalidTaskError("the task has no 'source' input and CopyJob.sources is empty; give one")
        return [parse_table(text, project, f"CopyJob.sources[{i}]") for i, text in enumerate(spec.sources)]
    values = source if isinstance(source, (list, tuple)) else [source]
    if not values:
        raise InvalidTaskError("input 'source' holds no table")
    return [parse_table(text, project, "input 'source'") for text in values]


def copy_configuration(spec: CopySpec, source: Any, project: str) -> dict[str, Any]:
    """``configuration.copy`` for one run; ``source`` is the value of the task's ``source`` input (a table name
    or ``bq://`` URI, or a list of them), ``None`` when it has none. Raises :class:`InvalidTaskError`."""
    operation = spec.operation.upper()
    if operation not in COPY_OPERATIONS:
        raise InvalidTaskError(f"CopyJob.operation is {spec.operation!r}; expected one of {', '.join(COPY_OPERATIONS)}")
    count, decorators, only_disposition = COPY_OPERATIONS[operation]
    sources = _sources(spec, source, project)
    destination = parse_table(spec.destination, project, "CopyJob.destination")
    if count == "one" and len(sources) != 1:
        raise InvalidTaskError(f"CopyJob: a {operation} takes one source table, got {len(sources)}")
    for ref in [*sources, destination]:
        if ref.decorator and not decorators:
            raise InvalidTaskError(f"CopyJob: a {operation} works on whole tables, not partition ${ref.decorator}")
        if ref.decorator:
            check_decorator(ref.decorator, None, None, "CopyJob")
    if destination.to_api_repr() in [s.to_api_repr() for s in sources]:
        raise InvalidTaskError("CopyJob: the destination is also a source")
    check_choice(spec.write_disposition, LOAD_WRITE_DISPOSITIONS, "CopyJob.write_disposition")
    if only_disposition and spec.write_disposition not in (None, only_disposition):
        raise InvalidTaskError(
            f"CopyJob: a {operation} needs a new table, so write_disposition must be {only_disposition}"
        )
    check_choice(spec.create_disposition, CREATE_DISPOSITIONS, "CopyJob.create_disposition")
    if spec.expiration_time is not None and operation != "SNAPSHOT":
        raise InvalidTaskError("CopyJob: an expiration time is for snapshots (operation SNAPSHOT)")
    copy: dict[str, Any] = {
        "sourceTables": [s.to_api_repr() for s in sources],
        "destinationTable": destination.to_api_repr(),
    }
    if operation != "COPY":
        copy["operationType"] = operation
    if spec.write_disposition is not None:
        copy["writeDisposition"] = spec.write_disposition
    if spec.create_disposition is not None:
        copy["createDisposition"] = spec.create_disposition
    if spec.expiration_time is not None:
        copy["destinationExpirationTime"] = spec.expiration_time
    return copy
