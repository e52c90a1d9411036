"""The Flyte 2 load, extract and copy connectors called directly, with templates from Flyte 2's serializer, against
the local BigQuery whose ``gs://`` is the session's GCS stand-in (files written there as any GCS client would).

What the local BigQuery cannot show is tested as the decision the plugin makes (the job configuration it sent,
read back from the job): it keeps a partition decorator as part of the table's name.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import flyte
import pytest
from flyte.io import DataFrame, Dir, File
from flyte_bigquery_core.testing import Emulator, GcsEmulator
from flyte_bigquery_core.testing.fixtures import downloads_dataset
from flyteplugins.bigquery import (
    BigQueryConfig,
    BigQueryCopyTask,
    BigQueryExtractTask,
    BigQueryLoadTask,
    CopyConnector,
    ExtractConnector,
    LoadConnector,
    TimePartitioning,
)
from google.cloud import bigquery

from . import helpers as h


def _task(kind: type, emulator: Emulator, name: str, **options: Any) -> Any:
    """A load, extract or copy task named ``transfer.<name>`` for the local BigQuery, in a task environment (Flyte
    2 serializes a task only as part of one)."""
    task = kind(
        name=f"transfer.{name}", plugin_config=BigQueryConfig(ProjectID=emulator.project, Location="US"), **options
    )
    flyte.TaskEnvironment.from_task(f"env_{uuid.uuid4().hex[:8]}", task)
    return task


@pytest.fixture(scope="module")
def dataset(emulator: Emulator) -> Iterator[str]:
    """A dataset of the module's own holding ``source`` (:func:`~.helpers.transfer_rows`); deleted afterwards."""
    yield from downloads_dataset(emulator, "transfer2", h.transfer_rows())


@pytest.fixture
def folder(gcs: GcsEmulator) -> str:
    """A fresh ``gs://`` folder in the GCS stand-in's bucket."""
    return f"gs://{h.BUCKET}/{uuid.uuid4().hex[:10]}"


def _count(client: bigquery.Client, table: str) -> int:
    return int(next(iter(client.query(f"SELECT COUNT(*) FROM `{table}`").result()))[0])


def test_a_parquet_file_loads_into_a_partitioned_clustered_table(
    emulator: Emulator, gcs: GcsEmulator, dataset: str, folder: str, bq_client: bigquery.Client
) -> None:
    gcs.upload(f"{folder}/rows.parquet", h.parquet_bytes(h.transfer_rows()))
    task = _task(
        BigQueryLoadTask,
        emulator,
        "load_file",
        destination=f"{dataset}.by_day",
        source_type=File,
        time_partitioning=TimePartitioning("DAY", "day"),
        clustering=["package"],
    )
    meta, resource = h.run(LoadConnector(), task, source=File(path=f"{folder}/rows.parquet"))
    assert h.phase(resource) == "SUCCEEDED", resource.message
    table_output = resource.outputs["table"]
    assert isinstance(table_output, DataFrame) and table_output.uri == f"bq://{emulator.project}:{dataset}.by_day"
    table = bq_client.get_table(f"{dataset}.by_day")
    assert (table.num_rows, table.clustering_fields) == (4, ["package"])
    assert (table.time_partitioning.type_, table.time_partitioning.field) == ("DAY", "day")
    info = resource.custom_info
    assert (info["job_type"], info["input_files"], info["output_rows"]) == ("LOAD", 1, 4)
    job = h.job_of(bq_client, meta)
    assert job.job_type == "load" and job.labels["flyte_execution"] == "local"


def test_a_dir_of_csv_files_loads_every_file_with_an_explicit_schema(
    emulator: Emulator, gcs: GcsEmulator, dataset: str, folder: str, bq_client: bigquery.Client
) -> None:
    rows = h.transfer_rows()
    for i in range(2):
        gcs.upload(f"{folder}/csv/part{i}.csv", h.csv_bytes(rows[i::2]))
    task = _task(
        BigQueryLoadTask,
        emulator,
        "load_dir",
        destination=f"{dataset}.from_dir",
        source_type=Dir,
        source_format="CSV",
        skip_leading_rows=1,
        schema={"package": "STRING", "downloads": "INT64", "day": "DATE"},
        write_disposition="WRITE_TRUNCATE",
    )
    _, resource = h.run(LoadConnector(), task, source=Dir(path=f"{folder}/csv"))
    assert h.phase(resource) == "SUCCEEDED", resource.message
    assert resource.custom_info["input_files"] == 2
    total = next(iter(bq_client.query(f"SELECT SUM(downloads) FROM `{dataset}.from_dir`").result()))[0]
    assert total == 100
    assert [f.field_type for f in bq_client.get_table(f"{dataset}.from_dir").schema] == ["STRING", "INTEGER", "DATE"]


def test_a_dataframe_on_gcs_loads_from_its_parquet_files(
    emulator: Emulator, gcs: GcsEmulator, dataset: str, folder: str, bq_client: bigquery.Client
) -> None:
    gcs.upload(f"{folder}/frame/00000.parquet", h.parquet_bytes(h.transfer_rows()))
    task = _task(BigQueryLoadTask, emulator, "load_frame", destination=f"{dataset}.from_frame", source_type=DataFrame)
    _, resource = h.run(LoadConnector(), task, source=DataFrame(uri=f"{folder}/frame", format="parquet"))
    assert h.phase(resource) == "SUCCEEDED", resource.message
    assert _count(bq_client, f"{dataset}.from_frame") == 4


