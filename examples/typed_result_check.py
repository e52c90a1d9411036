"""Gate a pipeline on BigQuery without a pod: wait for a table, read a small typed result, branch on it, check it.

Every BigQuery step here runs in the connector (no container is started for it):

1. ``downloads_ready`` — a sensor: waits until the table exists (``tables.get``, 0 bytes scanned);
2. ``latest_day`` — a query whose outputs are typed values read from its single row (``day``, ``total``);
3. a ``conditional`` branches on ``total``, as only a typed result allows;
4. ``day_over_day`` — a data-quality check: the latest day's downloads against the day before, within 400 %,
   and a row check that no count is NULL (severity ``warn``: it reports and lets the run go on).

Run it against a local BigQuery with ``make demo-checks`` (which seeds ``samples.daily_downloads``); against real
BigQuery with ``GOOGLE_CLOUD_PROJECT=<your project> pyflyte run examples/typed_result_check.py wf`` once that table
exists (or point the queries at a table of yours). Self-contained: it shares nothing with the other examples, so
its tasks can be dropped into another workflow as they are.
"""

import datetime
import os

from flytekit import conditional, task, workflow

from flytekitplugins.bigquery import (
    BigQueryCheckTask,
    BigQueryConfig,
    BigQueryTableSensor,
    BigQueryTask,
    IntervalCheck,
)

PROJECT = os.environ.get("GOOGLE_CLOUD_PROJECT", "my-gcp-project")
CONFIG = BigQueryConfig(ProjectID=PROJECT, Location="US", MaximumBytes="1 GiB")

downloads_ready = BigQueryTableSensor(
    name="checks.downloads_ready",
    task_config=CONFIG,
    table="samples.daily_downloads",
    timeout=datetime.timedelta(minutes=30),
)

# Each output reads the column of its name from the single row the query returns.
latest_day = BigQueryTask(
    name="checks.latest_day",
    query_template="""
        SELECT day, SUM(downloads) AS total
        FROM samples.daily_downloads
        GROUP BY day
        ORDER BY day DESC
        LIMIT 1
    """,
    task_config=CONFIG,
    outputs={"day": datetime.date, "total": int},
)

# The query is generated: SUM(downloads) on `day` against one day before; a change over 400 % fails the check.
day_over_day = BigQueryCheckTask(
    name="checks.day_over_day",
    task_config=CONFIG,
    interval=IntervalCheck(
        table="samples.daily_downloads",
        date_expression="day",
        metrics={"SUM(downloads)": 4.0, "COUNT(*)": 1.0},
        days_back=1,
        date_input="day",
    ),
    inputs={"day": datetime.date},
    severity="warn",
)


@task
def report(day: datetime.date, total: int, busy: bool) -> str:
    return f"{day}: {total} downloads ({'a busy day' if busy else 'a quiet day'})"


@workflow
def wf() -> str:
    ready = downloads_ready()
    day, total = latest_day()
    ready >> day
    checked = day_over_day(day=day)
    summary = (
        conditional("busy")
        .if_(total > 10_000)
        .then(report(day=day, total=total, busy=True))
        .else_()
        .then(report(day=day, total=total, busy=False))
    )
    checked >> summary
    return summary
