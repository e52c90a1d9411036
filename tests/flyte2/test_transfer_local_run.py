"""Load, extract and copy tasks in ``flyte.with_runcontext(mode="local").run(...)``: their connectors run in the
caller's process against the local BigQuery, whose ``gs://`` is the session's GCS stand-in.

The sources are files already on ``gs://`` (written to the stand-in as any GCS client would), as ``str``,
``flyte.io.File`` and ``flyte.io.Dir``: Flyte 2 passes a remote File or Dir through a local run without reading it.
Not covered offline: a File made from a *local* file, which Flyte 2 would upload itself through obstore, which
this suite does not point at the GCS stand-in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import flyte
import pytest
from flyte.io import DataFrame, Dir, File
from flyte_bigquery_core.testing import Emulator, GcsEmulator
from flyteplugins.bigquery import BigQueryConfig, BigQueryCopyTask, BigQueryExtractTask, BigQueryLoadTask

from . import helpers as h

DATASET = "flyte2_local_transfer"
EXTRACTED = f"gs://{h.BUCKET}/local-run/extracted"
CONFIG = BigQueryConfig(ProjectID=h.PROJECT, Location="US")

load = BigQueryLoadTask(
    name="load_rows",
    plugin_config=CONFIG,
    destination=f"{DATASET}.rows",
    source_type=str,
    write_disposition="WRITE_TRUNCATE",
)
extract = BigQueryExtractTask(
    name="extract_rows", plugin_config=CONFIG, destination=EXTRACTED, source_type=DataFrame, destination_format="CSV"
)
copy = BigQueryCopyTask(name="copy_rows", plugin_config=CONFIG, destination=f"{DATASET}.copied", source_type=DataFrame)
load_file = BigQueryLoadTask(
    name="load_file", plugin_config=CONFIG, destination=f"{DATASET}.from_file", source_type=File
)
load_dir = BigQueryLoadTask(name="load_dir", plugin_config=CONFIG, destination=f"{DATASET}.from_dir", source_type=Dir)
env = flyte.TaskEnvironment.from_task("transfer_env", load, extract, copy, load_file, load_dir)


@env.task
async def load_then_extract(uri: str) -> Dir:
    """Loads a Parquet file, then extracts the table it loaded."""
    table = await load(source=uri)
    return await extract(source=table)


@pytest.fixture(scope="module")
def local(emulator: Emulator, gcs: GcsEmulator) -> Iterator[str]:
    """Flyte initialized for local runs, the module's dataset, and a Parquet file on ``gs://`` (its URI)."""
    flyte.init()
    client = emulator.client()
    client.create_dataset(DATASET, exists_ok=True)
    uri = f"gs://{h.BUCKET}/local-run/rows.parquet"
    gcs.upload(uri, h.parquet_bytes(h.transfer_rows()))
    yield uri
    client.delete_dataset(DATASET, delete_contents=True)
    client.close()


def _run(task: Any, **inputs: Any) -> Any:
    return flyte.with_runcontext(mode="local").run(task, **inputs).outputs()


def test_a_workflow_loads_a_file_then_extracts_the_table_to_gcs(local: str, gcs: GcsEmulator) -> None:
    [directory] = _run(load_then_extract, uri=local)
    assert isinstance(directory, Dir) and directory.path == EXTRACTED
    [name] = gcs.object_names(EXTRACTED)
    lines = gcs.download(f"{EXTRACTED}/{name}").decode().splitlines()
    assert sorted(int(line.split(",")[1]) for line in lines[1:]) == [10, 20, 30, 40]


def test_a_load_then_a_copy_return_their_tables(local: str, emulator: Emulator) -> None:
    [table] = _run(load, source=local)
    assert isinstance(table, DataFrame) and table.uri == f"bq://{h.PROJECT}:{DATASET}.rows"
    [copied] = _run(copy, source=table)
    assert copied.uri == f"bq://{h.PROJECT}:{DATASET}.copied"
    assert emulator.client().get_table(f"{DATASET}.copied").num_rows == 4


def test_a_file_and_a_dir_on_gcs_load_in_a_local_run(local: str, gcs: GcsEmulator, emulator: Emulator) -> None:
    folder = f"gs://{h.BUCKET}/local-run/dir"
    gcs.upload(f"{folder}/part0.parquet", h.parquet_bytes(h.transfer_rows()))
    [from_file] = _run(load_file, source=File(path=local))
    [from_dir] = _run(load_dir, source=Dir(path=folder))
    assert (from_file.uri, from_dir.uri) == (
        f"bq://{h.PROJECT}:{DATASET}.from_file",
        f"bq://{h.PROJECT}:{DATASET}.from_dir",
    )
    client = emulator.client()
    assert [client.get_table(f"{DATASET}.{t}").num_rows for t in ("from_file", "from_dir")] == [4, 4]


def test_a_source_off_cloud_storage_fails_the_local_run_naming_the_task_and_input(local: str) -> None:
    with pytest.raises(Exception, match=r"load_rows.*FAILED.*input 'source' is on a local path"):
        _run(load, source="/tmp/rows.parquet")
