"""Data in and out of BigQuery, with no pod for the BigQuery steps: load a Parquet file into a partitioned,
clustered table, count what arrived as a small typed result, gate the run on a data-quality check, query the
table, and extract the result to Cloud Storage as Parquet files.

Each BigQuery step is its own task and runs as one BigQuery job through the connector, so every step keeps the
query task's guarantees (one job per attempt, Flyte labels, statistics, cancellation). Add steps by adding
tasks between ``top`` and ``export`` (the query's ``results`` feeds the extract).

Run it against the local BigQuery and a local GCS with ``make demo``. Against Google Cloud::

    export GOOGLE_CLOUD_PROJECT=<project> TRANSFER_DEMO_BUCKET=<bucket>
    pyflyte run examples/transfer_workflow.py wf --day 2025-06-01

(the table is written into the dataset ``samples``, which must exist).
"""

import datetime as dt
import os
import tempfile

import pandas as pd
from flytekit import StructuredDataset, kwtypes, task, workflow
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile

from flytekitplugins.bigquery import (
    BigQueryCheckTask,
    BigQueryConfig,
    BigQueryExtractTask,
    BigQueryLoadTask,
    BigQueryTask,
    TimePartitioning,
)

PROJECT = os.environ.get("GOOGLE_CLOUD_PROJECT", "my-gcp-project")
BUCKET = os.environ.get("TRANSFER_DEMO_BUCKET", "flyte-demo")
CONFIG = BigQueryConfig(ProjectID=PROJECT, Location="US")


@task
def make_parquet(staging: str, day: dt.date) -> FlyteFile:
    """A day of package downloads as a Parquet file, uploaded to ``staging`` (a gs:// folder)."""
    frame = pd.DataFrame(
        {
            "package": ["flytekit", "pandas", "pyarrow", "flytekit", "pandas", "pyarrow"],
            "version": ["1.16.0", "3.0.0", "18.1.0", "1.15.4", "2.2.3", "17.0.0"],
            "downloads": [2600, 48500, 44100, 1200, 91000, 30250],
            "day": [day] * 6,
        }
    )
    local = os.path.join(tempfile.mkdtemp(), "downloads.parquet")
    frame.to_parquet(local, index=False)
    return FlyteFile(path=local, remote_path=f"{staging.rstrip('/')}/downloads-{day:%Y%m%d}.parquet")


# Load: the file replaces the day's partition (the `partition` input) of a day-partitioned table clustered by
# package, atomically (WRITE_TRUNCATE on a partition); the output is the table as bq://.
load = BigQueryLoadTask(
    name="transfer.load",
    task_config=CONFIG,
    destination="samples.downloads_by_day",
    source_type=FlyteFile,
    partition_type=dt.date,
    source_format="PARQUET",
    schema={"package": "STRING", "version": "STRING", "downloads": "INT64", "day": "DATE"},
    write_disposition="WRITE_TRUNCATE",
    time_partitioning=TimePartitioning(type="DAY", field="day"),
    clustering=["package"],
)

# Query: downloads per package. On the local BigQuery, which keeps a partition decorator as part of the table
# name, the rows of day 2025-06-01 are in `downloads_by_day$20250601`; on BigQuery they are in `downloads_by_day`.
TABLE = os.environ.get("TRANSFER_DEMO_TABLE", "samples.downloads_by_day")
# A small typed result: the connector reads the query's single row into `rows` and `downloads` (no pod, no table).
counted = BigQueryTask(
    name="transfer.count_loaded",
    inputs=kwtypes(),
    task_config=CONFIG,
    outputs={"rows": int, "downloads": int},
    query_template=f"SELECT COUNT(*) AS rows, SUM(downloads) AS downloads FROM `{TABLE}`",
)

# A data-quality gate: every column of the single row must be TRUE, or the task fails (severity "fail"), naming
# the checks that did not hold; it is priced by a dry run first.
quality = BigQueryCheckTask(
    name="transfer.quality",
    task_config=CONFIG,
    inputs={"rows": int},
    query_template=f"""
        SELECT
            @rows > 0 AND COUNT(*) = @rows AS every_row_loaded,
            COUNTIF(package IS NULL) = 0 AS every_package_named,
            COUNTIF(downloads < 0) = 0 AS no_negative_downloads
        FROM `{TABLE}`
    """,
)

top = BigQueryTask(
    name="transfer.top_packages",
    inputs=kwtypes(),
    output_structured_dataset_type=StructuredDataset,
    task_config=CONFIG,
    query_template=f"""
        SELECT package, SUM(downloads) AS downloads
        FROM `{TABLE}`
        GROUP BY package
        ORDER BY downloads DESC, package
    """,
)

# Extract: the query's result table as Snappy-compressed Parquet files in a gs:// folder.
export = BigQueryExtractTask(
    name="transfer.export",
    task_config=CONFIG,
    destination=f"gs://{BUCKET}/exports/top_packages",
    source_type=StructuredDataset,
    destination_format="PARQUET",
    compression="SNAPPY",
)


@task
def read_export(folder: FlyteDirectory) -> pd.DataFrame:
    """The extracted files, read back from Cloud Storage."""
    local = folder.download()
    files = sorted(os.path.join(local, name) for name in os.listdir(local) if name.endswith(".parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


@workflow
def wf(day: dt.date, staging: str = f"gs://{BUCKET}/staging") -> pd.DataFrame:
    loaded = load(source=make_parquet(staging=staging, day=day), partition=day)
    rows, _ = counted()
    loaded >> rows  # the count reads the loaded table
    checked = quality(rows=rows)
    results = top()
    checked >> results  # the query runs only on data that passed the check
    return read_export(folder=export(source=results))
