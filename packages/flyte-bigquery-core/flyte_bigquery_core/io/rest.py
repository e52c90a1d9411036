"""Read a table through the REST API (``tabledata.list``) into Arrow, pages fetched in parallel.

Why not ``list_rows(...).to_arrow()``: google-cloud-bigquery fetches one page after the other (each waits for
the previous page's token) and converts every cell to a Python object before Arrow sees it. Here the row
count that ``tables.get`` reported is split into ranges of rows read concurrently with ``startIndex`` (each
range page by page, a page ending short of ``maxResults`` continuing where it stopped, the last range until
the server has no more); a page's JSON is parsed by pyarrow's JSON reader when every column is a scalar
(else by :func:`json.loads`), and each column's text is converted by one Arrow cast (:func:`.arrow_types.conform`).

Only top-level columns are requested: the real ``tabledata.list`` accepts sub-field paths in ``selectedFields``
but a local BigQuery drops them, so RECORDs arrive whole and the cast to the declared fields prunes them.
Timestamps are asked for as integer microseconds (``formatOptions.useInt64Timestamp``), as the library does.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery
from google.cloud.bigquery.retry import DEFAULT_RETRY

from .arrow_types import conform, target_schema
from .fields import Projection
from .parallel import in_order
from .uri import TableId

__all__ = ["RANGE_ROWS", "rest_batches"]

#: Rows per concurrently read range, and the most asked of one page (BigQuery also caps a page at ~10 MB).
RANGE_ROWS = 50_000
_TIMEOUT = 120.0

_Convert = Callable[[Any], Any]


def _bytes(value: str) -> bytes:
    return base64.b64decode(value)


#: BigQuery type → (Arrow type the JSON text is turned into, Python conversion of the text or None). The
#: rest is Arrow casts from the text (:data:`.arrow_types._SCALARS`).
_WIRE: dict[str, tuple[pa.DataType, _Convert | None]] = {
    "TIMESTAMP": (pa.int64(), int),  # integer microseconds, cast to a timestamp by conform
    "BYTES": (pa.binary(), _bytes),
    "TIME": (pa.time64("us"), dt.time.fromisoformat),
}


def _kind(field: bigquery.SchemaField) -> str:
    return (field.field_type or "").upper()


def _repeated(field: bigquery.SchemaField) -> bool:
    return (field.mode or "").upper() == "REPEATED"


def _nested(field: bigquery.SchemaField) -> bool:
    return _repeated(field) or _kind(field) in ("RECORD", "STRUCT")


def _value_wire(field: bigquery.SchemaField) -> pa.DataType:
    if _kind(field) in ("RECORD", "STRUCT"):
        return pa.struct([pa.field(child.name, _wire_type(child)) for child in field.fields])
    return _WIRE.get(_kind(field), (pa.string(), None))[0]


def _wire_type(field: bigquery.SchemaField) -> pa.DataType:
    """The Arrow type a column is built with from its JSON (mostly text; conform casts it to its real type)."""
    return pa.list_(_value_wire(field)) if _repeated(field) else _value_wire(field)


def _value_converter(field: bigquery.SchemaField) -> _Convert | None:
    if _kind(field) in ("RECORD", "STRUCT"):
        children = [(child.name, _converter(child)) for child in field.fields]

        def record(value: dict[str, Any]) -> dict[str, Any]:
            cells = value["f"]
            return {
                name: cell["v"] if convert is None or cell["v"] is None else convert(cell["v"])
                for (name, convert), cell in zip(children, cells, strict=True)
            }

        return record
    return _WIRE.get(_kind(field), (pa.string(), None))[1]


def _converter(field: bigquery.SchemaField) -> _Convert | None:
    """The Python conversion of a cell's ``v`` into a value of :func:`_wire_type`, None when it is the text."""
    item = _value_converter(field)
    if not _repeated(field):
        return item
    if item is None:
        return lambda values: [entry["v"] for entry in values]
    convert = item
    return lambda values: [None if entry["v"] is None else convert(entry["v"]) for entry in values]


_ROWS_SCHEMA = pa.schema(
    [
        ("rows", pa.list_(pa.struct([("f", pa.list_(pa.struct([("v", pa.string())])))]))),
        ("pageToken", pa.string()),
    ]
)


@dataclass(frozen=True)
class _Page:
    batch: pa.RecordBatch
    more: bool  # the server has rows after this page


