"""One Arrow type per BigQuery type, whichever API the rows came through.

Why: the Storage Read API sends the Arrow schema of whatever engine serves it. Real BigQuery sends the
documented types, but a local BigQuery sends its engine's (``SELECT 1`` arrives as ``int32``, ``BIGNUMERIC``
as ``decimal128(38, 18)``, list items are named ``l``), while the REST path builds its Arrow schema from the
table's BigQuery schema. Casting every batch to the types below makes a column's type depend on its
BigQuery type only, so a task sees the same dtypes on every path and against every server. The same cast
prunes a struct to the sub-fields its BigQuery field names (see :mod:`.fields`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
from google.cloud.bigquery import SchemaField

__all__ = ["arrow_type_for", "conform", "target_schema"]

_SCALARS: dict[str, pa.DataType] = {
    "INTEGER": pa.int64(),
    "INT64": pa.int64(),
    "FLOAT": pa.float64(),
    "FLOAT64": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "BOOL": pa.bool_(),
    "STRING": pa.string(),
    "BYTES": pa.binary(),
    "NUMERIC": pa.decimal128(38, 9),
    "DECIMAL": pa.decimal128(38, 9),
    "BIGNUMERIC": pa.decimal256(76, 38),
    "BIGDECIMAL": pa.decimal256(76, 38),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "DATETIME": pa.timestamp("us"),
    "DATE": pa.date32(),
    "TIME": pa.time64("us"),
    "GEOGRAPHY": pa.string(),
    "JSON": pa.string(),
}


def _nullable(field: SchemaField) -> bool:
    """As google-cloud-bigquery's REST path declares it: REQUIRED and REPEATED (an empty list, never NULL)
    columns cannot hold nulls."""
    return (field.mode or "NULLABLE").upper() == "NULLABLE"


def _element(source: pa.DataType) -> pa.DataType | None:
    return source.value_type if pa.types.is_list(source) or pa.types.is_large_list(source) else None


def _record(field: SchemaField, source: pa.DataType) -> pa.DataType:
    if not pa.types.is_struct(source):
        return source
    children = {source.field(i).name.casefold(): source.field(i) for i in range(source.num_fields)}
    wanted = {child.name.casefold(): child for child in field.fields}
    if not wanted or not set(wanted) <= set(children):
        return source  # not the shape BigQuery describes: leave it alone rather than guess
    # ``field`` may name fewer sub-fields than arrived (declared paths, a server that cannot select sub-fields):
    # the struct keeps ``field``'s, in its order; a cast to it drops the others.
    return pa.struct(
        [
            pa.field(
                children[key].name,
                arrow_type_for(sub, children[key].type),
                _nullable(sub),
                children[key].metadata,
            )
            for key, sub in wanted.items()
        ]
    )


def _value_type(field: SchemaField, source: pa.DataType) -> pa.DataType:
    """The canonical type of one (non-repeated) value of ``field``; ``source`` where BigQuery's type has no
    single Arrow counterpart (INTERVAL, RANGE) or the data is not shaped as the schema says."""
    kind = (field.field_type or "").upper()
    if kind in ("RECORD", "STRUCT"):
        return _record(field, source)
    return _SCALARS.get(kind, source)


def arrow_type_for(field: SchemaField, source: pa.DataType) -> pa.DataType:
    """The Arrow type a column of BigQuery type ``field`` should have, given the type it arrived with."""
    if (field.mode or "").upper() == "REPEATED":
        element = _element(source)
        return pa.list_(_value_type(field, element)) if element is not None else source
    return _value_type(field, source)


def target_schema(source: pa.Schema, fields: Sequence[SchemaField]) -> pa.Schema:
    """``source`` with every column's type and nullability replaced by its BigQuery field's (names and field
    metadata are kept; a column without a BigQuery field stays as it is)."""
    by_name = {field.name.casefold(): field for field in fields}
    out = []
    for column in source:
        field = by_name.get(column.name.casefold())
        if field is None:
            out.append(column)
        else:
            out.append(pa.field(column.name, arrow_type_for(field, column.type), _nullable(field), column.metadata))
    return pa.schema(out, metadata=source.metadata)


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with the types of ``schema`` (same column names, same order); a no-op when they match."""
    if batch.schema.equals(schema):
        return batch
    columns = [
        column if column.type.equals(field.type) else column.cast(field.type)
        for column, field in zip(batch.columns, schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)
