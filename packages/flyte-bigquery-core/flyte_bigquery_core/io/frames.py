"""The dataframe types the ``bq://`` handlers speak, each as a pair of conversions to and from Arrow.

Arrow is the hub: reads arrive as Arrow record batches and writes leave as Parquet written from Arrow, so a
new dataframe library needs only these two functions.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

__all__ = ["ARROW", "PANDAS", "FrameKind", "polars_installed", "polars_kind"]


@dataclass(frozen=True)
class FrameKind:
    """How one dataframe type converts to and from an Arrow table."""

    python_type: type
    from_arrow: Callable[[pa.Table], Any]
    to_arrow: Callable[[Any], pa.Table]


def _pandas_from_arrow(table: pa.Table) -> pd.DataFrame:
    """Arrow's own conversion, so dtypes are those flytekit's Parquet decoder gives. ``split_blocks`` skips
    consolidating same-typed columns into 2-D blocks (a copy of each); ``self_destruct`` lets Arrow release
    buffers as their columns are converted, where nothing else holds them."""
    return table.to_pandas(split_blocks=True, self_destruct=True)


def _pandas_to_arrow(frame: pd.DataFrame) -> pa.Table:
    """Named index levels become columns (as google-cloud-bigquery's loader does); an unnamed index is a row
    number, not data, and is dropped."""
    named = [name for name in frame.index.names if name is not None]
    if named:
        frame = frame.reset_index(level=named)
    return pa.Table.from_pandas(frame, preserve_index=False)


def _same_table(table: pa.Table) -> pa.Table:
    return table


PANDAS = FrameKind(pd.DataFrame, _pandas_from_arrow, _pandas_to_arrow)
ARROW = FrameKind(pa.Table, _same_table, _same_table)


def _without_decimal256(kind: pa.DataType) -> pa.DataType:
    """``kind`` with every 256-bit decimal (BigQuery's BIGNUMERIC) replaced by its exact decimal text."""
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