class _Decoder:
    """Turns one ``tabledata.list`` response into a record batch of the wire types."""

    def __init__(self, fields: Sequence[bigquery.SchemaField]) -> None:
        self.schema = pa.schema([pa.field(field.name, _wire_type(field)) for field in fields])
        self._converters = [_converter(field) for field in fields]
        self._flat = not any(_nested(field) for field in fields)

    def __call__(self, body: bytes) -> _Page:
        return self._arrow(body) if self._flat else self._python(json.loads(body))

    def _column(self, index: int, texts: list[Any]) -> pa.Array:
        convert = self._converters[index]
        if convert is not None:
            texts = [None if text is None else convert(text) for text in texts]
        return _null_under_nulls(pa.array(texts, self.schema.field(index).type))

    def _python(self, response: dict[str, Any]) -> _Page:
        rows = response.get("rows") or []
        widths = {len(row["f"]) for row in rows} - {len(self.schema)}
        if widths:
            raise ValueError(f"tabledata.list sent rows of {sorted(widths)} cells for {len(self.schema)} columns")
        columns = [self._column(i, [row["f"][i]["v"] for row in rows]) for i in range(len(self.schema))]
        return _Page(pa.RecordBatch.from_arrays(columns, schema=self.schema), bool(response.get("pageToken")))

    def _arrow(self, body: bytes) -> _Page:
        """pyarrow's JSON reader on the response (one object: JSON text holds no raw line breaks, so they are
        only whitespace and become spaces), each column then picked out of the row-major cells."""
        text = body.replace(b"\n", b" ").replace(b"\r", b" ")
        options = pa_json.ReadOptions(block_size=len(text) + 1, use_threads=False)
        parse = pa_json.ParseOptions(explicit_schema=_ROWS_SCHEMA, unexpected_field_behavior="ignore")
        response = pa_json.read_json(io.BytesIO(text), read_options=options, parse_options=parse)
        more = response.column("pageToken")[0].is_valid
        records = pc.struct_field(pc.list_flatten(response.column("rows").combine_chunks()), "f")
        if len(records) == 0:
            return _Page(_empty(self.schema), more)
        widths = pc.min_max(pc.list_value_length(records))
        if widths["min"].as_py() != len(self.schema) or widths["max"].as_py() != len(self.schema):
            return self._python(json.loads(body))  # not the shape the schema says: the general path checks it
        grid = pa.FixedSizeListArray.from_arrays(pc.struct_field(pc.list_flatten(records), "v"), len(self.schema))
        columns = [self._text_column(i, pc.list_element(grid, i)) for i in range(len(self.schema))]
        return _Page(pa.RecordBatch.from_arrays(columns, schema=self.schema), more)

    def _text_column(self, index: int, texts: pa.Array) -> pa.Array:
        wire = self.schema.field(index).type
        if wire.equals(pa.string()):
            return texts
        if self._converters[index] is None or pa.types.is_integer(wire):
            return texts.cast(wire)
        return self._column(index, texts.to_pylist())


def _null_under_nulls(array: pa.Array) -> pa.Array:
    """``array`` with every value under a NULL struct NULL too: pyarrow fills them with ``""``, which the cast
    from text would try to parse."""
    mask = array.is_null() if array.null_count else None
    if pa.types.is_struct(array.type):
        children = [_null_under_nulls(child) for child in array.flatten()]
        return pa.StructArray.from_arrays(children, fields=list(array.type), mask=mask)
    if pa.types.is_list(array.type):
        values = _null_under_nulls(array.values)
        return pa.ListArray.from_arrays(array.offsets, values, type=array.type, mask=mask)
    return array


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], field.type) for field in schema], schema=schema)


def _fetch(client: bigquery.Client, table: TableId, names: str, start: int, count: int) -> bytes:
    """One ``tabledata.list`` page as received, retried as the library retries it."""
    path = f"/projects/{table.project}/datasets/{table.dataset}/tables/{table.table}/data"
    params = {
        "startIndex": str(start),
        "maxResults": str(count),
        "selectedFields": names,
        "formatOptions.useInt64Timestamp": "true",
        "prettyPrint": "false",
    }
    url = client._connection.build_api_url(path=path, query_params=params)
    headers = {"User-Agent": client._connection.user_agent}

    def get() -> bytes:
        response = client._http.request("GET", url, headers=headers, timeout=_TIMEOUT)
        if response.status_code >= 400:
            raise api_exceptions.from_http_response(response)
        return bytes(response.content)

    return bytes(DEFAULT_RETRY(get)())


def _rows(
    client: bigquery.Client, table: TableId, names: str, decode: _Decoder, start: int, end: int | None
) -> Iterator[pa.RecordBatch]:
    """Rows ``[start, end)`` page by page (``end=None``: to the end of the table)."""
    while end is None or start < end:
        count = RANGE_ROWS if end is None else min(RANGE_ROWS, end - start)
        page = decode(_fetch(client, table, names, start, count))
        rows = page.batch.num_rows
        if rows:
            yield page.batch
        start += rows
        if rows == 0 or (end is None and not page.more):
            return


def rest_batches(
    client: bigquery.Client,
    table: TableId,
    projection: Projection,
    num_rows: int | None,
    workers: int,
    prefetch: int | None,
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """``(schema, batches)`` of ``table``'s ``projection``: ranges of :data:`RANGE_ROWS` rows read by up to
    ``workers`` threads, batches in table order, each conformed to the projection's Arrow types."""
    decode = _Decoder(projection.whole)
    ordered = pa.schema([decode.schema.field(name) for name in projection.names])
    target = target_schema(ordered, projection.fields)
    names = ",".join(field.name for field in projection.whole)
    starts = list(range(0, num_rows or 0, RANGE_ROWS)) or [0]
    ends: list[int | None] = [*starts[1:], None]

    def producer(start: int, end: int | None) -> Callable[[], Iterable[pa.RecordBatch]]:
        return lambda: (
            conform(batch.select(projection.names), target) for batch in _rows(client, table, names, decode, start, end)
        )

    producers = [producer(start, end) for start, end in zip(starts, ends, strict=True)]
    return target, in_order(producers, workers=min(workers, len(producers)), prefetch=prefetch)
