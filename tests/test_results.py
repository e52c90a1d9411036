"""Managed result tables: shareable, expiring, one per attempt; an explicit destination wins."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from flyte_bigquery_core.results import RESULTS_DATASET_ENV, RESULTS_EXPIRATION_DAYS_ENV, managed_results
from flyte_bigquery_core.settings import Settings
from flyteidl.core.execution_pb2 import TaskExecution
from flytekit import StructuredDataset
from google.cloud import bigquery

from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask, InvalidTaskError
from flytekitplugins.bigquery.connector import BigQueryConnector

from .helpers import execution_metadata, literals_of, run, template_of, wait


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("results", ("proj", "results")), ("other.results", ("other", "results"))],
)
def test_results_dataset_spec_is_dataset_or_project_dataset(spec: str, expected: tuple[str, str]) -> None:
    managed = managed_results(spec, "proj", "t", Settings())
    assert managed is not None
    assert (managed.project, managed.dataset, managed.expiration_days) == (*expected, 7.0)


@pytest.mark.parametrize("spec", ["a.b.c", ".x", "x."])
def test_invalid_results_dataset_names_the_task(spec: str) -> None:
    with pytest.raises(InvalidTaskError, match="'t'"):
        managed_results(spec, "proj", "t", Settings())


def test_connector_default_applies_when_the_task_names_none() -> None:
    managed = managed_results(
        None, "proj", "t", Settings(results_dataset="shared_results", results_expiration_days=2.5)
    )
    assert managed is not None
    assert (managed.dataset, managed.expiration_days) == ("shared_results", 2.5)


def test_task_setting_wins_over_the_connector_default() -> None:
    managed = managed_results("mine", "proj", "t", Settings(results_dataset="shared_results"))
    assert managed is not None
    assert managed.dataset == "mine"


def test_connector_default_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RESULTS_DATASET_ENV, "other.shared_results")
    monkeypatch.setenv(RESULTS_EXPIRATION_DAYS_ENV, "2.5")
    managed = managed_results(None, "proj", "t")
    assert managed is not None
    assert (managed.project, managed.dataset, managed.expiration_days) == ("other", "shared_results", 2.5)


def test_no_managed_dataset_by_default() -> None:
    assert managed_results(None, "proj", "t", Settings()) is None


def _task(
    emulator: Any, dataset: str | None, job_config: bigquery.QueryJobConfig | None = None, location: str | None = "US"
) -> BigQueryTask:
    return BigQueryTask(
        name="managed",
        query_template="SELECT 7 AS seven",
        task_config=BigQueryConfig(emulator.project, location, job_config, ResultsDataset=dataset),
        output_structured_dataset_type=StructuredDataset,
    )


def test_results_go_to_the_managed_dataset_with_an_expiration(emulator: Any, bq_client: bigquery.Client) -> None:
    dataset = f"results_{uuid.uuid4().hex[:8]}"
    meta, resource = run(BigQueryConnector(), _task(emulator, dataset))
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert resource.outputs["results"].uri == f"bq://{emulator.project}:{dataset}.{meta.job_id}"
    created = bq_client.get_dataset(f"{emulator.project}.{dataset}")
    assert created.default_table_expiration_ms == 7 * 24 * 3600 * 1000
    assert [dict(r) for r in bq_client.list_rows(f"{emulator.project}.{dataset}.{meta.job_id}")] == [{"seven": 7}]


def test_explicit_destination_wins_over_the_managed_dataset(emulator: Any, bq_client: bigquery.Client) -> None:
    bq_client.create_dataset("explicit_dest", exists_ok=True)
    config = bigquery.QueryJobConfig(destination=f"{emulator.project}.explicit_dest.mine")
    _, resource = run(BigQueryConnector(), _task(emulator, "unused_results", config))
    assert resource.outputs["results"].uri == f"bq://{emulator.project}:explicit_dest.mine"


def test_rerun_of_the_same_attempt_writes_the_same_table_once(emulator: Any, bq_client: bigquery.Client) -> None:
    dataset = f"results_{uuid.uuid4().hex[:8]}"
    connector = BigQueryConnector()
    task = _task(emulator, dataset)
    metadata = execution_metadata(execution=f"e{uuid.uuid4().hex[:6]}")
    first = asyncio.run(connector.create(template_of(task), literals_of(task), task_execution_metadata=metadata))
    second = asyncio.run(connector.create(template_of(task), literals_of(task), task_execution_metadata=metadata))
    assert first == second
    assert wait(connector, second).phase == TaskExecution.SUCCEEDED
    assert [t.table_id for t in bq_client.list_tables(f"{emulator.project}.{dataset}")] == [first.job_id]


def test_without_a_location_the_dataset_goes_where_bigquery_runs_the_query(
    emulator: Any, bq_client: bigquery.Client
) -> None:
    dataset = f"results_{uuid.uuid4().hex[:8]}"
    meta, resource = run(BigQueryConnector(), _task(emulator, dataset, location=None))
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    # The local BigQuery resolves every query to US; what matters is that the dataset follows the dry run's answer.
    assert (meta.location, bq_client.get_dataset(f"{emulator.project}.{dataset}").location) == ("US", "US")


def test_a_results_dataset_in_another_location_refuses_the_task(emulator: Any, bq_client: bigquery.Client) -> None:
    dataset = f"results_{uuid.uuid4().hex[:8]}"
    existing = bigquery.Dataset(f"{emulator.project}.{dataset}")
    existing.location = "EU"
    bq_client.create_dataset(existing)
    meta, resource = run(BigQueryConnector(), _task(emulator, dataset, location=None))
    assert resource.phase == TaskExecution.FAILED
    assert f"{dataset} is in EU but the query runs in US" in resource.message and meta.job_id == ""
    assert list(bq_client.list_tables(f"{emulator.project}.{dataset}")) == []
