"""Whether a query's result is ordered (the SQL decides), and the label that carries it to readers."""

from __future__ import annotations

from typing import Any

import pytest
from flyte_bigquery_core.identity import ExecutionIdentity
from flyte_bigquery_core.ordering import ORDERED_LABEL, is_ordered, orders_result
from flyte_bigquery_core.planning import QueryTask, plan_query
from flyte_bigquery_core.settings import Settings


@pytest.mark.parametrize(
    ("sql", "ordered"),
    [
        ("SELECT a FROM t ORDER BY a", True),
        ("select a from t order  by a desc", True),
        ("SELECT a FROM t ORDER BY a LIMIT 10", True),
        ("SELECT a FROM t ORDER BY a LIMIT 10 OFFSET 5;", True),
        ("SELECT a FROM t\nORDER\n-- why\nBY a", True),
        ("WITH x AS (SELECT a FROM t) SELECT a FROM x ORDER BY a", True),
        ("(SELECT 1 AS a) UNION ALL (SELECT 2) ORDER BY a", True),
        ("SELECT 1 AS a UNION ALL SELECT 2 ORDER BY a", True),
        ("FROM t |> ORDER BY a", True),
        ("CREATE TEMP TABLE x AS SELECT 1 AS a; SELECT a FROM x ORDER BY a", True),
        ("SELECT a FROM t", False),
        ("SELECT a, ROW_NUMBER() OVER (ORDER BY a) AS n FROM t", False),
        ("SELECT ARRAY_AGG(a ORDER BY b) FROM t", False),
        ("SELECT * FROM (SELECT a FROM t ORDER BY a)", False),
        ("WITH x AS (SELECT a FROM t ORDER BY a) SELECT a FROM x", False),
        ("SELECT a FROM t -- ORDER BY a", False),
        ("SELECT a FROM t /* ORDER BY a */", False),
        ("SELECT a FROM t # ORDER BY a", False),
        ("SELECT 'ORDER BY a' AS s FROM t", False),
        ('SELECT """x\nORDER BY a""" AS s', False),
        ("SELECT r'it\\'s ORDER BY' AS s", False),
        ("SELECT `order` FROM t", False),
        ("SELECT a FROM t ORDER BY a; SELECT a FROM t", False),
        ("INSERT INTO x SELECT a FROM t ORDER BY a", False),
        ("CREATE TABLE x AS SELECT a FROM t ORDER BY a", False),
        ("EXPORT DATA OPTIONS(uri='gs://b/*') AS SELECT a FROM t ORDER BY a", False),
        ("", False),
        ("-- nothing", False),
    ],
)
def test_an_order_by_of_the_outermost_query_orders_the_result(sql: str, ordered: bool) -> None:
    assert orders_result(sql) is ordered


@pytest.mark.parametrize(
    ("labels", "ordered"),
    [({ORDERED_LABEL: "true"}, True), ({ORDERED_LABEL: "false"}, False), ({}, False), (None, False)],
)
def test_a_table_is_read_in_order_only_when_labelled_so(labels: dict[str, str] | None, ordered: bool) -> None:
    assert is_ordered(labels) is ordered


FLYTE = ExecutionIdentity("flytesnacks", "development", "exec1", "n0", "wf.rows", 0)


def _query(sql: str, custom: dict[str, Any]) -> dict[str, Any]:
    fields = {"ProjectID": "proj", "Location": "EU", **custom}
    task = QueryTask("rows", fields, sql, output_name="results")
    return dict(plan_query(task, {}, FLYTE, Settings(), 1_700_000_000.0).resource["configuration"]["query"])


@pytest.mark.parametrize(
    ("sql", "custom", "properties"),
    [
        ("SELECT 1 AS a ORDER BY a", {"ResultsDataset": "res"}, {"labels": {ORDERED_LABEL: "true"}}),
        ("SELECT 1 AS a", {"ResultsDataset": "res"}, None),
        ("SELECT 1 AS a ORDER BY a", {}, None),  # anonymous table: nothing to label
        (
            "SELECT 1 AS a ORDER BY a",
            {
                "ResultsDataset": "res",
                "QueryJobConfig": {"query": {"destinationTableProperties": {"description": "d", "labels": {"k": "v"}}}},
            },
            {"description": "d", "labels": {"k": "v", ORDERED_LABEL: "true"}},
        ),
        (
            "SELECT 1 AS a ORDER BY a",
            {"ResultsDataset": "res", "QueryJobConfig": {"query": {"destinationTable": {"tableId": "mine"}}}},
            None,  # the user's own table: left as configured
        ),
    ],
)
def test_the_managed_results_table_of_an_ordered_query_is_labelled(
    sql: str, custom: dict[str, Any], properties: dict[str, Any] | None
) -> None:
    assert _query(sql, custom).get("destinationTableProperties") == properties
