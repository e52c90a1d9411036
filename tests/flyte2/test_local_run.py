"""``flyte.with_runcontext(mode="local").run(...)`` end to end against the local BigQuery: the connector runs in
the caller's process, the result is read back through our ``bq://`` handlers, and a run that fails ends with
BigQuery's message instead of polling forever."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import flyte
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from flyte.io import DataFrame
from flyte_bigquery_core.settings import RETRY_SECONDS_ENV, current_settings
from flyte_bigquery_core.testing import Emulator
from flyte_bigquery_core.testing.faultproxy import FaultProxy
from flyteplugins.bigquery import BigQueryConfig, BigQueryTask

from .helpers import PROJECT

downloads = BigQueryTask(
    name="downloads_since",
    query_template="""-- the demo table, from a day on
SELECT day, downloads
FROM samples.daily_downloads
WHERE day >= @since
ORDER BY day""",
    plugin_config=BigQueryConfig(ProjectID=PROJECT),
    inputs={"since": datetime.date},
    output_dataframe_type=DataFrame,
)
failing = BigQueryTask(
    name="failing_query",
    query_template="SELECT * FROM no_such_dataset.no_such_table",
    plugin_config=BigQueryConfig(ProjectID=PROJECT),
)
env = flyte.TaskEnvironment.from_task("bq_env", downloads, failing)


@env.task
async def rows_read_as(since: datetime.date, library: str) -> int:
    """Runs the query task, then reads its result through the ``bq://`` handler of ``library``."""
    frame_type = {"pandas": pd.DataFrame, "pyarrow": pa.Table, "polars": pl.DataFrame}[library]
    frame = await (await downloads(since=since)).open(frame_type).all()
    assert isinstance(frame, frame_type)
    return len(frame)


@pytest.fixture(scope="module")
def local(emulator: Emulator) -> None:
    flyte.init()


def _run(task: Any, **inputs: Any) -> Any:
    return flyte.with_runcontext(mode="local").run(task, **inputs).outputs()


def test_a_query_task_runs_locally_and_returns_its_result_table(local: None) -> None:
    [result] = _run(downloads, since=datetime.date(2020, 1, 1))
    assert result.uri.startswith(f"bq://{PROJECT}:")


@pytest.mark.parametrize("library", ["pandas", "pyarrow", "polars"])
def test_a_workflow_reads_the_result_through_our_handlers(local: None, library: str) -> None:
    everything = _run(rows_read_as, since=datetime.date(2000, 1, 1), library=library)
    assert everything[0] > 0


def test_a_failing_query_fails_the_local_run_with_bigquerys_message(local: None) -> None:
    with pytest.raises(Exception, match=r"failing_query.*FAILED.*no_such"):
        _run(failing)


@pytest.fixture
def unavailable(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with FaultProxy(emulator.rest_url) as proxy:
        proxy.add_rule("status", "POST", r"/projects/[^/]+/jobs$", count=None, status=503)
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", proxy.url)
        monkeypatch.setenv(RETRY_SECONDS_ENV, "1")
        current_settings.cache_clear()
        yield


def test_a_retryable_failure_ends_the_local_run_instead_of_polling_forever(local: None, unavailable: None) -> None:
    with pytest.raises(Exception, match=r"downloads_since.*RETRYABLE_FAILED.*unavailable"):
        _run(downloads, since=datetime.date(2020, 1, 1))
