"""BigQuery from Flyte 2, as in upstream's ``flyteplugins-bigquery`` docs — with the dataset swapped for a seeded one.

Run it against a local BigQuery with ``make demo`` (after the flytekit demo); against real BigQuery with
``DO_NOT_TRACK=1 GOOGLE_CLOUD_PROJECT=<your project> python examples/flyte2_demo.py`` in a venv with
``flyteplugins-bigquery`` (``make flyte2-venv``), after creating the ``samples.daily_downloads`` table.
"""

import os

import flyte
import pandas as pd
from flyte.io import DataFrame
from flyteplugins.bigquery import BigQueryConfig, BigQueryTask

PROJECT = os.environ.get("GOOGLE_CLOUD_PROJECT", "my-gcp-project")

# ``@version`` is a named query parameter, so the value never becomes SQL text; the comment stays a comment.
top_packages = BigQueryTask(
    name="top_packages",
    query_template="""
        -- the busiest packages for one release
        SELECT package, version, downloads
        FROM samples.daily_downloads
        WHERE version = @version
        ORDER BY downloads DESC, package
        LIMIT 10
    """,
    plugin_config=BigQueryConfig(ProjectID=PROJECT),
    inputs={"version": str},
    output_dataframe_type=DataFrame,
)

env = flyte.TaskEnvironment.from_task("bq_env", top_packages)


@env.task
async def busiest(version: str) -> str:
    frame = await (await top_packages(version=version)).open(pd.DataFrame).all()
    return frame.to_string(index=False)


if __name__ == "__main__":
    flyte.init()
    print(flyte.with_runcontext(mode="local").run(busiest, version="1.16.0").outputs()[0])
