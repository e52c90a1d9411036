"""The dataframe types the ``bq://`` handlers speak, each as a pair of conversions to and from Arrow.

Arrow is the hub: reads arrive as Arrow record batches and writes leave as Parquet written from Arrow, so a
new dataframe library needs only these two functions.

Each library is imported when its kind is first asked for (:func:`pandas_kind`, :func:`arrow_kind`,
:func:`polars_kind`; ``PANDAS`` and ``ARROW`` are the first two, made on first access), never on import.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "ARROW",
    "PANDAS",
    "FrameKind",
    "arrow_kind",
    "pandas_dtype_for",
    "pandas_kind",
    "polars_installed",
    "polars_kind",
]


@dataclass(frozen=True)
class FrameKind:
    """How one dataframe type converts to and from an Arrow table."""

    python_type: type
    from_arrow: Callable[[pa.Table], Any]
    to_arrow: Callable[[Any], pa.Table]


#: Arrow types whose pandas default would change a value, and the dtype that keeps it (as google-cloud-bigquery's
#: ``to_dataframe`` does by default): a NULL would turn an integer column into ``float64`` (exact only up to
#: 2**53) and a boolean column into ``object``. Every other type keeps Arrow's conversion, which is exact.
@functools.cache
def _nullable_dtypes() -> dict[pa.DataType, Any]:
    import pandas as pd
    import pyarrow as pa

    return {
        pa.bool_(): pd.BooleanDtype(),
        **{kind: pd.Int64Dtype() for kind in (pa.int8(), pa.int16(), pa.int32(), pa.int64())},
        **{kind: pd.Int64Dtype() for kind in (pa.uint8(), pa.uint16(), pa.uint32())},
        pa.uint64(): pd.UInt64Dtype(),
    }


def pandas_dtype_for(kind: pa.DataType) -> Any | None:
    """The pandas extension dtype a top-level column of Arrow type ``kind`` converts to, or ``None`` for
    Arrow's own conversion (pyarrow's ``to_pandas(types_mapper=...)`` hook)."""
    return _nullable_dtypes().get(kind)


def _pandas_from_arrow(table: pa.Table) -> pd.DataFrame:
    """A DataFrame holding exactly the table's values (the README's "BigQuery type → pandas dtype" table).

    - INT64 → ``Int64`` and BOOL → ``boolean`` (nullable: a NULL is ``<NA>``, never a float);
    - TIMESTAMP → ``datetime64[us, UTC]`` and DATETIME → ``datetime64[us]``: microseconds, BigQuery's own
      precision, span years 1 to 9999, so no value is out of range (nanoseconds stop at 1677 and 2262);
    - DATE, TIME, NUMERIC, BIGNUMERIC, BYTES → ``object`` columns of ``datetime.date``, ``datetime.time``,
      ``decimal.Decimal`` and ``bytes``; STRING, JSON and GEOGRAPHY → pandas' string dtype; FLOAT64 →
      ``float64`` (NULL and NaN both read as NaN, pandas' missing value);
    - STRUCT cells are ``dict`` and ARRAY cells numpy arrays; ``integer_object_nulls`` keeps a nested integer
      beside a NULL a Python ``int`` (Arrow would make both floats).

    ``split_blocks`` skips consolidating same-typed columns into 2-D blocks (a copy of each); ``self_destruct``
    lets Arrow release buffers as their columns are converted, where nothing else holds them.
    """
    return table.to_pandas(
        types_mapper=pandas_dtype_for,
        integer_object_nulls=True,
        date_as_object=True,
        coerce_temporal_nanoseconds=False,
        split_blocks=True,
        self_destruct=True,
    )


def _pandas_to_arrow(frame: pd.DataFrame) -> pa.Table:
    """Named index levels become columns (as google-cloud-bigquery's loader does); an unnamed index is a row
    number, not data, and is dropped."""
    import pyarrow as pa

    named = [name for name in frame.index.names if name is not None]
    if named:
        frame = frame.reset_index(level=named)
    return pa.Table.from_pandas(frame, preserve_index=False)


def _same_table(table: pa.Table) -> pa.Table:
    return table


@functools.cache
def pandas_kind() -> FrameKind:
    """The pandas conversions (imports pandas; cached)."""
    import pandas as pd

    return FrameKind(pd.DataFrame, _pandas_from_arrow, _pandas_to_arrow)


@functools.cache
def arrow_kind() -> FrameKind:
    """The Arrow "conversions" (imports pyarrow; cached)."""
    import pyarrow as pa

    return FrameKind(pa.Table, _same_table, _same_table)


if TYPE_CHECKING:
    PANDAS: FrameKind
    ARROW: FrameKind


def __getattr__(name: str) -> FrameKind:
    """``PANDAS`` and ``ARROW``, made on first access."""
    if name == "PANDAS":
        return pandas_kind()
    if name == "ARROW":
        return arrow_kind()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _without_decimal256(kind: pa.DataType) -> pa.DataType:
    """``kind`` with every 256-bit decimal (BigQuery's BIGNUMERIC) replaced by its exact decimal text."""
    import pyarrow as pa

    if pa.types.is_decimal256(kind):
        return pa.string()
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pa.list_(_without_decimal256(kind.value_type))
    if pa.types.is_struct(kind):
        fields = [kind.field(i) for i in range(kind.num_fields)]
        return pa.struct([field.with_type(_without_decimal256(field.type)) for field in fields])
    return kind


def polars_installed() -> bool:
    """Whether the optional ``polars`` extra is installed (checked without importing it)."""
    return importlib.util.find_spec("polars") is not None


@functools.cache
def polars_kind() -> FrameKind:
    """The polars conversions (imports polars; cached so it happens once)."""
    import polars as pl
    import pyarrow as pa

    def from_arrow(table: pa.Table) -> pl.DataFrame:
        """Polars has no 256-bit decimal, so BIGNUMERIC columns arrive as exact decimal text (``String``)."""
        schema = pa.schema([field.with_type(_without_decimal256(field.type)) for field in table.schema])
        converted = pl.from_arrow(table if schema.equals(table.schema) else table.cast(schema), rechunk=False)
        assert isinstance(converted, pl.DataFrame)
        return converted

    def to_arrow(frame: pl.DataFrame) -> pa.Table:
        # The oldest compatibility level gives plain (large) strings, not string views, which every Parquet
        # writer and BigQuery understand.
        return frame.to_arrow(compat_level=pl.CompatLevel.oldest())

    return FrameKind(pl.DataFrame, from_arrow, to_arrow)
