"""Sensors: wait for a table, a partition, or a table modified after a time — with metadata calls only.

Nothing here runs a query, so a sensor scans and bills 0 bytes however often it polls:

* **table exists** — ``tables.get`` (404: not yet);
* **partition exists** — ``tables.get`` of the table (missing: not yet; not partitioned, or a partition id that
  cannot belong to its partitioning: a permanent error), then ``tabledata.list`` of its
  ``table$__PARTITIONS_SUMMARY__`` meta-table (free, as google-cloud-bigquery's ``Client.list_partitions``
  reads it). ``INFORMATION_SCHEMA.PARTITIONS`` is a query (billed, 10 MB minimum) and is not used;
* **modified after** — ``tables.get``'s ``lastModifiedTime`` (epoch ms) later than the given time.

A :class:`SensorSpec` is decided before any call (:func:`sensor_spec`: a malformed table path, partition id or
time is refused naming the task and the input), travels as JSON in the connector's metadata, and is judged by
:func:`sense` into :class:`Sensed` (met or not, a message, custom info). The pure verdicts
(:func:`table_verdict`, :func:`partition_verdict`, :func:`modified_verdict`) are unit tested on resources alone.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Mapping, Sequence
from typing import Any

from google.api_core import exceptions as api_exceptions

from .errors import InvalidTaskError, PermanentError, about_task
from .jobconfig import require_project

__all__ = [
    "KINDS",
    "PARTITION_FORMATS",
    "SENSOR_KEY",
    "Sensed",
    "SensorSpec",
    "modified_verdict",
    "partition_id",
    "partition_verdict",
    "sense",
    "sensor_spec",
    "table_verdict",
]

#: The custom field holding a sensor's settings: ``{"kind": ..., "table": ...}``.
SENSOR_KEY = "Sensor"
KINDS = ("table_exists", "partition_exists", "modified_after")
#: Time partitioning type → the partition id's digits (``table$20240101`` for DAY).
PARTITION_FORMATS: dict[str, tuple[int, str]] = {
    "HOUR": (10, "%Y%m%d%H"),
    "DAY": (8, "%Y%m%d"),
    "MONTH": (6, "%Y%m"),
    "YEAR": (4, "%Y"),
}
#: Partition ids every partitioned table may have.
SPECIAL_PARTITIONS = frozenset({"__NULL__", "__UNPARTITIONED__"})
#: Pages of the partitions meta-table read per poke (a table has at most 10,000 partitions).
MAX_PARTITION_PAGES = 20
_TABLE_PATH = re.compile(r"^(?:(?P<project>[A-Za-z0-9:._-]+)\.)?(?P<dataset>[A-Za-z0-9_]+)\.(?P<table>[^.$`/\s]+)$")


@dataclasses.dataclass(frozen=True)
class SensorSpec:
    """One sensor, decided: what it waits for, on which table; ``after`` in epoch milliseconds."""

    task: str
    kind: str
    project: str
    dataset: str
    table: str
    partition: str | None = None
    after_ms: int | None = None
    #: Epoch seconds after which the sensor gives up (from the task's timeout).
    deadline: float | None = None

    @property
    def table_name(self) -> str:
        return f"{self.project}:{self.dataset}.{self.table}"

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SensorSpec:
        """Raises ``ValueError``/``TypeError`` for anything :meth:`to_json` did not write."""
        known = {field.name for field in dataclasses.fields(cls)}
        spec = cls(**{k: v for k, v in raw.items() if k in known})
        if spec.kind not in KINDS or not all(
            isinstance(v, str) for v in (spec.task, spec.project, spec.dataset, spec.table)
        ):
            raise ValueError("not a sensor spec")
        return spec


def partition_id(value: Any, where: str) -> str:
    """A partition id as BigQuery writes it: text as given (``20240101``, ``2024010113``, ``__NULL__``), a
    ``date`` as ``YYYYMMDD``, ``YYYY-MM-DD`` text as ``YYYYMMDD``; raises :class:`InvalidTaskError` otherwise."""
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value.strftime("%Y%m%d")
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        return value.strip().replace("-", "")
    if isinstance(value, str) and (re.fullmatch(r"-?\d{1,19}", value.strip()) or value in SPECIAL_PARTITIONS):
        return value.strip()
    raise InvalidTaskError(f"{where} is not a partition id; expected e.g. '20240101', '2024-01-01' or '__NULL__'")


def _epoch_ms(value: Any, where: str) -> int:
    if isinstance(value, datetime.datetime):
        aware = value if value.utcoffset() is not None else value.replace(tzinfo=datetime.timezone.utc)
        return int(aware.timestamp() * 1000)
    if isinstance(value, str):
        try:
            return _epoch_ms(datetime.datetime.fromisoformat(value), where)
        except ValueError:
            pass
    raise InvalidTaskError(f"{where} is not a time; expected a datetime (naive means UTC)")


def sensor_spec(
    custom: Mapping[str, Any], values: Mapping[str, Any], task: str, now: float, timeout_seconds: float | None
) -> SensorSpec:
    """Decide a sensor from its custom fields (``ProjectID`` and :data:`SENSOR_KEY`) and its input values
    (``partition``, ``after``): every mistake is an :class:`InvalidTaskError` naming the task, before any call."""
    with about_task(task):
        project = require_project(custom.get("ProjectID"), task).strip()
        settings = custom.get(SENSOR_KEY)
        if not isinstance(settings, Mapping) or settings.get("kind") not in KINDS:
            raise InvalidTaskError(f"the sensor's {SENSOR_KEY} must name a kind among {', '.join(KINDS)}")
        kind = str(settings["kind"])
        match = _TABLE_PATH.match(str(settings.get("table") or ""))
        if match is None:
            raise InvalidTaskError(
                f"sensor table {str(settings.get('table'))[:200]!r} is not a table path; expected 'dataset.table' "
                "or 'project.dataset.table' (no decorator)"
            )
        partition = after_ms = None
        if kind == "partition_exists":
            partition = partition_id(values.get("partition", settings.get("partition")), "input 'partition'")
        if kind == "modified_after":
            after_ms = _epoch_ms(values.get("after", settings.get("after")), "input 'after'")
        return SensorSpec(
            task=task,
            kind=kind,
            project=match.group("project") or project,
            dataset=match.group("dataset"),
            table=match.group("table"),
            partition=partition,
            after_ms=after_ms,
            deadline=now + timeout_seconds if timeout_seconds else None,
        )


# --- verdicts -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Sensed:
    """One poke's verdict: whether the condition holds, a message for people, and custom info."""

    met: bool
    message: str
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


