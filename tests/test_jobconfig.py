"""Task custom fields → the job configuration that reaches BigQuery."""

from typing import Any

import pytest
from flyte_bigquery_core.errors import InvalidTaskError
from flyte_bigquery_core.jobconfig import DEFAULT_LABELS_ENV, build_job_config, settings_from_custom
from flyteidl.core.execution_pb2 import TaskExecution
from google.cloud import bigquery

from flytekitplugins.bigquery.metadata import BigQueryMetadata

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


def test_upstream_flattened_fields_reach_the_job_config() -> None:
    settings = settings_from_custom(_UPSTREAM_CUSTOM, "t")
    config = build_job_config(settings, [], {}, "t")
    assert config.priority == "BATCH"
    assert config.use_query_cache is False
    assert config.maximum_bytes_billed == 1000000
    assert config.default_dataset == bigquery.DatasetReference("proj", "ds")
    assert (settings.project, settings.location, settings.domain) == ("proj", "EU", "development")


def test_full_config_is_preferred_and_keeps_job_level_fields() -> None:
    user = bigquery.QueryJobConfig(labels={"team": "data"}, dry_run=True, job_timeout_ms=5000, priority="BATCH")
    custom = {"ProjectID": "proj", **user.to_api_repr()["query"], "QueryJobConfig": user.to_api_repr()}
    config = build_job_config(settings_from_custom(custom, "t"), [], {}, "t")
    assert config.dry_run is True
    assert config.to_api_repr()["jobTimeoutMs"] == "5000"
    assert config.labels == {"team": "data"}


@pytest.mark.parametrize("custom", [{}, {"ProjectID": ""}, {"ProjectID": "   "}, {"ProjectID": 3}, None])
def test_missing_project_names_the_task(custom: dict | None) -> None:
    with pytest.raises(InvalidTaskError, match=r"'my_task'.*ProjectID"):
        settings_from_custom(custom, "my_task")


def test_labels_merge_defaults_then_flyte_then_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEFAULT_LABELS_ENV, "team=platform, cost_center=42")
    user = bigquery.QueryJobConfig(labels={"team": "data"})
    custom = {"ProjectID": "p", "QueryJobConfig": user.to_api_repr()}
    config = build_job_config(settings_from_custom(custom, "t"), [], {"flyte_node": "n0", "team": "x"}, "t")
    assert config.labels == {"team": "data", "cost_center": "42", "flyte_node": "n0"}


def test_parameters_replace_stale_config_parameters() -> None:
    stale = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("x", "INT64", 1)])
    custom = {"ProjectID": "p", **stale.to_api_repr()["query"]}
    fresh = [bigquery.ScalarQueryParameter("x", "INT64", 2)]
    config = build_job_config(settings_from_custom(custom, "t"), fresh, {}, "t")
    assert [p.to_api_repr() for p in config.query_parameters] == [fresh[0].to_api_repr()]


def test_legacy_sql_with_named_parameters_is_refused() -> None:
    custom = {"ProjectID": "p", "useLegacySql": True}
    with pytest.raises(InvalidTaskError, match="legacy SQL"):
        build_job_config(settings_from_custom(custom, "t"), [bigquery.ScalarQueryParameter("x", "INT64", 1)], {}, "t")


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
