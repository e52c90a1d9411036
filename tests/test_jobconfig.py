"""Task custom fields → the job configuration that reaches BigQuery."""

import pytest
from google.cloud import bigquery

from flytekitplugins.bigquery.errors import InvalidTaskError
from flytekitplugins.bigquery.jobconfig import DEFAULT_LABELS_ENV, build_job_config, settings_from_custom

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
