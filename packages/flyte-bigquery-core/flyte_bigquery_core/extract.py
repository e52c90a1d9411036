"""Extract jobs: the typed spec an extract task records (:class:`ExtractSpec`) and the ``configuration.extract``
it becomes for one run (:func:`extract_configuration`). Pure: every check happens here, before submission.

A table (the spec's, or the task's ``source`` input: a query task's ``bq://`` result) is written as files under
a ``gs://`` folder, ``part-*`` with the format's extension (BigQuery numbers the files), in Parquet, Avro, CSV or
newline-delimited JSON, compressed as each format allows. Source:
https://cloud.google.com/bigquery/docs/exporting-data#export_formats_and_compression_types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidTaskError
from .table_refs import parse_table

__all__ = ["EXTRACT_COMPRESSION", "EXTRACT_EXTENSIONS", "ExtractSpec", "extract_configuration"]

#: Destination format → the compressions BigQuery writes it with.
EXTRACT_COMPRESSION: dict[str, tuple[str, ...]] = {
    "PARQUET": ("NONE", "SNAPPY", "GZIP", "ZSTD"),
    "AVRO": ("NONE", "DEFLATE", "SNAPPY"),
    "CSV": ("NONE", "GZIP"),
    "NEWLINE_DELIMITED_JSON": ("NONE", "GZIP"),
}
#: Destination format → file extension (a gzip-compressed text file also ends in ``.gz``).
EXTRACT_EXTENSIONS: dict[str, str] = {
    "PARQUET": ".parquet",
    "AVRO": ".avro",
    "CSV": ".csv",
    "NEWLINE_DELIMITED_JSON": ".json",
}
_FORMAT_ALIASES = {
    "NDJSON": "NEWLINE_DELIMITED_JSON",
    "JSONL": "NEWLINE_DELIMITED_JSON",
    "JSON": "NEWLINE_DELIMITED_JSON",
}
#: The files of one extract: BigQuery replaces the ``*`` with a 12-digit number per file.
FILE_PATTERN = "part-*"


@dataclass(frozen=True)
class ExtractSpec:
    """What an extract task asks for: the folder (``gs://bucket/path``) the files go to, their format and
    compression, CSV options, and the table (``None``: the task's ``source`` input)."""

    destination: str
    destination_format: str = "PARQUET"
    compression: str = "NONE"
    source: str | None = None
    print_header: bool | None = None
    field_delimiter: str | None = None

    def to_api_repr(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "destination": self.destination,
            "destinationFormat": self.destination_format,
            "compression": self.compression,
        }
        optional = {"source": self.source, "printHeader": self.print_header, "fieldDelimiter": self.field_delimiter}
        return {**out, **{k: v for k, v in optional.items() if v is not None}}

    @classmethod
    def from_api_repr(cls, data: Any) -> ExtractSpec:
        if not isinstance(data, Mapping) or not isinstance(data.get("destination"), str):
            raise InvalidTaskError("the task template's ExtractJob is missing or has no destination folder")
        return cls(
            destination=data["destination"],
            destination_format=str(data.get("destinationFormat") or "PARQUET"),
            compression=str(data.get("compression") or "NONE"),
            source=data.get("source"),
            print_header=data.get("printHeader"),
            field_delimiter=data.get("fieldDelimiter"),
        )


def extract_configuration(spec: ExtractSpec, source: Any, project: str) -> dict[str, Any]:
    """``configuration.extract`` for one run; ``source`` is the value of the task's ``source`` input (a table
    name or ``bq://`` URI), ``None`` when it has none. Raises :class:`InvalidTaskError` naming the setting."""
    kind = spec.destination_format.upper()
    kind = _FORMAT_ALIASES.get(kind, kind)
    if kind not in EXTRACT_COMPRESSION:
        raise InvalidTaskError(
            f"ExtractJob.destination_format is {spec.destination_format!r}; expected one of "
            f"{', '.join(EXTRACT_COMPRESSION)}"
        )
    compression = spec.compression.upper()
    if compression not in EXTRACT_COMPRESSION[kind]:
        raise InvalidTaskError(
            f"ExtractJob.compression {spec.compression!r} is not available for {kind}; expected one of "
            f"{', '.join(EXTRACT_COMPRESSION[kind])}"
        )
    folder = spec.destination.rstrip("/")
    if not folder.startswith("gs://") or "/" not in folder.removeprefix("gs://") or "*" in folder:
        raise InvalidTaskError(
            "ExtractJob.destination must be a folder in Cloud Storage such as gs://bucket/exports/daily "
            "(a bucket and a path, no '*')"
        )
    if source is None and spec.source is None:
        raise InvalidTaskError("the task has no 'source' input and ExtractJob.source is not set; give one")
    what = "input 'source'" if source is not None else "ExtractJob.source"
    table = parse_table(source if source is not None else spec.source, project, what)
    if kind != "CSV" and (spec.print_header is not None or spec.field_delimiter is not None):
        raise InvalidTaskError(f"ExtractJob: print_header and field_delimiter are CSV options, not {kind}")
    extension = EXTRACT_EXTENSIONS[kind] + (".gz" if compression == "GZIP" and kind != "PARQUET" else "")
    extract: dict[str, Any] = {
        "sourceTable": table.to_api_repr(),
        "destinationUris": [f"{folder}/{FILE_PATTERN}{extension}"],
        "destinationFormat": kind,
        "compression": compression,
    }
    if spec.print_header is not None:
        extract["printHeader"] = spec.print_header
    if spec.field_delimiter is not None:
        extract["fieldDelimiter"] = spec.field_delimiter
    if kind == "AVRO":
        extract["useAvroLogicalTypes"] = True
    return extract
