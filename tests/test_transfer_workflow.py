"""The transfer example (``examples/transfer_workflow.py``: Parquet file → load → query → extract → read back)
under the real ``pyflyte run``, against the local BigQuery and the GCS stand-in: flytekit uploads the file to
``gs://`` and downloads the extracted folder, the connector runs the three BigQuery jobs in-process."""

from __future__ import annotations

import fsspec
import pytest

from flytekitplugins.bigquery.testing import Emulator, GcsEmulator

from . import helpers as h


def test_the_transfer_example_runs_under_pyflyte_run(
    emulator: Emulator, gcs: GcsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRANSFER_DEMO_BUCKET", h.BUCKET)
    # The local BigQuery keeps the partition decorator in the table's name (see the example's docstring).
    monkeypatch.setenv("TRANSFER_DEMO_TABLE", "samples.downloads_by_day$20250601")
    proc = h.pyflyte_run(emulator, "examples/transfer_workflow.py", "wf", "--day", "2025-06-01")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [line.split()[1:] for line in proc.stdout.splitlines() if line.strip()[:1].isdigit()] == [
        ["pandas", "139500"],
        ["pyarrow", "74350"],
        ["flytekit", "3800"],
    ]
    gs = fsspec.filesystem("gs")
    assert gs.ls(f"{h.BUCKET}/exports/top_packages", refresh=True) == [
        f"{h.BUCKET}/exports/top_packages/part-000000000000.parquet"
    ]
    assert gs.exists(f"{h.BUCKET}/staging/downloads-20250601.parquet")
