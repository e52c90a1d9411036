"""Task custom fields → the job configuration (BigQuery's REST ``configuration``) that reaches BigQuery."""

from typing import Any

import pytest
from flyte_bigquery_core.errors import InvalidTaskError
from flyte_bigquery_core.jobconfig import TaskSettings, job_configuration, settings_from_custom
from flyteidl.core.execution_pb2 import TaskExecution
from google.cloud import bigquery

from flytekitplugins.bigquery.metadata import BigQueryMetadata

_SQL = "SELECT @x AS x"

_UPSTREAM_CUSTOM = {
    "Location": "EU",
    "ProjectID": "proj",
    "Domain": "development",
    # what upstream flattens from QueryJobConfig(...).to_api_repr()["query"]
    "priority": "BATCH",
    "useQueryCache": False,
    "maximumBytesBilled": "1000000",
    "defaultDataset": {"projectId": "proj", "datasetId": "ds"},
}


def _configuration(
    settings: TaskSettings,
    parameters: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
    sql: str = _SQL,
) -> dict[str, Any]:
    return job_configuration(settings, sql, parameters or [], labels or {}, "t")


def test_upstream_flattened_fields_reach_the_job_configuration() -> None:
    settings = settings_from_custom(_UPSTREAM_CUSTOM, "t")
    query = _configuration(settings)["query"]
    assert query["priority"] == "BATCH"
    assert query["useQueryCache"] is False
    assert query["maximumBytesBilled"] == "1000000"
    assert query["defaultDataset"] == {"projectId": "proj", "datasetId": "ds"}
    assert (settings.project, settings.location, settings.domain) == ("proj", "EU", "development")


def test_the_statement_is_the_templates_and_standard_sql_is_the_default() -> None:
    query = _configuration(settings_from_custom({"ProjectID": "p", "query": "SELECT 'stale'"}, "t"))["query"]
    assert query["query"] == _SQL
    assert query["useLegacySql"] is False


def test_full_config_is_preferred_and_keeps_job_level_fields() -> None:
    user = bigquery.QueryJobConfig(labels={"team": "data"}, dry_run=True, job_timeout_ms=5000, priority="BATCH")
    custom = {"ProjectID": "proj", **user.to_api_repr()["query"], "QueryJobConfig": user.to_api_repr()}
    configuration = _configuration(settings_from_custom(custom, "t"))
    assert configuration["dryRun"] is True
    assert configuration["jobTimeoutMs"] == "5000"
    assert configuration["labels"] == {"team": "data"}
    assert configuration["query"]["priority"] == "BATCH"


def test_the_tasks_settings_are_not_written_into() -> None:
    user = bigquery.QueryJobConfig(labels={"team": "data"}, priority="BATCH")
    settings = settings_from_custom({"ProjectID": "p", "QueryJobConfig": user.to_api_repr()}, "t")
    _configuration(settings, [_X_IS_2], {"flyte_node": "n0"})
    assert settings.job_config == user.to_api_repr()


@pytest.mark.parametrize("custom", [{}, {"ProjectID": ""}, {"ProjectID": "   "}, {"ProjectID": 3}, None])
def test_missing_project_names_the_task(custom: dict | None) -> None:
    with pytest.raises(InvalidTaskError, match=r"'my_task'.*ProjectID"):
        settings_from_custom(custom, "my_task")


def test_the_tasks_labels_win_over_the_connectors_and_flytes() -> None:
    user = bigquery.QueryJobConfig(labels={"team": "data"})
    custom = {"ProjectID": "p", "QueryJobConfig": user.to_api_repr()}
    given = {"team": "platform", "cost_center": "42", "flyte_node": "n0"}  # connector defaults < Flyte's labels
    configuration = _configuration(settings_from_custom(custom, "t"), labels=given)
    assert configuration["labels"] == {"team": "data", "cost_center": "42", "flyte_node": "n0"}


def test_a_task_label_bigquery_would_refuse_is_sanitized() -> None:
    custom = {"ProjectID": "p", "QueryJobConfig": {"labels": {"Cost Center": "Team A/B"}, "query": {}}}
    configuration = _configuration(settings_from_custom(custom, "t"))
    assert configuration["labels"] == {"cost_center": "team_a_b"}


def test_two_task_labels_that_sanitize_alike_are_refused_naming_both() -> None:
    custom = {"ProjectID": "p", "QueryJobConfig": {"labels": {"Team": "a", "team": "b"}, "query": {}}}
    with pytest.raises(InvalidTaskError, match=r"task 't'.*labels.*'Team' and 'team'.*'team'"):
        _configuration(settings_from_custom(custom, "t"))


_X_IS_2 = {"name": "x", "parameterType": {"type": "INT64"}, "parameterValue": {"value": "2"}}


def test_parameters_replace_stale_config_parameters() -> None:
    stale = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("x", "INT64", 1)])
    custom = {"ProjectID": "p", **stale.to_api_repr()["query"]}
    query = _configuration(settings_from_custom(custom, "t"), [_X_IS_2])["query"]
    assert query["queryParameters"] == [_X_IS_2]
    assert query["parameterMode"] == "NAMED"