def test_a_daily_load_from_gs_uris_writes_the_partition_its_input_names(
    emulator: Emulator, gcs: GcsEmulator, dataset: str, folder: str, bq_client: bigquery.Client
) -> None:
    gcs.upload(f"{folder}/daily.parquet", h.parquet_bytes(h.transfer_rows()))
    task = _task(
        BigQueryLoadTask,
        emulator,
        "daily",
        destination=f"{dataset}.daily",
        source_type=list[str],
        partition_type=dt.date,
        write_disposition="WRITE_TRUNCATE",
        time_partitioning=TimePartitioning("DAY", "day"),
    )
    meta, resource = h.run(LoadConnector(), task, source=[f"{folder}/daily.parquet"], partition=dt.date(2024, 1, 2))
    assert h.phase(resource) == "SUCCEEDED", resource.message
    load = h.job_of(bq_client, meta).to_api_repr()["configuration"]["load"]
    assert (load["destinationTable"]["tableId"], load["writeDisposition"]) == ("daily$20240102", "WRITE_TRUNCATE")
    assert resource.outputs["table"].uri == f"bq://{emulator.project}:{dataset}.daily"


def test_a_table_extracts_to_a_dir_on_gcs(
    emulator: Emulator, gcs: GcsEmulator, dataset: str, folder: str, bq_client: bigquery.Client
) -> None:
    task = _task(
        BigQueryExtractTask,
        emulator,
        "extract",
        source=f"{dataset}.source",
        destination=folder,
        destination_format="CSV",
        compression="GZIP",
    )
    meta, resource = h.run(ExtractConnector(), task)
    assert h.phase(resource) == "SUCCEEDED", resource.message
    directory = resource.outputs["directory"]
    assert isinstance(directory, Dir) and directory.path == folder
    assert gcs.object_names(folder) == ["part-000000000000.csv.gz"]
    import gzip

    lines = gzip.decompress(gcs.download(f"{folder}/part-000000000000.csv.gz")).decode().splitlines()
    assert sorted(int(line.split(",")[1]) for line in lines[1:]) == [10, 20, 30, 40]
    extract = h.job_of(bq_client, meta).to_api_repr()["configuration"]["extract"]
    assert (extract["destinationFormat"], extract["compression"]) == ("CSV", "GZIP")


def test_a_dataframe_input_extracts_the_table_it_points_at(
    emulator: Emulator, gcs: GcsEmulator, dataset: str, folder: str
) -> None:
    task = _task(BigQueryExtractTask, emulator, "extract_frame", destination=folder, source_type=DataFrame)
    table = DataFrame(uri=f"bq://{emulator.project}:{dataset}.source")
    _, resource = h.run(ExtractConnector(), task, source=table)
    assert h.phase(resource) == "SUCCEEDED", resource.message
    assert gcs.object_names(folder) == ["part-000000000000.parquet"]


def test_a_copy_of_the_table_a_dataframe_points_at_outputs_the_destination(
    emulator: Emulator, dataset: str, bq_client: bigquery.Client
) -> None:
    task = _task(BigQueryCopyTask, emulator, "copy", destination=f"{dataset}.copied", source_type=DataFrame)
    _, resource = h.run(CopyConnector(), task, source=DataFrame(uri=f"bq://{emulator.project}:{dataset}.source"))
    assert h.phase(resource) == "SUCCEEDED", resource.message
    assert resource.outputs["table"].uri == f"bq://{emulator.project}:{dataset}.copied"
    assert _count(bq_client, f"{dataset}.copied") == 4


def test_a_repeated_create_of_one_attempt_reattaches_to_its_job(
    emulator: Emulator, dataset: str, bq_client: bigquery.Client
) -> None:
    task = _task(BigQueryCopyTask, emulator, "copy_twice", destination=f"{dataset}.once", sources=[f"{dataset}.source"])
    template, metadata, connector = h.template_of(task), h.execution_metadata(h.new_execution()), CopyConnector()
    first = h.create(connector, template, metadata)
    second = h.create(connector, template, metadata)  # the platform retried CreateTask: same job, not a second
    assert first.job_id and second.job_id == first.job_id
    assert h.phase(h.wait(connector, second)) == "SUCCEEDED"
    assert _count(bq_client, f"{dataset}.once") == 4  # copied once (WRITE_EMPTY would fail a second copy)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        pytest.param({"source": "/tmp/rows.parquet"}, "input 'source' is on a local path", id="local-path"),
        pytest.param({"source": File(path="s3://b/rows.parquet")}, "input 'source' is on s3://", id="other-cloud"),
        pytest.param(
            {"source": 42}, "input 'source' is a int; expected a file, directory or dataset", id="wrong-value"
        ),
        pytest.param({"source": b"rows.parquet"}, "input 'source' is a bytes; expected a flyte.io.File", id="bytes"),
        pytest.param({"source": "gs://b/x", "day": "x"}, "input(s) day are not read by a load task", id="unread"),
    ],
)
def test_a_bad_input_is_refused_before_anything_is_submitted(
    emulator: Emulator, dataset: str, inputs: dict[str, Any], message: str
) -> None:
    task = _task(BigQueryLoadTask, emulator, "load_bad", destination=f"{dataset}.never", source_type=str)
    meta = h.create(LoadConnector(), h.template_of(task), None, **inputs)
    resource = asyncio.run(LoadConnector().get(meta))
    assert (meta.job_id, h.phase(resource)) == ("", "FAILED")
    assert "task 'transfer.load_bad'" in resource.message and message in resource.message
    assert "rows.parquet" not in resource.message  # the value is never echoed
