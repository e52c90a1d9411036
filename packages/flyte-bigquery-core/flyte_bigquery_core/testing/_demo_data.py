"""The demo data set (``samples.daily_downloads``, :data:`DEMO_ROWS`) and loading it into an emulator."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flyte_bigquery_core.testing._emulator_process import Emulator

__all__ = ["DEMO_DATASET", "DEMO_ROWS", "DEMO_TABLE", "seed_demo"]

DEMO_DATASET = "samples"
DEMO_TABLE = "daily_downloads"


def _demo_rows() -> tuple[dict[str, Any], ...]:
    """Daily download counts for a few packages: a tiny, deterministic stand-in for a public dataset.

    3 packages x 2 versions x 5 days = 30 rows. The numbers follow a fixed formula (no randomness) so
    tests and the demo can compute the expected aggregates from :data:`DEMO_ROWS` itself.
    """
    packages = {
        "flytekit": (("1.15.4", 1_200), ("1.16.0", 2_600)),
        "pandas": (("2.2.3", 91_000), ("3.0.0", 48_500)),
        "pyarrow": (("17.0.0", 30_250), ("18.1.0", 44_100)),
    }
    first_day = dt.date(2025, 6, 1)
    rows = []
    for package, versions in packages.items():
        for version, base in versions:
            for offset in range(5):
                rows.append(
                    {
                        "package": package,
                        "version": version,
                        "downloads": base + 137 * offset * (1 + len(version)),
                        "day": (first_day + dt.timedelta(days=offset)).isoformat(),
                    }
                )
    return tuple(rows)


#: Contents of ``samples.daily_downloads`` after :meth:`Emulator.seed_demo` (``day`` as ISO text).
DEMO_ROWS: tuple[dict[str, Any], ...] = _demo_rows()


def seed_demo(emulator: Emulator) -> str:
    """Create ``samples.daily_downloads`` (:data:`DEMO_ROWS`), the table the demo workflow queries.

    Idempotent: the dataset is reused and the table contents replaced. Returns the table id
    ``project.samples.daily_downloads``.
    """
    from google.cloud import bigquery

    project = emulator.project
    table_id = f"{project}.{DEMO_DATASET}.{DEMO_TABLE}"
    client = emulator.client()
    try:
        client.create_dataset(bigquery.Dataset(f"{project}.{DEMO_DATASET}"), exists_ok=True)
        config = bigquery.LoadJobConfig(
            schema=[
                bigquery.SchemaField("package", "STRING", mode="REQUIRED"),
                bigquery.SchemaField("version", "STRING", mode="REQUIRED"),
                bigquery.SchemaField("downloads", "INT64", mode="REQUIRED"),
                bigquery.SchemaField("day", "DATE", mode="REQUIRED"),
            ],
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        )
        client.load_table_from_json(list(DEMO_ROWS), table_id, job_config=config).result(timeout=60)
    finally:
        client.close()
    return table_id
