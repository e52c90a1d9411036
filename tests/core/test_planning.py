"""Planning a query job: a synchronous function over plain values, so no event loop and no server."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from flyte_bigquery_core.errors import InvalidTaskError, PermanentError, UnsupportedInputError
from flyte_bigquery_core.identity import ExecutionIdentity
from flyte_bigquery_core.planning import QueryTask, plan_query
from flyte_bigquery_core.settings import Settings
from flyte_bigquery_core.sources import SourceRef

NOW = 1_700_000_000.0
FLYTE = ExecutionIdentity("flytesnacks", "development", "exec1", "n0", "wf.count", 0)
LOCAL = ExecutionIdentity("", "", "", "", "count", 0)
SQL = "-- how many?\nSELECT COUNT(*) FROM t WHERE d = @day AND n > @n"
VALUES = {"day": datetime.date(2024, 1, 2), "n": 3}


def _task(custom: dict[str, Any] | None = None, sql: str | None = SQL, **kwargs: Any) -> QueryTask:
    fields = {"ProjectID": "proj", "Location": "EU", "InputTypes": {"day": "DATE", "n": "INT64"}}
    return QueryTask("count", {**fields, **(custom or {})}, sql, **kwargs)


def _plan(task: QueryTask | None = None, values: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    identity = kwargs.pop("identity", FLYTE)
    settings = kwargs.pop("settings", Settings())
    return plan_query(task or _task(), VALUES if values is None else values, identity, settings, NOW)


def test_the_statement_is_sent_as_written() -> None:
    assert _plan().resource["configuration"]["query"]["query"] == SQL


def test_inputs_become_named_parameters_of_their_declared_types() -> None:
    query = _plan().resource["configuration"]["query"]
    assert query["parameterMode"] == "NAMED"
    assert query["queryParameters"] == [
        {"name": "day", "parameterType": {"type": "DATE"}, "parameterValue": {"value": "2024-01-02"}},
        {"name": "n", "parameterType": {"type": "INT64"}, "parameterValue": {"value": "3"}},
    ]


def test_googlesql_is_the_default_dialect() -> None:
    assert _plan().resource["configuration"]["query"]["useLegacySql"] is False


def test_the_job_reference_names_project_location_and_job_id() -> None:
    plan = _plan()
    assert plan.resource["jobReference"] == {"projectId": "proj", "jobId": plan.job_id, "location": "EU"}


def test_job_ids_are_deterministic_per_attempt() -> None:
    first, again = _plan(), _plan()
    retried = _plan(identity=ExecutionIdentity("flytesnacks", "development", "exec1", "n0", "wf.count", 1))
    assert first.job_id == again.job_id
    assert retried.job_id != first.job_id and retried.fingerprint == first.fingerprint
    assert first.job_id.startswith("flyte-exec1-n0-a0-")


def test_other_values_make_another_job() -> None:
    assert _plan(values={**VALUES, "n": 4}).job_id != _plan().job_id


def test_a_local_run_gets_a_unique_job_id() -> None:
    assert _plan(identity=LOCAL).job_id != _plan(identity=LOCAL).job_id


def test_labels_merge_defaults_then_flyte_then_the_tasks_own() -> None:
    task = _task({"QueryJobConfig": {"labels": {"team": "data", "flyte_node": "mine"}, "query": {}}})
    settings = Settings(default_labels={"team": "platform", "cost_center": "42"})
    labels = _plan(task, settings=settings).resource["configuration"]["labels"]
    assert labels["team"] == "data" and labels["cost_center"] == "42"
    assert labels["flyte_node"] == "mine" and labels["flyte_execution"] == "exec1"


def test_a_parameter_the_query_uses_but_no_input_declares_is_refused() -> None:
    with pytest.raises(PermanentError, match=r"task 'count'.*@missing.*declared inputs: day, n"):
        _plan(_task(sql="SELECT @day, @n, @missing"))


def test_a_task_without_sql_is_refused() -> None:
    with pytest.raises(InvalidTaskError, match=r"task 'count'.*no SQL statement"):
        _plan(_task(sql="  "))


def test_legacy_sql_with_parameters_is_refused() -> None:
    task = _task({"QueryJobConfig": {"query": {"useLegacySql": True}}})
    with pytest.raises(InvalidTaskError, match="legacy SQL"):
        _plan(task)


def test_an_input_of_the_wrong_type_is_refused_without_its_value() -> None:
    with pytest.raises(UnsupportedInputError) as caught:
        _plan(values={"day": datetime.date(2024, 1, 2), "n": "s3cret"})
    assert "'n'" in str(caught.value) and "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("task_limit", "config_limit", "connector_limit", "enforced"),
    [
        (None, None, None, None),
        ("1 KiB", None, None, 1024),
        (None, "500", None, 500),
        ("1 KiB", "500", None, 500),
        (None, None, 2048, 2048),
        ("1 KiB", None, 2048, 1024),
    ],
)
def test_the_smallest_byte_limit_is_enforced_and_sent(
    task_limit: str | None, config_limit: str | None, connector_limit: int | None, enforced: int | None
) -> None:
    custom: dict[str, Any] = {"QueryJobConfig": {"query": {"maximumBytesBilled": config_limit}}} if config_limit else {}
    if task_limit:
        custom["MaximumBytes"] = task_limit
    plan = _plan(_task(custom), settings=Settings(maximum_bytes=connector_limit))
    assert plan.policy.maximum_bytes == enforced
    sent = plan.resource["configuration"]["query"].get("maximumBytesBilled")
    assert sent == (str(enforced) if enforced is not None else None)
    assert plan.policy.dry_run_first is (enforced is not None)


def test_the_tasks_timeout_becomes_the_job_timeout_and_a_deadline() -> None:
    plan = _plan(_task(timeout_seconds=90.0))
    assert plan.resource["configuration"]["jobTimeoutMs"] == "90000"
    assert plan.deadline == NOW + 90.0


def test_a_configured_job_timeout_wins() -> None:
    plan = _plan(_task({"QueryJobConfig": {"jobTimeoutMs": "5000", "query": {}}}, timeout_seconds=90.0))
    assert plan.resource["configuration"]["jobTimeoutMs"] == "5000"


def test_a_declared_output_goes_to_the_managed_results_table() -> None:
    plan = _plan(_task({"ResultsDataset": "results"}, output_name="results"))
    query = plan.resource["configuration"]["query"]
    assert query["destinationTable"] == {"projectId": "proj", "datasetId": "results", "tableId": plan.job_id}
    assert query["writeDisposition"] == "WRITE_TRUNCATE"
    assert plan.writes_managed_table


@pytest.mark.parametrize(
    ("custom", "output_name"),
    [
        ({"ResultsDataset": "results"}, None),  # no output declared
        ({"ResultsDataset": "results", "QueryJobConfig": {"dryRun": True, "query": {}}}, "results"),
        (
            {
                "ResultsDataset": "results",
                "QueryJobConfig": {"query": {"destinationTable": {"projectId": "p", "datasetId": "d", "tableId": "t"}}},
            },
            "results",
        ),
    ],
    ids=["no-output", "dry-run", "explicit-destination"],
)
def test_the_managed_results_table_is_not_written(custom: dict[str, Any], output_name: str | None) -> None:
    plan = _plan(_task(custom, output_name=output_name))
    assert not plan.writes_managed_table
    assert plan.resource["configuration"]["query"].get("destinationTable", {}).get("tableId") != plan.job_id


def test_the_connector_results_dataset_is_the_default() -> None:
    plan = _plan(_task(output_name="results"), settings=Settings(results_dataset="other.shared"))
    assert plan.results is not None and (plan.results.project, plan.results.dataset) == ("other", "shared")


def test_upstream_templates_without_input_types_infer_from_values() -> None:
    task = QueryTask("count", {"ProjectID": "proj"}, "SELECT @n", None)
    assert _plan(task, values={"n": 3}).resource["configuration"]["query"]["queryParameters"] == [
        {"name": "n", "parameterType": {"type": "INT64"}, "parameterValue": {"value": "3"}}
    ]


def test_a_malformed_configured_byte_limit_is_refused() -> None:
    with pytest.raises(InvalidTaskError, match=r"task 'count': .*maximum_bytes_billed"):
        _plan(_task({"QueryJobConfig": {"query": {"maximumBytesBilled": "lots"}}}))


@pytest.mark.parametrize(
    ("configured", "resolved", "expected"),
    [(None, "europe-west2", "europe-west2"), ("EU", "EU", "EU"), (None, None, None)],
    ids=["resolved", "configured", "unknown"],
)
def test_the_jobs_location_is_the_configured_or_resolved_one(
    configured: str | None, resolved: str | None, expected: str | None
) -> None:
    plan = _plan(_task({"Location": configured})).located(resolved)
    assert plan.location == expected and plan.resource["jobReference"].get("location") == expected


def test_a_resolved_location_keeps_the_job_id_fingerprint_and_configuration() -> None:
    plan = _plan(_task({"Location": None, "ResultsDataset": "results"}, output_name="results"))
    located = plan.located("europe-west2")
    assert (located.job_id, located.fingerprint) == (plan.job_id, plan.fingerprint)
    assert located.resource["configuration"] == plan.resource["configuration"]
    assert "location" not in plan.resource["jobReference"]  # the unlocated plan is left as it was


@pytest.mark.parametrize(
    ("custom", "output_name", "destination"),
    [
        ({"ResultsDataset": "results"}, "results", None),  # the managed table may not exist yet: left out
        (
            {"QueryJobConfig": {"query": {"destinationTable": {"projectId": "p", "datasetId": "d", "tableId": "t"}}}},
            "results",
            "d",
        ),  # the user's own destination is part of the query
        ({}, "results", None),
    ],
    ids=["managed", "explicit", "anonymous"],
)
def test_the_dry_run_leaves_out_only_the_managed_results_table(
    custom: dict[str, Any], output_name: str, destination: str | None
) -> None:
    plan = _plan(_task(custom, output_name=output_name))
    query = plan.dry_run_resource["configuration"]["query"]
    assert (query.get("destinationTable") or {}).get("datasetId") == destination
    assert query["query"] == SQL and plan.dry_run_resource["jobReference"] == plan.resource["jobReference"]


@pytest.mark.parametrize(
    "value", [SourceRef("file", "gs://b/f.csv"), [SourceRef("directory", "gs://b/d")]], ids=["file", "in-a-list"]
)
def test_a_file_directory_or_dataset_input_is_no_query_parameter(value: Any) -> None:
    with pytest.raises(UnsupportedInputError, match="input 'n': files, directories and structured datasets") as e:
        _plan(_task(sql="SELECT 1"), {"n": value})
    assert "gs://" not in str(e.value)