def _when(epoch_ms: Any) -> str | None:
    try:
        moment = datetime.datetime.fromtimestamp(int(epoch_ms) / 1000, datetime.timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None
    return moment.isoformat()


def table_verdict(spec: SensorSpec, table: Mapping[str, Any] | None) -> Sensed:
    """Table exists: ``table`` is the ``tables.get`` resource, ``None`` after a 404."""
    info = {"table": spec.table_name, "exists": table is not None}
    if table is None:
        return Sensed(False, f"table {spec.table_name} does not exist yet", info)
    return Sensed(True, f"table {spec.table_name} exists", info)


def modified_verdict(spec: SensorSpec, table: Mapping[str, Any] | None) -> Sensed:
    """Modified after ``spec.after_ms``: by the table's ``lastModifiedTime`` (missing table: not yet)."""
    info: dict[str, Any] = {"table": spec.table_name, "exists": table is not None, "after": _when(spec.after_ms)}
    if table is None:
        return Sensed(False, f"table {spec.table_name} does not exist yet", info)
    modified = table.get("lastModifiedTime")
    info["last_modified"] = _when(modified)
    if modified is None:
        raise PermanentError(f"BigQuery reported no lastModifiedTime for table {spec.table_name}", task=spec.task)
    if int(modified) > (spec.after_ms or 0):
        return Sensed(True, f"table {spec.table_name} was modified at {info['last_modified']}", info)
    return Sensed(False, f"table {spec.table_name} was last modified at {info['last_modified']}", info)


def _partitioning(spec: SensorSpec, table: Mapping[str, Any]) -> str:
    """The table's partitioning (``DAY``…, or ``RANGE``); a table that has none can never have the partition."""
    time_partitioning = table.get("timePartitioning")
    if time_partitioning:
        return str(time_partitioning.get("type") or "DAY").upper()
    if table.get("rangePartitioning"):
        return "RANGE"
    raise PermanentError(
        f"table {spec.table_name} is not partitioned, so partition {spec.partition} can never appear", task=spec.task
    )


def partition_verdict(spec: SensorSpec, table: Mapping[str, Any] | None, partitions: Sequence[str] | None) -> Sensed:
    """Partition exists: ``table`` from ``tables.get`` (``None``: missing), ``partitions`` the ids the table has
    (``None`` when the table is missing). A partition id the table's partitioning cannot have is refused."""
    info: dict[str, Any] = {"table": spec.table_name, "exists": table is not None, "partition": spec.partition}
    if table is None:
        return Sensed(False, f"table {spec.table_name} does not exist yet", info)
    kind = _partitioning(spec, table)
    wanted = spec.partition or ""
    digits = PARTITION_FORMATS.get(kind, (0, ""))[0]
    if wanted not in SPECIAL_PARTITIONS and digits and not re.fullmatch(rf"\d{{{digits}}}", wanted):
        raise PermanentError(
            f"partition {wanted!r} cannot exist in {spec.table_name}, which is partitioned by {kind}; expected "
            f"{digits} digits ({PARTITION_FORMATS[kind][1]})",
            task=spec.task,
        )
    info["partitions_seen"] = len(partitions or [])
    if wanted in (partitions or []):
        return Sensed(True, f"partition {wanted} of {spec.table_name} exists", info)
    return Sensed(False, f"partition {wanted} of {spec.table_name} does not exist yet", info)


# --- calls ----------------------------------------------------------------------------------------------------


async def _table(api: Any, spec: SensorSpec, table: str | None = None) -> dict[str, Any] | None:
    try:
        return dict(await api.table_metadata(spec.project, spec.dataset, table or spec.table))
    except api_exceptions.NotFound:
        return None


async def _partition_ids(api: Any, spec: SensorSpec) -> list[str]:
    """The partition ids the ``$__PARTITIONS_SUMMARY__`` meta-table lists (``tabledata.list``, free)."""
    meta_table = f"{spec.table}$__PARTITIONS_SUMMARY__"
    ids: list[str] = []
    token: str | None = None
    for _ in range(MAX_PARTITION_PAGES):
        try:
            page = await api.table_rows(spec.project, spec.dataset, meta_table, "partition_id", token)
        except api_exceptions.NotFound:
            raise PermanentError(
                f"BigQuery does not list the partitions of {spec.table_name} (its __PARTITIONS_SUMMARY__ "
                "meta-table was not found)",
                task=spec.task,
            ) from None
        ids += [str(((row.get("f") or [{}])[0]).get("v")) for row in page.get("rows") or []]
        token = page.get("pageToken")
        if not token:
            break
    return ids


async def sense(api: Any, spec: SensorSpec) -> Sensed:
    """One poke through ``api`` (:class:`~.jobs_api.JobsApi`). Raises :class:`PermanentError` when the condition
    can never hold, and :class:`~.errors.TransientError` when BigQuery stayed unavailable (poke again)."""
    table = await _table(api, spec)
    if spec.kind == "table_exists":
        return table_verdict(spec, table)
    if spec.kind == "modified_after":
        return modified_verdict(spec, table)
    if table is not None:
        _partitioning(spec, table)  # refuse an unpartitioned table before reading the meta-table
    return partition_verdict(spec, table, await _partition_ids(api, spec) if table is not None else None)
