"""Load jobs: the typed spec a load task records (:class:`LoadSpec`) and the ``configuration.load`` it becomes
for one run (:func:`load_configuration`). Pure: every check happens here, before anything is submitted.

What a spec can say: the destination table (a partition of it with ``table$20240101``: with ``WRITE_TRUNCATE``
that partition is replaced atomically), the source format (Parquet, CSV, newline-delimited JSON, Avro), an
explicit schema or autodetection, the write and create dispositions, and the layout of a table the job creates
(time or integer-range partitioning, clustering). Source: https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationLoad.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import InvalidTaskError
from .partitioning import RangePartitioning, TimePartitioning, check_decorator, check_layout, partition_decorator
from .sources import SourceRef, source_uris
from .table_refs import parse_table

__all__ = [
    "CREATE_DISPOSITIONS",
    "LOAD_FORMATS",
    "LOAD_WRITE_DISPOSITIONS",
    "SCHEMA_TYPES",
    "LoadSpec",
    "check_choice",
    "load_configuration",
]

#: Accepted spellings of each source format → BigQuery's ``sourceFormat``.
LOAD_FORMATS: dict[str, str] = {
    "PARQUET": "PARQUET",
    "CSV": "CSV",
    "NEWLINE_DELIMITED_JSON": "NEWLINE_DELIMITED_JSON",
    "NDJSON": "NEWLINE_DELIMITED_JSON",
    "JSONL": "NEWLINE_DELIMITED_JSON",
    "JSON": "NEWLINE_DELIMITED_JSON",
    "AVRO": "AVRO",
}
#: Formats that carry their own schema: autodetection is for the others.
_SELF_DESCRIBING = frozenset({"PARQUET", "AVRO"})
LOAD_WRITE_DISPOSITIONS = ("WRITE_APPEND", "WRITE_TRUNCATE", "WRITE_EMPTY")
CREATE_DISPOSITIONS = ("CREATE_IF_NEEDED", "CREATE_NEVER")
#: Column types of a table schema, as REST spells them (legacy names included).
SCHEMA_TYPES = frozenset(
    {
        *("STRING", "BYTES", "INTEGER", "INT64", "FLOAT", "FLOAT64", "NUMERIC", "BIGNUMERIC", "BOOLEAN", "BOOL"),
        *("TIMESTAMP", "DATE", "TIME", "DATETIME", "GEOGRAPHY", "JSON", "RECORD", "STRUCT", "INTERVAL", "RANGE"),
    }
)
_MODES = frozenset({"NULLABLE", "REQUIRED", "REPEATED"})


@dataclass(frozen=True)
class LoadSpec:
    """What a load task asks for, independent of any one run. ``schema`` is REST ``TableFieldSchema`` dicts
    (``None``: the files' own schema for Parquet and Avro, autodetected for CSV and JSON unless
    ``autodetect=False``); ``source_uris`` are fixed ``gs://`` URIs, used when the task has no ``source`` input."""

    destination: str
    source_format: str = "PARQUET"
    schema: tuple[Mapping[str, Any], ...] | None = None
    autodetect: bool | None = None
    write_disposition: str = "WRITE_APPEND"
    create_disposition: str | None = None
    time_partitioning: TimePartitioning | None = None
    range_partitioning: RangePartitioning | None = None
    clustering: tuple[str, ...] | None = None
    skip_leading_rows: int | None = None
    field_delimiter: str | None = None
    source_uris: tuple[str, ...] = field(default_factory=tuple)

    def to_api_repr(self) -> dict[str, Any]:
        """The spec as a task template records it (JSON)."""
        out: dict[str, Any] = {"destination": self.destination, "sourceFormat": self.source_format}
        optional = {
            "schema": list(map(dict, self.schema)) if self.schema is not None else None,
            "autodetect": self.autodetect,
            "writeDisposition": self.write_disposition,
            "createDisposition": self.create_disposition,
            "timePartitioning": self.time_partitioning.to_api_repr() if self.time_partitioning else None,
            "rangePartitioning": self.range_partitioning.to_api_repr() if self.range_partitioning else None,
            "clustering": list(self.clustering) if self.clustering is not None else None,
            "skipLeadingRows": self.skip_leading_rows,
            "fieldDelimiter": self.field_delimiter,
            "sourceUris": list(self.source_uris) or None,
        }
        return {**out, **{k: v for k, v in optional.items() if v is not None}}

    @classmethod
    def from_api_repr(cls, data: Any) -> LoadSpec:
        """Read a recorded spec back; :class:`InvalidTaskError` for one that is not a load spec."""
        if not isinstance(data, Mapping) or not isinstance(data.get("destination"), str):
            raise InvalidTaskError("the task template's LoadJob is missing or has no destination table")
        time, ranged = data.get("timePartitioning"), data.get("rangePartitioning")
        rows = data.get("skipLeadingRows")
        try:
            return cls(
                destination=data["destination"],
                source_format=str(data.get("sourceFormat") or "PARQUET"),
                schema=tuple(data["schema"]) if data.get("schema") is not None else None,
                autodetect=data.get("autodetect"),
                write_disposition=str(data.get("writeDisposition") or "WRITE_APPEND"),
                create_disposition=data.get("createDisposition"),
                time_partitioning=TimePartitioning.from_api_repr(time) if time else None,
                range_partitioning=RangePartitioning.from_api_repr(ranged) if ranged else None,
                clustering=tuple(data["clustering"]) if data.get("clustering") is not None else None,
                skip_leading_rows=int(rows) if rows is not None else None,
                field_delimiter=data.get("fieldDelimiter"),
                source_uris=tuple(data.get("sourceUris") or ()),
            )
        except (TypeError, ValueError):
            raise InvalidTaskError("the task template's LoadJob is malformed") from None


