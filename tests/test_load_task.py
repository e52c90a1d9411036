"""``BigQueryLoadTask`` end to end: the real connector (in this process, as ``pyflyte run`` calls it), the local
BigQuery and the GCS stand-in, with files uploaded through flytekit's own ``gs://`` access.

What the local BigQuery cannot show is tested as the decision the plugin makes (the job configuration it sends,
read back from the job): it keeps a partition decorator as part of the table's name, so a partition replace is
checked on that table and on the configuration sent; it reports 0 bytes processed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from flyteidl.core.execution_pb2 import TaskExecution
from flytekit import FlyteContextManager, StructuredDataset
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile
from google.cloud import bigquery

from flytekitplugins.bigquery import BigQueryLoadTask, RangePartitioning, TimePartitioning
from flytekitplugins.bigquery.testing import Emulator
from flytekitplugins.bigquery.transfer_connector import LoadConnector

from . import helpers as h


def _rows(client: bigquery.Client, table: str) -> int:
    return int(h.scalar(client, f"SELECT COUNT(*) FROM `{table}`"))


def _load_file(
    emulator: Emulator, folder: str, tmp_path: Path, name: str, connector: Any = None, **options: Any
) -> tuple[Any, Any]:
    """Run a load of one Parquet file (:func:`~.helpers.transfer_frame`'s rows) that flytekit uploads to
    ``folder`` as it builds the ``FlyteFile`` input literal."""
    task = h.transfer_task(BigQueryLoadTask, emulator, name, source_type=FlyteFile, **options)
    source = FlyteFile(str(h.parquet_file(tmp_path)), remote_path=f"{folder}/{name}.parquet")
    return h.run(connector or LoadConnector(), task, source=source)


def test_a_parquet_file_uploaded_by_flytekit_loads_into_a_partitioned_clustered_table(
    emulator: Emulator, transfer_dataset: str, gs_folder: str, tmp_path: Path, bq_client: bigquery.Client
) -> None:
    meta, resource = _load_file(
        emulator,
        gs_folder,
        tmp_path,
        "load_parquet",
        destination=f"{transfer_dataset}.by_day",
        time_partitioning=TimePartitioning("DAY", "day"),
        clustering=["package"],
    )
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert resource.outputs["table"].uri == f"bq://{emulator.project}:{transfer_dataset}.by_day"
    table = bq_client.get_table(f"{transfer_dataset}.by_day")
    assert (table.num_rows, table.clustering_fields) == (4, ["package"])
    assert (table.time_partitioning.type_, table.time_partitioning.field) == ("DAY", "day")
    info = resource.custom_info
    assert (info["job_type"], info["input_files"], info["output_rows"], info["bad_records"]) == ("LOAD", 1, 4, 0)
    job = bq_client.get_job(meta.job_id, location="US")
    assert job.labels["flyte_execution"] == "local" and job.job_type == "load"


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        pytest.param("csv", {"source_format": "CSV", "skip_leading_rows": 1}, id="csv"),
        pytest.param("json", {"source_format": "NEWLINE_DELIMITED_JSON"}, id="ndjson"),
        pytest.param("parquet", {}, id="parquet"),
    ],
)
def test_a_directory_of_files_loads_every_file_with_an_explicit_schema(
    emulator: Emulator, transfer_dataset: str, gs_folder: str, tmp_path: Path, kind: str, options: dict[str, Any]
) -> None:
    local = h.local_files(tmp_path, h.transfer_frame(), kind, parts=2)
    table = f"{transfer_dataset}.dir_{kind}"
    task = h.transfer_task(
        BigQueryLoadTask,
        emulator,
        "load_dir",
        destination=table,
        source_type=FlyteDirectory,
        schema={"package": "STRING", "downloads": "INT64", "day": "DATE"},
        write_disposition="WRITE_TRUNCATE",
        **options,
    )
    _, resource = h.run(
        LoadConnector(), task, source=FlyteDirectory(str(local), remote_directory=f"{gs_folder}/{kind}")
    )
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert resource.custom_info["input_files"] == 2
    client = emulator.client()
    assert h.scalar(client, f"SELECT SUM(downloads) FROM `{table}`") == 100
    assert [f.field_type for f in client.get_table(table).schema] == ["STRING", "INTEGER", "DATE"]


def test_json_without_a_schema_is_autodetected_from_gs_uris(
    emulator: Emulator, transfer_dataset: str, gs_folder: str, tmp_path: Path
) -> None:
    local = h.local_files(tmp_path, h.transfer_frame(), "json", parts=2)
    FlyteContextManager.current_context().file_access.put_data(str(local), f"{gs_folder}/json", is_multipart=True)
    task = h.transfer_task(
        BigQueryLoadTask,
        emulator,
        "load_uris",
        destination=f"{transfer_dataset}.autodetected",
        source_type=list[str],
        source_format="JSONL",
    )
    _, resource = h.run(LoadConnector(), task, source=[f"{gs_folder}/json/part0.json", f"{gs_folder}/json/part1.json"])
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert _rows(emulator.client(), f"{transfer_dataset}.autodetected") == 4


def test_a_structured_dataset_written_by_flytekit_loads_from_its_parquet_files(
    emulator: Emulator, transfer_dataset: str, gs_folder: str
) -> None:
    task = h.transfer_task(
        BigQueryLoadTask,
        emulator,
        "load_sd",
        destination=f"{transfer_dataset}.from_sd",
        source_type=StructuredDataset,
        range_partitioning=RangePartitioning("downloads", 0, 100, 10),
    )
    _, resource = h.run(
        LoadConnector(), task, source=StructuredDataset(dataframe=h.transfer_frame(), uri=f"{gs_folder}/d")
    )
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    table = emulator.client().get_table(f"{transfer_dataset}.from_sd")
    assert table.num_rows == 4 and table.range_partitioning.field == "downloads"


def test_a_partition_target_is_replaced_with_write_truncate(
    emulator: Emulator, transfer_dataset: str, gs_folder: str, tmp_path: Path, bq_client: bigquery.Client
) -> None:
    local = h.parquet_file(tmp_path)
    uri = f"{gs_folder}/p.parquet"
    FlyteContextManager.current_context().file_access.put_data(str(local), uri)
    task = h.transfer_task(
        BigQueryLoadTask,
        emulator,
        "replace_partition",
        destination=f"{transfer_dataset}.events$20240101",
        source_type=str,
        write_disposition="WRITE_TRUNCATE",
        time_partitioning=TimePartitioning("DAY", "day"),
    )
    for _ in range(2):
        meta, resource = h.run(LoadConnector(), task, source=uri)
        assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    # The decision: BigQuery is asked to truncate exactly that partition.
    load = bq_client.get_job(meta.job_id, location="US").to_api_repr()["configuration"]["load"]
    assert load["destinationTable"]["tableId"] == "events$20240101" and load["writeDisposition"] == "WRITE_TRUNCATE"
    # The output is the whole table; the local BigQuery keeps the partition as a table of that name, replaced.
    assert resource.outputs["table"].uri == f"bq://{emulator.project}:{transfer_dataset}.events"
    assert _rows(bq_client, f"{transfer_dataset}.events$20240101") == 4


def test_a_daily_load_writes_the_partition_its_input_names(
    emulator: Emulator, transfer_dataset: str, gs_folder: str, tmp_path: Path, bq_client: bigquery.Client
) -> None:
    uri = f"{gs_folder}/daily.parquet"
    FlyteContextManager.current_context().file_access.put_data(str(h.parquet_file(tmp_path)), uri)
    task = h.transfer_task(
        BigQueryLoadTask,
        emulator,
        "daily",
        destination=f"{transfer_dataset}.daily",
        source_type=str,
        partition_type=dt.date,
        write_disposition="WRITE_TRUNCATE",
        time_partitioning=TimePartitioning("DAY", "day"),
    )
    meta, resource = h.run(LoadConnector(), task, source=uri, partition=dt.date(2024, 1, 2))
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    sent = bq_client.get_job(meta.job_id, location="US").to_api_repr()["configuration"]["load"]["destinationTable"]
    assert sent["tableId"] == "daily$20240102"
    assert resource.outputs["table"].uri == f"bq://{emulator.project}:{transfer_dataset}.daily"


def test_a_load_bigquery_rejects_fails_permanently_with_its_reason(
    emulator: Emulator, transfer_dataset: str, gs_folder: str, tmp_path: Path
) -> None:
    _, resource = _load_file(
        emulator,
        gs_folder,
        tmp_path,
        "load_rejected",
        destination=f"{transfer_dataset}.rejected",
        time_partitioning=TimePartitioning("DAY", "no_such_column"),
    )
    assert resource.phase == TaskExecution.FAILED
    assert "partitioning cannot be found in the schema" in resource.message


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param("local", "input 'source' is on a local path", id="local-file"),
        pytest.param("s3", "input 'source' is on s3://", id="other-cloud"),
    ],
)
def test_a_source_off_cloud_storage_is_refused_before_anything_is_submitted(
    emulator: Emulator, transfer_dataset: str, tmp_path: Path, source: str, message: str
) -> None:
    local = h.parquet_file(tmp_path)
    task = h.transfer_task(
        BigQueryLoadTask,
        emulator,
        "load_local",
        destination=f"{transfer_dataset}.never",
        source_type=str,
    )
    value = str(local) if source == "local" else "s3://bucket/key.parquet"
    meta, resource = h.run(LoadConnector(), task, source=value)
    assert (meta.job_id, resource.phase) == ("", TaskExecution.FAILED)
    assert "task 'transfer.load_local'" in resource.message and message in resource.message
    assert "gs://bucket/path" in resource.message and "key.parquet" not in resource.message


def test_logs_and_metrics_of_a_load_show_what_it_moved(
    emulator: Emulator, transfer_dataset: str, gs_folder: str, tmp_path: Path
) -> None:
    connector = LoadConnector()
    meta, _ = _load_file(emulator, gs_folder, tmp_path, "load_report", connector, destination=f"{transfer_dataset}.r")
    lines = list(asyncio.run(connector.get_logs(meta)).body.results)
    assert "load: 1 input files, " in "\n".join(lines) and any("4 output rows" in line for line in lines)
    statistics = {m.metric: m.data for m in asyncio.run(connector.get_metrics(meta)).results}
    assert statistics["BIGQUERY_JOB_STATISTICS"]["output_rows"] == 4
