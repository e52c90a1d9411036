"""How a table is laid out — time or integer-range partitioning and clustering — as typed specs with BigQuery's
REST shapes (``to_api_repr``/``from_api_repr``), and the checks made before a job is submitted: a partition
decorator must name a partition of the declared layout, and partitioning and clustering columns must exist in
an explicit schema with a type that allows them.

Sources: https://cloud.google.com/bigquery/docs/partitioned-tables and
https://cloud.google.com/bigquery/docs/managing-partitioned-table-data#write-to-partition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidTaskError

__all__ = [
    "MAX_CLUSTERING_FIELDS",
    "SPECIAL_PARTITIONS",
    "TIME_PARTITION_FORMATS",
    "RangePartitioning",
    "TimePartitioning",
    "check_decorator",
    "check_layout",
    "partition_decorator",
]

#: Time partitioning granularity → the decorator's ``strptime`` format (``$2024``, ``$202401``, ``$20240101``,
#: ``$2024010113``).
TIME_PARTITION_FORMATS: dict[str, str] = {"YEAR": "%Y", "MONTH": "%Y%m", "DAY": "%Y%m%d", "HOUR": "%Y%m%d%H"}
#: Partitions every partitioned table has besides its own.
SPECIAL_PARTITIONS = frozenset({"__NULL__", "__UNPARTITIONED__"})
MAX_CLUSTERING_FIELDS = 4
#: Column types each kind of partitioning (and clustering) accepts.
_TIME_COLUMN_TYPES = frozenset({"DATE", "TIMESTAMP", "DATETIME"})
_RANGE_COLUMN_TYPES = frozenset({"INTEGER", "INT64"})
_UNCLUSTERABLE_TYPES = frozenset({"RECORD", "STRUCT", "JSON", "GEOGRAPHY", "FLOAT", "FLOAT64", "BYTES"})


@dataclass(frozen=True)
class TimePartitioning:
    """Partitions by ``field`` (a DATE, TIMESTAMP or DATETIME column; ``None``: by ingestion time) per ``type``
    (``DAY``, ``HOUR``, ``MONTH`` or ``YEAR``); partitions expire after ``expiration_ms`` milliseconds if set."""

    type: str = "DAY"
    field: str | None = None
    expiration_ms: int | None = None

    def __post_init__(self) -> None:
        if self.type not in TIME_PARTITION_FORMATS:
            raise InvalidTaskError(
                f"TimePartitioning.type is {self.type!r}; expected one of {', '.join(TIME_PARTITION_FORMATS)}"
            )

    def to_api_repr(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.field:
            out["field"] = self.field
        if self.expiration_ms is not None:
            out["expirationMs"] = str(self.expiration_ms)
        return out

    @classmethod
    def from_api_repr(cls, data: Mapping[str, Any]) -> TimePartitioning:
        expiration = data.get("expirationMs")
        return cls(data.get("type") or "DAY", data.get("field"), int(expiration) if expiration is not None else None)


@dataclass(frozen=True)
class RangePartitioning:
    """Partitions by the INT64 column ``field`` into ``[start, end)`` in steps of ``interval``."""

    field: str
    start: int
    end: int
    interval: int

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.end <= self.start:
            raise InvalidTaskError(
                f"RangePartitioning({self.field!r}) needs start < end and a positive interval; "
                f"got start={self.start}, end={self.end}, interval={self.interval}"
            )

    def to_api_repr(self) -> dict[str, Any]:
        bounds = {"start": str(self.start), "end": str(self.end), "interval": str(self.interval)}
        return {"field": self.field, "range": bounds}

    @classmethod
    def from_api_repr(cls, data: Mapping[str, Any]) -> RangePartitioning:
        bounds = data.get("range") or {}
        try:
            return cls(str(data["field"]), int(bounds["start"]), int(bounds["end"]), int(bounds["interval"]))
        except (KeyError, TypeError, ValueError):
            raise InvalidTaskError("rangePartitioning needs field and range.start, range.end, range.interval") from None


def check_decorator(
    decorator: str, time: TimePartitioning | None, integer_range: RangePartitioning | None, what: str
) -> None:
    """Refuse a partition decorator that cannot name a partition of the declared layout (with no layout
    declared, of any layout): a date of the time partitioning's granularity, or the start of an integer range."""
    if decorator in SPECIAL_PARTITIONS:
        return
    if time is not None:
        formats = {time.type: TIME_PARTITION_FORMATS[time.type]}
    elif integer_range is not None:
        formats = {}
    else:
        formats = TIME_PARTITION_FORMATS
    for fmt in formats.values():
        if len(decorator) == len(dt.datetime(2000, 1, 1).strftime(fmt)):
            try:
                dt.datetime.strptime(decorator, fmt)
                return
            except ValueError:
                pass
    if time is None and decorator.lstrip("-").isdigit():
        value = int(decorator)
        if integer_range is None:
            return
        if (
            integer_range.start <= value < integer_range.end
            and (value - integer_range.start) % integer_range.interval == 0
        ):
            return
        raise InvalidTaskError(
            f"{what}: partition ${decorator} is not the start of a range of {integer_range.field} "
            f"(start {integer_range.start}, end {integer_range.end}, interval {integer_range.interval})"
        )
    expected = (
        f"a {time.type} partition such as ${dt.datetime(2024, 1, 31, 13).strftime(TIME_PARTITION_FORMATS[time.type])}"
        if time is not None
        else "a date (YYYY, YYYYMM, YYYYMMDD or YYYYMMDDHH) or an integer range start"
    )
    raise InvalidTaskError(f"{what}: partition decorator ${decorator} is not {expected}")


