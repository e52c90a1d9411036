"""The placeholder rules as planning applies them: refused before anything is submitted, unless opted in."""

from __future__ import annotations

from typing import Any

import pytest
from flyte_bigquery_core.errors import InvalidTaskError
from flyte_bigquery_core.identity import ExecutionIdentity
from flyte_bigquery_core.planning import QueryTask, plan_query
from flyte_bigquery_core.settings import Settings

IDENTITY = ExecutionIdentity("flytesnacks", "development", "exec1", "n0", "wf.pick", 0)
SQL = "SELECT * FROM {{ .inputs.table }} WHERE {{ .inputs.cond }}"
INPUT_TYPES = {"table": "STRING", "cond": "STRING"}

# (custom RawTemplateInputs, table, cond, the statement planned or None when refused)
ROWS = [
    (None, "ds.t", "ok", "SELECT * FROM ds.t WHERE ok"),
    (None, "ds.t; DROP TABLE ds.x", "ok", None),
    (None, "ds.t", "1=1 --", None),
    (["cond"], "ds.t", "x > 1", "SELECT * FROM ds.t WHERE x > 1"),
    (["cond"], "ds.t; DROP TABLE ds.x", "x > 1", None),
    (True, "ds.t; DROP TABLE ds.x", "x > 1", "SELECT * FROM ds.t; DROP TABLE ds.x WHERE x > 1"),
]


@pytest.mark.parametrize(("raw", "table", "cond", "statement"), ROWS)
def test_plan_renders_identifiers_and_only_opted_in_fragments(
    raw: Any, table: str, cond: str, statement: str | None
) -> None:
    custom: dict[str, Any] = {"ProjectID": "proj", "Location": "EU", "InputTypes": INPUT_TYPES}
    if raw is not None:
        custom["RawTemplateInputs"] = raw
    task = QueryTask("pick", custom, SQL)
    values = {"table": table, "cond": cond}
    if statement is None:
        with pytest.raises(InvalidTaskError, match=r"'pick'.*@"):
            plan_query(task, values, IDENTITY, Settings(), 1_700_000_000.0)
    else:
        plan = plan_query(task, values, IDENTITY, Settings(), 1_700_000_000.0)
        assert plan.resource["configuration"]["query"]["query"] == statement
