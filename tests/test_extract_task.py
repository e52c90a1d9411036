"""``BigQueryExtractTask`` end to end: the real connector, the local BigQuery and the GCS stand-in; the files are
read back through flytekit's ``gs://`` access, as the next task would get them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from flyteidl.core.execution_pb2 import TaskExecution
from flytekit import FlyteContextManager, StructuredDataset
from flytekit.core.type_engine import TypeEngine
from flytekit.types.directory import FlyteDirectory

from flytekitplugins.bigquery import BigQueryExtractTask, BigQueryTask
from flytekitplugins.bigquery.connector import BigQueryConnector
from flytekitplugins.bigquery.testing import Emulator
from flytekitplugins.bigquery.transfer_connector import ExtractConnector

from . import helpers as h


def _downloaded(directory: FlyteDirectory) -> Path:
    """The files of a ``gs://`` directory output, as the next task gets them: through its literal, downloaded."""
    ctx = FlyteContextManager.current_context()
    literal = TypeEngine.to_literal(ctx, directory, FlyteDirectory, TypeEngine.to_literal_type(FlyteDirectory))
    return Path(TypeEngine.to_python_value(ctx, literal, FlyteDirectory).download())


def _read(path: Path) -> list[dict[str, Any]]:
    """Rows of one extracted file, by its name: Parquet, gzip-compressed CSV or JSON."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    text = gzip.decompress(path.read_bytes()).decode()
    if path.name.endswith(".json.gz"):
        return [json.loads(line) for line in text.splitlines() if line]
    header, *lines = text.splitlines()
    return [dict(zip(header.split(","), line.split(","), strict=False)) for line in lines]


@pytest.mark.parametrize(
    ("kind", "compression", "suffix"),
    [
        pytest.param("PARQUET", "SNAPPY", ".parquet", id="parquet-snappy"),
        pytest.param("CSV", "GZIP", ".csv.gz", id="csv-gzip"),
        pytest.param("NEWLINE_DELIMITED_JSON", "GZIP", ".json.gz", id="ndjson-gzip"),
        pytest.param("AVRO", "DEFLATE", ".avro", id="avro-deflate"),
    ],
)
def test_a_table_extracts_to_a_flyte_directory_on_gcs(
    emulator: Emulator, transfer_dataset: str, gs_folder: str, kind: str, compression: str, suffix: str
) -> None:
    task = h.transfer_task(
        BigQueryExtractTask,
        emulator,
        "extract",
        source=f"{transfer_dataset}.source",
        destination=gs_folder,
        destination_format=kind,
        compression=compression,
    )
    _, resource = h.run(ExtractConnector(), task)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    directory = resource.outputs["directory"]
    assert isinstance(directory, FlyteDirectory) and directory.path == gs_folder
    local = _downloaded(directory)  # back through flytekit's gs:// access
    files = sorted(p for p in local.rglob("*") if p.is_file())
    assert [p.name for p in files] == [f"part-000000000000{suffix}"]
    if kind == "AVRO":
        data = files[0].read_bytes()
        assert data.startswith(b"Obj\x01") and b"deflate" in data[:400]
    else:
        assert sorted(int(r["downloads"]) for r in _read(files[0])) == [10, 20, 30, 40]
    assert resource.custom_info["output_files"] == 1


def test_a_query_result_extracts_through_the_structured_dataset_it_returns(
    emulator: Emulator, transfer_dataset: str, gs_folder: str
) -> None:
    query = BigQueryTask(
        name="transfer.query",
        query_template=f"SELECT package, SUM(downloads) AS downloads FROM {transfer_dataset}.source GROUP BY package",
        task_config=h.us_config(emulator),
        output_structured_dataset_type=StructuredDataset,
    )
    _, result = h.run(BigQueryConnector(), query)
    assert result.phase == TaskExecution.SUCCEEDED, result.message
    task = h.transfer_task(
        BigQueryExtractTask,
        emulator,
        "extract_result",
        destination=gs_folder,
        source_type=StructuredDataset,
    )
    _, resource = h.run(ExtractConnector(), task, source=result.outputs["results"])
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    local = _downloaded(resource.outputs["directory"])
    rows = pq.read_table(next(local.rglob("*.parquet"))).to_pylist()
    assert sorted((r["package"], r["downloads"]) for r in rows) == [("flytekit", 50), ("pandas", 20), ("pyarrow", 30)]


def test_an_extract_of_a_missing_table_fails_permanently(
    emulator: Emulator, transfer_dataset: str, gs_folder: str
) -> None:
    task = h.transfer_task(
        BigQueryExtractTask,
        emulator,
        "extract_missing",
        source=f"{transfer_dataset}.nope",
        destination=gs_folder,
    )
    _, resource = h.run(ExtractConnector(), task)
    assert resource.phase == TaskExecution.FAILED and "nope" in resource.message
