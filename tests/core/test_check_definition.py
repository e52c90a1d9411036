"""Defining a check task (what both adapters' ``BigQueryCheckTask`` ask the core): the spec, the query, refusals."""

from __future__ import annotations

from typing import Any

import pytest
from flyte_bigquery_core.check_definition import define_check
from flyte_bigquery_core.checks import IntervalCheck, ValueCheck, interval_sql
from flyte_bigquery_core.errors import InvalidTaskError

INTERVAL = IntervalCheck("d.t", "day", {"COUNT(*)": 0.5}, days_back=7, date_input="day")


def _define(**kwargs: Any) -> Any:
    arguments: dict[str, Any] = {
        "severity": "fail",
        "value_checks": (),
        "interval": None,
        "query_template": None,
        "inputs": None,
        "declares_outputs": False,
    }
    return define_check("dq", **{**arguments, **kwargs})


def test_a_row_or_value_check_keeps_the_users_query_as_written() -> None:
    spec, query = _define(query_template="SELECT TRUE AS ok -- a comment\n", value_checks=[ValueCheck("n", 1)])
    assert query == "SELECT TRUE AS ok -- a comment\n"
    assert spec.values == (ValueCheck("n", 1),) and spec.severity == "fail"


def test_an_interval_check_generates_its_query() -> None:
    spec, query = _define(interval=INTERVAL, inputs={"day": object})
    assert query == interval_sql(INTERVAL) and spec.interval == INTERVAL


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"query_template": "SELECT TRUE AS ok", "severity": "loud"}, "severity 'loud' is not one of fail, warn"),
        ({"query_template": "  "}, "needs a query_template (or an interval check)"),
        ({"interval": INTERVAL}, "date_input 'day' is not an input of the task"),
        ({"interval": INTERVAL, "inputs": {"day": object}, "query_template": "SELECT 1"}, "generates its own query"),
        ({"query_template": "SELECT TRUE AS ok", "declares_outputs": True}, "a check task has no outputs"),
    ],
)
def test_bad_check_definitions_are_refused_naming_the_task(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(InvalidTaskError) as caught:
        _define(**kwargs)
    assert text in str(caught.value) and "'dq'" in str(caught.value)
