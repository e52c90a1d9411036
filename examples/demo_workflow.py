"""BigQuery from Flyte, as in the public plugin's docs — with the dataset swapped for a seeded one.

Run it against a local BigQuery with ``make demo``; against real BigQuery with
``GOOGLE_CLOUD_PROJECT=<your project> pyflyte run examples/demo_workflow.py wf`` after creating the
``samples.daily_downloads`` table (or point the query at a table of yours).
"""

import os
from typing import Annotated

import pandas as pd
from flytekit import StructuredDataset, kwtypes, task, workflow

from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask

PROJECT = os.environ.get("GOOGLE_CLOUD_PROJECT", "my-gcp-project")

# A query without inputs or outputs: it runs, and the task succeeds when the job does.
bigquery_task_no_io = BigQueryTask(
    name="sql.bigquery.no_io",
    inputs={},
    query_template="SELECT 1",
    task_config=BigQueryConfig(ProjectID=PROJECT),
)

DownloadsDataset = Annotated[StructuredDataset, kwtypes(package=str, version=str, downloads=int)]

# A templated query: ``@version`` is a named query parameter, so the value never becomes SQL text.
bigquery_task_templatized_query = BigQueryTask(
    name="sql.bigquery.w_io",
    inputs=kwtypes(version=str),
    output_structured_dataset_type=DownloadsDataset,
    task_config=BigQueryConfig(ProjectID=PROJECT),
    query_template="""
        -- the busiest packages for one release
        SELECT package, version, downloads
        FROM samples.daily_downloads
        WHERE version = @version
        ORDER BY downloads DESC, package
        LIMIT 10;
    """,
)


@task
def convert_bq_table_to_pandas_dataframe(sd: DownloadsDataset) -> pd.DataFrame:
    return sd.open(pd.DataFrame).all()


@workflow
def full_bigquery_wf(version: str) -> pd.DataFrame:
    sd = bigquery_task_templatized_query(version=version)
    return convert_bq_table_to_pandas_dataframe(sd=sd)


@workflow
def wf(version: str = "1.16.0") -> pd.DataFrame:
    bigquery_task_no_io()
    return full_bigquery_wf(version=version)
