"""One REST result row → plain Python values, column by column, as the result's schema types them.

``jobs.getQueryResults`` and ``tabledata.list`` send every cell as text (``{"f": [{"v": "42"}, …]}``) beside the
schema (https://cloud.google.com/bigquery/docs/reference/rest/v2/tabledata#TableRow); :data:`DECODERS` turns
each scalar type's text into its Python value, RECORDs into dicts and REPEATED fields into lists. Timestamps are
asked for as integer microseconds (``formatOptions.useInt64Timestamp``); the older float-seconds text is read
too. Types with no Python counterpart here (GEOGRAPHY, RANGE) stay text. Nothing is read from the value into a
message: errors name the column and its type only.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import PermanentError

__all__ = ["DECODERS", "Column", "columns_of", "decode_row", "parse_interval"]

_UTC = datetime.timezone.utc
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=_UTC)
#: BigQuery's canonical INTERVAL text: ``Y-M D H:M:S[.F]``, each part signed.
_INTERVAL = re.compile(r"^(-?)(\d+)-(\d+) (-?\d+) (-?)(\d+):(\d+):(\d+)(?:\.(\d{1,9}))?$")


def _timestamp(text: str) -> datetime.datetime:
    """Integer microseconds since the epoch (``useInt64Timestamp``), or float seconds (the default form)."""
    if re.fullmatch(r"-?\d+", text):
        return _EPOCH + datetime.timedelta(microseconds=int(text))
    seconds = decimal.Decimal(text)
    return _EPOCH + datetime.timedelta(microseconds=int(seconds * 1_000_000))


def parse_interval(text: str) -> tuple[int, datetime.timedelta]:
    """``(months, rest)`` of an INTERVAL's canonical text: months cannot be a fixed duration."""
    match = _INTERVAL.match(text.strip())
    if match is None:
        raise ValueError("not BigQuery's INTERVAL text")
    sign, years, months, days, time_sign, hours, minutes, seconds, fraction = match.groups()
    month_total = (int(years) * 12 + int(months)) * (-1 if sign else 1)
    micros = int(((fraction or "") + "000000")[:6])
    rest = datetime.timedelta(hours=int(hours), minutes=int(minutes), seconds=int(seconds), microseconds=micros)
    return month_total, datetime.timedelta(days=int(days)) + (-rest if time_sign else rest)


def _boolean(text: str) -> bool:
    return text.lower() == "true"


#: A REST type name (legacy and standard spellings) → its cell text's Python value.
DECODERS: dict[str, Callable[[str], Any]] = {
    "BOOLEAN": _boolean,
    "BOOL": _boolean,
    "INTEGER": int,
    "INT64": int,
    "FLOAT": float,
    "FLOAT64": float,
    "NUMERIC": decimal.Decimal,
    "BIGNUMERIC": decimal.Decimal,
    "STRING": str,
    "BYTES": base64.b64decode,
    "DATE": datetime.date.fromisoformat,
    "DATETIME": datetime.datetime.fromisoformat,
    "TIME": datetime.time.fromisoformat,
    "TIMESTAMP": _timestamp,
    "JSON": json.loads,
    "INTERVAL": str,  # kept as text: it may hold months, which no timedelta can (see parse_interval)
    "GEOGRAPHY": str,
    "RANGE": str,
}


class Column:
    """One schema field of a result (REST ``TableFieldSchema``): name, type, whether repeated, sub-fields."""

    __slots__ = ("fields", "name", "repeated", "type")

    def __init__(self, field: Mapping[str, Any]) -> None:
        self.name = str(field.get("name") or "")
        self.type = str(field.get("type") or "STRING").upper()
        self.repeated = str(field.get("mode") or "").upper() == "REPEATED"
        self.fields = [Column(sub) for sub in field.get("fields") or []]

    @property
    def is_record(self) -> bool:
        return self.type in ("RECORD", "STRUCT")

    def element(self) -> Column:
        """The column an item of this REPEATED column is (same name, type and sub-fields, not repeated)."""
        item = Column({"name": self.name, "type": self.type})
        item.fields = self.fields
        return item

    def describe(self) -> str:
        """``INTEGER``, ``ARRAY<DATE>``, ``RECORD`` — for messages."""
        return f"ARRAY<{self.type}>" if self.repeated else self.type

    def decode(self, cell: Any) -> Any:
        """The Python value of one cell's ``v`` (``None`` for NULL; a REPEATED field's NULL is ``[]``)."""
        if self.repeated:
            return [self._scalar(item.get("v") if isinstance(item, dict) else item) for item in cell or []]
        return self._scalar(cell)

    def _scalar(self, value: Any) -> Any:
        if value is None:
            return None
        if self.is_record:
            cells = value.get("f") or [] if isinstance(value, dict) else []
            return {sub.name: sub.decode(c.get("v")) for sub, c in zip(self.fields, cells, strict=False)}
        decoder = DECODERS.get(self.type, str)
        try:
            return decoder(value)
        except (ValueError, TypeError, ArithmeticError, json.JSONDecodeError) as e:
            raise PermanentError(
                f"column {self.name!r} ({self.type}) holds a value its type cannot have ({type(e).__name__})"
            ) from None


def columns_of(schema: Mapping[str, Any] | None) -> list[Column]:
    """The columns of a REST ``TableSchema`` (``{"fields": [...]}``)."""
    return [Column(field) for field in (schema or {}).get("fields") or []]


def decode_row(columns: Sequence[Column], row: Mapping[str, Any]) -> dict[str, Any]:
    """Column name → Python value of one REST row (``{"f": [{"v": ...}, ...]}``)."""
    cells = row.get("f") or []
    if len(cells) != len(columns):
        raise PermanentError(f"BigQuery sent a row of {len(cells)} cells for {len(columns)} columns")
    return {column.name: column.decode(cell.get("v")) for column, cell in zip(columns, cells, strict=True)}