def test_rest_parameters_are_what_the_client_library_reads_as_its_own() -> None:
    configuration = _configuration(settings_from_custom({"ProjectID": "p"}, "t"), [_X_IS_2])
    config = bigquery.QueryJobConfig.from_api_repr(configuration)
    assert isinstance(config, bigquery.QueryJobConfig)
    assert config.query_parameters == [bigquery.ScalarQueryParameter("x", "INT64", 2)]


def test_no_parameters_leave_none_in_the_job_configuration() -> None:
    stale = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("x", "INT64", 1)])
    custom = {"ProjectID": "p", **stale.to_api_repr()["query"]}
    query = _configuration(settings_from_custom(custom, "t"), sql="SELECT 1")["query"]
    assert "queryParameters" not in query


def test_legacy_sql_with_named_parameters_is_refused() -> None:
    custom = {"ProjectID": "p", "useLegacySql": True}
    with pytest.raises(InvalidTaskError, match="legacy SQL"):
        _configuration(settings_from_custom(custom, "t"), [_X_IS_2])


def test_a_malformed_configuration_is_refused_naming_the_task() -> None:
    custom = {"ProjectID": "p", "QueryJobConfig": {"labels": "team=data", "query": {}}}
    with pytest.raises(InvalidTaskError, match=r"task 't'.*malformed"):
        _configuration(settings_from_custom(custom, "t"))


@pytest.mark.parametrize(
    "input_types",
    [{"x": "ARRAY<STRUCT<a INT64, b DATE>>"}, {"x": {"array": {"struct": [["a", "int"], ["b", "date"]]}}}],
    ids=["type-expression", "old-descriptor"],
)
def test_recorded_input_types_of_either_generation_are_accepted(input_types: dict[str, Any]) -> None:
    settings = settings_from_custom({"ProjectID": "p", "InputTypes": input_types}, "t")
    assert {name: str(t) for name, t in settings.input_types.items()} == {"x": "ARRAY<STRUCT<a INT64, b DATE>>"}


def test_an_upstream_template_records_no_input_types() -> None:
    assert settings_from_custom({"ProjectID": "p"}, "t").input_types == {}


@pytest.mark.parametrize("recorded", ["ARRAY<INT", {"weird": 1}, "no_such_type"])
def test_unknown_recorded_input_type_is_refused_naming_task_and_input(recorded: Any) -> None:
    with pytest.raises(InvalidTaskError, match=r"task 'my_task': input 'x'.*InputTypes"):
        settings_from_custom({"ProjectID": "p", "InputTypes": {"x": recorded}}, "my_task")


# --- against the local BigQuery: the settings reach the job it records ---------------------------------


def _run_with(emulator: Any, job_config: bigquery.QueryJobConfig, sql: str, name: str) -> tuple[Any, Any]:
    from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask
    from flytekitplugins.bigquery.connector import BigQueryConnector

    from .helpers import run

    task = BigQueryTask(
        name=name, query_template=sql, task_config=BigQueryConfig(emulator.project, "US", job_config), inputs={}
    )
    return run(BigQueryConnector(), task)


def test_job_settings_reach_the_recorded_job(emulator: Any, bq_client: bigquery.Client) -> None:
    bq_client.create_dataset("jobconfig_dest", exists_ok=True)
    destination = f"{emulator.project}.jobconfig_dest.out"
    job_config = bigquery.QueryJobConfig(
        labels={"team": "data"},
        priority="BATCH",
        destination=destination,
        write_disposition="WRITE_TRUNCATE",
        create_disposition="CREATE_IF_NEEDED",
        default_dataset=f"{emulator.project}.samples",
        use_query_cache=False,
        maximum_bytes_billed=10**12,
        job_timeout_ms=60_000,
    )
    meta, resource = _run_with(emulator, job_config, "SELECT COUNT(*) AS n FROM daily_downloads", "settings")
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    recorded = bq_client.get_job(meta.job_id, location="US")._properties["configuration"]
    query = recorded["query"]
    assert recorded["labels"] == {"team": "data", "flyte_execution": "local"}
    assert recorded["jobTimeoutMs"] == "60000"
    assert query["priority"] == "BATCH"
    assert query["destinationTable"] == {"projectId": emulator.project, "datasetId": "jobconfig_dest", "tableId": "out"}
    assert (query["writeDisposition"], query["createDisposition"]) == ("WRITE_TRUNCATE", "CREATE_IF_NEEDED")
    assert query["defaultDataset"] == {"projectId": emulator.project, "datasetId": "samples"}
    assert query["useQueryCache"] is False
    assert query["maximumBytesBilled"] == "1000000000000"
    assert [dict(r) for r in bq_client.list_rows(destination)] == [{"n": 30}]


def test_dry_run_succeeds_without_running_a_job(emulator: Any, bq_client: bigquery.Client) -> None:
    meta, resource = _run_with(
        emulator, bigquery.QueryJobConfig(dry_run=True), "SELECT COUNT(*) FROM samples.daily_downloads", "dry"
    )
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert resource.message.startswith("dry run: the query is valid")
    assert resource.custom_info["statement_type"] == "SELECT"
    assert meta.job_id == ""
    assert BigQueryMetadata.decode(meta.encode()) == meta


def test_dry_run_of_an_invalid_query_fails_permanently(emulator: Any) -> None:
    _, resource = _run_with(emulator, bigquery.QueryJobConfig(dry_run=True), "SELECT * FROM samples.nope", "dry_bad")
    assert resource.phase == TaskExecution.FAILED
