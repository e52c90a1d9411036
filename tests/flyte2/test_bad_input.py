"""Bad input through the Flyte 2 connector: refused before anything is submitted, reported by ``get`` as a
failure whose message names the task, the input and what was expected (never the value); pickles decoded only by
the core's restricted reader; BigQuery unavailable through the retry budget is a retryable failure."""

from __future__ import annotations

import datetime
import decimal
import os
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from flyte.io import DataFrame
from flyte_bigquery_core.settings import RETRY_SECONDS_ENV, Settings
from flyte_bigquery_core.testing import Emulator
from flyte_bigquery_core.testing.faultproxy import FaultProxy
from flyteidl2.core import literals_pb2
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteplugins.bigquery import BigQueryConfig, BigQueryConnector, BigQueryTask
from google.cloud import bigquery

from .helpers import PROJECT, create, execution_metadata, new_execution, rows_of, run, template_of, wait


@pytest.fixture
def connector(emulator: Emulator) -> BigQueryConnector:
    return BigQueryConnector()


def _task(sql: str, inputs: dict[str, Any]) -> BigQueryTask:
    return BigQueryTask(
        name="bad_input_task",
        query_template=sql,
        plugin_config=BigQueryConfig(ProjectID=PROJECT),
        inputs=inputs,
        output_dataframe_type=DataFrame,
    )


# (declared type, value, what the message must say besides the task and the input)
MISMATCHES = [
    (int, "seven", r"declared as int but holds a str"),
    (datetime.date, "yesterday", r"expected a date value"),
    (list[int], 5, r"holds a int, but it is a list"),
    (decimal.Decimal, decimal.Decimal("NaN"), r"NaN and Infinity"),
]


@pytest.mark.parametrize(("declared", "value", "expected"), MISMATCHES, ids=lambda v: repr(v)[:30])
def test_a_value_that_does_not_fit_its_type_fails_naming_task_input_and_expectation(
    connector: BigQueryConnector, bq_client: bigquery.Client, declared: Any, value: Any, expected: str
) -> None:
    meta, resource = run(connector, _task("SELECT @x AS x", {"x": declared}), x=value)
    assert resource.phase == TaskExecution.FAILED
    assert "'bad_input_task'" in resource.message and "input 'x'" in resource.message, resource.message
    assert re.search(expected, resource.message), resource.message
    assert meta.job_id == ""  # nothing was submitted


def test_a_parameter_the_query_uses_but_the_task_does_not_declare_is_refused(connector: BigQueryConnector) -> None:
    meta, resource = run(connector, _task("SELECT @missing, @x", {"x": int}), x=1)
    assert resource.phase == TaskExecution.FAILED and meta.job_id == ""
    assert "'bad_input_task'" in resource.message and "@missing" in resource.message
    assert "declared inputs: x" in resource.message


def test_a_template_value_that_is_no_identifier_is_refused(connector: BigQueryConnector) -> None:
    _, resource = run(connector, _task("SELECT * FROM {{ .inputs.t }}", {"t": str}), t="x; DROP TABLE y")
    assert resource.phase == TaskExecution.FAILED
    assert "'bad_input_task'" in resource.message and "'t'" in resource.message


def _inline_pickle(value: object) -> literals_pb2.Literal:
    """A value as Flyte 2 carries a small pickle: an untagged ``Binary`` literal."""
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(binary=literals_pb2.Binary(value=cloudpickle.dumps(value))))


def test_a_value_still_pickled_is_decoded_by_the_restricted_reader(
    connector: BigQueryConnector, bq_client: bigquery.Client
) -> None:
    _, resource = run(
        connector, _task("SELECT @d AS d", {"d": decimal.Decimal}), d=_inline_pickle(decimal.Decimal("2.5"))
    )
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert rows_of(bq_client, resource.outputs["results"].uri) == [{"d": decimal.Decimal("2.5")}]


class _Payload:
    """Unpickling this would run ``os.system``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_never_runs_and_is_refused_naming_the_input(
    connector: BigQueryConnector, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    literal = literals_pb2.Literal(
        scalar=literals_pb2.Scalar(binary=literals_pb2.Binary(value=pickle.dumps(_Payload(marker))))
    )
    meta, resource = run(connector, _task("SELECT @b AS b", {"b": bytes}), b=literal)
    assert not marker.exists()
    assert resource.phase == TaskExecution.FAILED and meta.job_id == ""
    assert "'bad_input_task'" in resource.message and "input 'b'" in resource.message
    assert "refusing to unpickle" in resource.message


@pytest.fixture
def unavailable(emulator: Emulator) -> Iterator[BigQueryConnector]:
    """A connector whose BigQuery always answers ``jobs.insert`` with 503, with a one-second retry budget."""
    with FaultProxy(emulator.rest_url) as proxy:
        proxy.add_rule("status", "POST", r"/projects/[^/]+/jobs$", count=None, status=503)
        environ = {**os.environ, "BIGQUERY_EMULATOR_HOST": proxy.url, RETRY_SECONDS_ENV: "1"}
        yield BigQueryConnector(Settings.from_env(environ))


def test_bigquery_unavailable_through_the_retry_budget_is_a_retryable_failure(
    unavailable: BigQueryConnector,
) -> None:
    template = template_of(_task("SELECT @x AS x", {"x": int}))
    meta = create(unavailable, template, execution_metadata(new_execution()), x=1)
    resource = wait(unavailable, meta)
    assert resource.phase == TaskExecution.RETRYABLE_FAILED, resource.message
    assert meta.retryable and meta.job_id == ""
