"""The ``bq://`` dataframe handlers in Flyte 2: registered for pandas, Arrow and polars as Flyte 2 registers type
plugins, reading (whole or batch by batch) and writing through the core's reader and writer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import flyte
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from flyte.io import DataFrame
from flyte.io.extend import DataFrameTransformerEngine
from flyte.types import TypeEngine
from flyte_bigquery_core.testing import DEMO_DATASET, DEMO_TABLE, Emulator
from flyteplugins.bigquery.dataframe import BigQueryDecoder, BigQueryEncoder
from google.cloud import bigquery

from .helpers import PROJECT

FRAMES: dict[str, Any] = {"pandas": pd.DataFrame, "pyarrow": pa.Table, "polars": pl.DataFrame}
DEMO_URI = f"bq://{PROJECT}:{DEMO_DATASET}.{DEMO_TABLE}"


@pytest.mark.parametrize("library", FRAMES)
def test_ours_are_the_bq_handlers_once_the_library_is_imported(library: str) -> None:
    TypeEngine.lazy_import_transformers()  # what Flyte 2 runs before a type lookup
    assert isinstance(DataFrameTransformerEngine.get_decoder(FRAMES[library], "bq", ""), BigQueryDecoder)
    assert isinstance(DataFrameTransformerEngine.get_encoder(FRAMES[library], "bq", ""), BigQueryEncoder)


@pytest.mark.parametrize("library", FRAMES)
def test_a_table_reads_whole_into_each_library(emulator: Emulator, bq_client: bigquery.Client, library: str) -> None:
    frame = asyncio.run(DataFrame(uri=DEMO_URI).open(FRAMES[library]).all())
    assert isinstance(frame, FRAMES[library])
    assert len(frame) == bq_client.get_table(f"{PROJECT}.{DEMO_DATASET}.{DEMO_TABLE}").num_rows


def test_a_table_reads_batch_by_batch_under_iter(emulator: Emulator, bq_client: bigquery.Client) -> None:
    async def batches() -> list[pa.Table]:
        frame = DataFrame(uri=DEMO_URI)
        await frame.set_literal(TypeEngine.to_literal_type(DataFrame))  # flyte's iter() needs it (.all() sets it)
        return [batch async for batch in await frame.open(pa.Table).iter()]

    read = asyncio.run(batches())
    assert read and all(isinstance(batch, pa.Table) for batch in read)
    assert sum(len(batch) for batch in read) == bq_client.get_table(f"{PROJECT}.{DEMO_DATASET}.{DEMO_TABLE}").num_rows


env = flyte.TaskEnvironment("bq_write_env")


@env.task
async def write_frame(library: str, uri: str) -> DataFrame:
    """Returns a small frame of ``library`` bound for the ``bq://`` table ``uri``."""
    source = pa.table({"n": [1, 2, 3], "s": ["a", "b", None]})
    frame = {"pandas": source.to_pandas, "pyarrow": lambda: source, "polars": lambda: pl.from_arrow(source)}[library]()
    return DataFrame.wrap_df(frame, uri=uri)


@pytest.mark.parametrize("library", FRAMES)
def test_a_frame_a_task_returns_to_bq_is_loaded_into_the_table(
    emulator: Emulator, bq_client: bigquery.Client, library: str
) -> None:
    dataset = f"w_{uuid.uuid4().hex[:8]}"
    bq_client.create_dataset(dataset)
    uri = f"bq://{PROJECT}:{dataset}.t"
    flyte.init()
    [written] = flyte.with_runcontext(mode="local").run(write_frame, library=library, uri=uri).outputs()
    assert written.uri == uri
    rows = sorted((row["n"], row["s"]) for row in bq_client.list_rows(f"{PROJECT}.{dataset}.t"))
    assert rows == [(1, "a"), (2, "b"), (3, None)]