def check_layout(
    schema: Sequence[Mapping[str, Any]] | None,
    time: TimePartitioning | None,
    integer_range: RangePartitioning | None,
    clustering: Sequence[str] | None,
    what: str,
) -> None:
    """Refuse a layout BigQuery would refuse: both kinds of partitioning, more than four clustering columns,
    and, with an explicit ``schema`` (REST fields), a partitioning or clustering column that is missing or of a
    type that cannot partition or cluster."""
    if time is not None and integer_range is not None:
        raise InvalidTaskError(f"{what}: a table has time or range partitioning, not both")
    if clustering is not None and not 0 < len(clustering) <= MAX_CLUSTERING_FIELDS:
        raise InvalidTaskError(f"{what}: clustering takes 1 to {MAX_CLUSTERING_FIELDS} columns, got {len(clustering)}")
    if not schema:
        return
    types = {str(f.get("name", "")).casefold(): str(f.get("type", "")).upper() for f in schema}
    wanted: list[tuple[str, str, frozenset[str] | None]] = []
    if time is not None and time.field:
        wanted.append((time.field, "time partitioning", _TIME_COLUMN_TYPES))
    if integer_range is not None:
        wanted.append((integer_range.field, "range partitioning", _RANGE_COLUMN_TYPES))
    wanted += [(name, "clustering", None) for name in clustering or ()]
    for name, role, allowed in wanted:
        kind = types.get(name.casefold())
        if kind is None:
            raise InvalidTaskError(f"{what}: {role} column {name!r} is not in the schema ({', '.join(types)})")
        if (allowed is not None and kind not in allowed) or (allowed is None and kind in _UNCLUSTERABLE_TYPES):
            expected = f"one of {', '.join(sorted(allowed))}" if allowed else "a type that can cluster"
            raise InvalidTaskError(f"{what}: {role} column {name!r} is {kind}; expected {expected}")


def partition_decorator(
    value: Any, time: TimePartitioning | None, integer_range: RangePartitioning | None, what: str
) -> str:
    """The decorator of the partition a run's ``value`` names: a date or datetime formatted for the time
    partitioning's granularity (``DAY`` when none is declared; Flyte carries a ``date`` as a datetime at
    midnight), an integer range start, or decorator text (``20240101``, ``__NULL__``); checked with
    :func:`check_decorator`. :class:`InvalidTaskError` names ``what`` (the input), never the value."""
    if isinstance(value, (dt.date, dt.datetime)):
        decorator = value.strftime(TIME_PARTITION_FORMATS[time.type if time is not None else "DAY"])
    elif isinstance(value, int) and not isinstance(value, bool):
        decorator = str(value)
    elif isinstance(value, str) and value.strip():
        decorator = value.strip().lstrip("$")
    else:
        raise InvalidTaskError(
            f"{what} is a {type(value).__name__}; expected a date, a datetime, an integer range start or a "
            "partition decorator such as '20240101'"
        )
    if not decorator.replace("_", "").isalnum() and not decorator.lstrip("-").isdigit():
        raise InvalidTaskError(f"{what} is not a partition; expected a date or a decorator such as '20240101'")
    try:
        check_decorator(decorator, time, integer_range, what)
    except InvalidTaskError:
        expected = f"a {time.type} partition" if time is not None else "a partition of the table"
        raise InvalidTaskError(f"{what} does not name {expected}") from None
    return decorator
