"""``BigQueryCopyTask`` end to end against the local BigQuery: copies, snapshots, clones, several sources."""

from __future__ import annotations

import uuid

import pytest
from flyteidl.core.execution_pb2 import TaskExecution
from google.cloud import bigquery

from flytekitplugins.bigquery import BigQueryCopyTask
from flytekitplugins.bigquery.testing import Emulator
from flytekitplugins.bigquery.transfer_connector import CopyConnector

from . import helpers as h


@pytest.mark.parametrize(
    ("operation", "table_type"),
    [("COPY", "TABLE"), ("SNAPSHOT", "SNAPSHOT"), ("CLONE", "TABLE")],
)
def test_a_table_copies_snapshots_and_clones(
    emulator: Emulator, transfer_dataset: str, bq_client: bigquery.Client, operation: str, table_type: str
) -> None:
    destination = f"{transfer_dataset}.{operation.lower()}_{uuid.uuid4().hex[:6]}"
    task = h.transfer_task(
        BigQueryCopyTask,
        emulator,
        "copy",
        sources=[f"{transfer_dataset}.source"],
        destination=destination,
        operation=operation,
    )
    meta, resource = h.run(CopyConnector(), task)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert resource.outputs["table"].uri == f"bq://{emulator.project}:{destination.replace('.', '.', 1)}"
    table = bq_client.get_table(destination)
    assert (table.table_type, table.num_rows) == (table_type, 4)
    sent = bq_client.get_job(meta.job_id, location="US").to_api_repr()["configuration"]["copy"]
    assert sent.get("operationType", "COPY") == operation
    assert resource.custom_info["output_rows"] == 4


def test_several_tables_append_into_one_from_the_source_input(
    emulator: Emulator, transfer_dataset: str, bq_client: bigquery.Client
) -> None:
    task = h.transfer_task(
        BigQueryCopyTask,
        emulator,
        "copy_many",
        destination=f"{transfer_dataset}.appended",
        source_type=list[str],
        write_disposition="WRITE_APPEND",
    )
    _, resource = h.run(
        CopyConnector(),
        task,
        source=[f"{transfer_dataset}.source", f"bq://{emulator.project}:{transfer_dataset}.source"],
    )
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert bq_client.get_table(f"{transfer_dataset}.appended").num_rows == 8


def test_a_snapshot_over_an_existing_table_fails_permanently(emulator: Emulator, transfer_dataset: str) -> None:
    task = h.transfer_task(
        BigQueryCopyTask,
        emulator,
        "snapshot_twice",
        sources=[f"{transfer_dataset}.source"],
        destination=f"{transfer_dataset}.snap_once",
        operation="SNAPSHOT",
    )
    assert h.run(CopyConnector(), task)[1].phase == TaskExecution.SUCCEEDED
    resource = h.run(CopyConnector(), task)[1]
    assert resource.phase == TaskExecution.FAILED and "snap_once" in resource.message