def _schema_fields(schema: Sequence[Mapping[str, Any]], where: str) -> list[dict[str, Any]]:
    fields = []
    for number, column in enumerate(schema, 1):
        if not isinstance(column, Mapping) or not isinstance(column.get("name"), str) or not column["name"]:
            raise InvalidTaskError(f"{where}: column {number} has no name")
        kind = str(column.get("type") or "").upper()
        if kind not in SCHEMA_TYPES:
            raise InvalidTaskError(
                f"{where}: column {column['name']!r} has type {kind or 'none'!r}; expected one of "
                f"{', '.join(sorted(SCHEMA_TYPES))}"
            )
        mode = str(column.get("mode") or "NULLABLE").upper()
        if mode not in _MODES:
            raise InvalidTaskError(f"{where}: column {column['name']!r} has mode {mode!r}; expected {sorted(_MODES)}")
        nested = column.get("fields")
        fields.append(
            {
                **column,
                "type": kind,
                "mode": mode,
                **({"fields": _schema_fields(nested, where)} if nested else {}),
            }
        )
    return fields


def check_choice(value: str | None, allowed: Sequence[str], what: str) -> str | None:
    """``value`` if it is ``None`` or one of ``allowed``; else :class:`InvalidTaskError` naming ``what``."""
    if value is not None and value not in allowed:
        raise InvalidTaskError(f"{what} is {value!r}; expected one of {', '.join(allowed)}")
    return value


def load_configuration(spec: LoadSpec, source: Any, project: str, partition: Any = None) -> dict[str, Any]:
    """``configuration.load`` for one run: ``source`` is the value of the task's ``source`` input (``None``
    when it has none: the spec's ``source_uris``), ``partition`` that of its ``partition`` input (``None``: none;
    else the destination partition of this run, :func:`~.partitioning.partition_decorator`). Raises
    :class:`InvalidTaskError` naming the setting or input."""
    source_format = LOAD_FORMATS.get(spec.source_format.upper())
    if source_format is None:
        raise InvalidTaskError(
            f"LoadJob.source_format is {spec.source_format!r}; "
            "expected one of PARQUET, CSV, NEWLINE_DELIMITED_JSON, AVRO"
        )
    destination = parse_table(spec.destination, project, "LoadJob.destination")
    if partition is not None:
        if destination.decorator:
            raise InvalidTaskError(
                f"LoadJob.destination names partition ${destination.decorator} and the task has a 'partition' "
                "input; name the table only, the input picks the partition"
            )
        decorator = partition_decorator(partition, spec.time_partitioning, spec.range_partitioning, "input 'partition'")
        destination = replace(destination, decorator=decorator)
    elif destination.decorator:
        check_decorator(destination.decorator, spec.time_partitioning, spec.range_partitioning, "LoadJob.destination")
    schema = _schema_fields(spec.schema, "LoadJob.schema") if spec.schema is not None else None
    check_layout(schema, spec.time_partitioning, spec.range_partitioning, spec.clustering, "LoadJob")
    if source is None:
        if not spec.source_uris:
            raise InvalidTaskError("the task has no 'source' input and LoadJob.source_uris is empty; give one")
        uris = source_uris(list(spec.source_uris), "LoadJob.source_uris")
    else:
        uris = source_uris(source, "input 'source'")
        dataset_format = source.format if isinstance(source, SourceRef) else None
        if dataset_format and dataset_format.upper() != source_format:
            raise InvalidTaskError(
                f"input 'source' is a structured dataset in {dataset_format} but the task loads {source_format}; "
                "set source_format to match"
            )
    load: dict[str, Any] = {
        "sourceUris": uris,
        "sourceFormat": source_format,
        "destinationTable": destination.to_api_repr(),
        "writeDisposition": check_choice(spec.write_disposition, LOAD_WRITE_DISPOSITIONS, "LoadJob.write_disposition"),
    }
    if check_choice(spec.create_disposition, CREATE_DISPOSITIONS, "LoadJob.create_disposition"):
        load["createDisposition"] = spec.create_disposition
    if schema is not None:
        load["schema"] = {"fields": schema}
    if spec.autodetect or (spec.autodetect is None and schema is None and source_format not in _SELF_DESCRIBING):
        load["autodetect"] = True
    if spec.time_partitioning is not None:
        load["timePartitioning"] = spec.time_partitioning.to_api_repr()
    if spec.range_partitioning is not None:
        load["rangePartitioning"] = spec.range_partitioning.to_api_repr()
    if spec.clustering:
        load["clustering"] = {"fields": list(spec.clustering)}
    if source_format == "CSV":
        if spec.skip_leading_rows is not None:
            load["skipLeadingRows"] = spec.skip_leading_rows
        if spec.field_delimiter is not None:
            load["fieldDelimiter"] = spec.field_delimiter
    elif spec.skip_leading_rows is not None or spec.field_delimiter is not None:
        raise InvalidTaskError(f"LoadJob: skip_leading_rows and field_delimiter are CSV options, not {source_format}")
    return load
