"""Cost guards: sizes, policy resolution, estimates from documented dry-run resources, refusal, wiring."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest
from flyte_bigquery_core.cost import (
    CostLimitExceeded,
    CostPolicy,
    Estimate,
    check_estimate,
    cost_text,
    estimate_from_job,
    parse_bytes,
)
from flyte_bigquery_core.report import job_log_lines
from flyte_bigquery_core.settings import Settings, reload_settings
from flyteidl.core.execution_pb2 import TaskExecution
from flytekit import TaskMetadata
from google.cloud import bigquery

from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask, InvalidTaskError
from flytekitplugins.bigquery.connector import BigQueryConnector

from .helpers import (
    INSERT_PATH,
    create_request,
    dry_run_estimate,
    jobs_of,
    literals_of,
    new_execution,
    poll,
    run,
    template_of,
    wait,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (1024, 1024),
        ("1024", 1024),
        ("10 GiB", 10 * 2**30),
        ("10GiB", 10 * 2**30),
        ("1.5 TiB", 3 * 2**39),
        ("500 MB", 500 * 10**6),
        ("2 tb", 2 * 10**12),
        ("0", 0),
        ("9007199254740993", 2**53 + 1),  # one past float's exact integers
        ("123456789012345678901234567890", 123456789012345678901234567890),
        ("1.5 GiB", 3 * 2**29),
        ("0.1 KB", 100),
        ("1.0000000001 PiB", 2**50 + 2**50 // 10**10),  # too many digits for a float
        ("2.5", 2),  # a fraction of a byte is dropped
    ],
)
def test_sizes_parse_in_binary_and_si_units(text: Any, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    "text", ["ten GiB", "10 GiBs", "-1", -5, True, "", "1e3 GB", "\u0661\u0660 GB", ".5 GB", "1. GB"]
)
def test_bad_sizes_are_refused_with_an_example(text: Any) -> None:
    with pytest.raises(InvalidTaskError):
        parse_bytes(text)


def test_cost_text_adds_an_approximate_price_when_configured() -> None:
    assert cost_text(2**40, None) == "1.0 TiB"
    assert cost_text(2**40, 6.25) == "1.0 TiB (≈ $6.25)"


def test_policy_takes_the_smaller_of_task_limit_and_maximum_bytes_billed() -> None:
    policy = CostPolicy.resolve(None, "1 GiB", 1000, "t", Settings())
    assert policy.maximum_bytes == 1000
    assert policy.dry_run_first


def test_policy_defaults_come_from_the_connector_settings() -> None:
    settings = Settings(estimate=True, maximum_bytes=10 * 2**30, price_per_tib=6.25)
    assert CostPolicy.resolve(None, None, None, "t", settings) == CostPolicy(True, 10 * 2**30, 6.25)


def test_policy_defaults_to_the_process_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYTEKITPLUGINS_BIGQUERY_MAXIMUM_BYTES", "2 MiB")
    reload_settings()
    assert CostPolicy.resolve(None, None, None, "t").maximum_bytes == 2 * 2**20


def test_task_settings_override_connector_defaults() -> None:
    settings = Settings(estimate=True, maximum_bytes=10 * 2**30)
    policy = CostPolicy.resolve(False, "1 MiB", None, "t", settings)
    assert (policy.estimate, policy.maximum_bytes) == (False, 2**20)


def test_no_policy_means_no_dry_run() -> None:
    assert not CostPolicy.resolve(None, None, None, "t", Settings()).dry_run_first


# A dry-run response as documented for jobs.insert with configuration.dryRun = true.
_DRY_RUN = {
    "kind": "bigquery#job",
    "status": {"state": "DONE"},
    "statistics": {
        "totalBytesProcessed": "1395864371",
        "query": {
            "totalBytesProcessed": "1395864371",
            "statementType": "SELECT",
            "referencedTables": [
                {"projectId": "bigquery-public-data", "datasetId": "samples", "tableId": "shakespeare"}
            ],
        },
    },
}


def test_estimate_reads_bytes_statement_and_tables() -> None:
    estimate = estimate_from_job(_DRY_RUN)
    assert estimate == Estimate(1395864371, "SELECT", ("bigquery-public-data.samples.shakespeare",))


def test_over_limit_estimate_is_refused_showing_estimate_and_limit() -> None:
    with pytest.raises(CostLimitExceeded) as e:
        check_estimate(estimate_from_job(_DRY_RUN), CostPolicy(maximum_bytes=2**30, price_per_tib=6.25), "daily")
    message = str(e.value)
    assert "'daily'" in message
    assert "1.3 GiB (≈ $0.01)" in message
    assert "1.0 GiB (≈ $0.01)" in message
    assert "nothing was run" in message


def test_estimate_at_the_limit_is_allowed() -> None:
    check_estimate(Estimate(100, "SELECT", ()), CostPolicy(maximum_bytes=100), "t")


def test_log_summary_shows_estimate_versus_actual() -> None:
    done = {
        "status": {"state": "DONE"},
        "statistics": {
            "query": {
                "totalBytesProcessed": str(int(1.2 * 2**30)),
                "totalBytesBilled": str(int(1.2 * 2**30)),
                "totalSlotMs": "412000",
                "cacheHit": False,
            }
        },
    }
    assert "scanned 1.2 GiB (est. 1.3 GiB), billed 1.2 GiB, 412 slot-s, cache miss" in job_log_lines(
        done, int(1.3 * 2**30)
    )


# --- wiring against the local BigQuery (which reports 0 bytes and enforces no limit) -------------------


def _task(emulator: Any, sql: str, **config: Any) -> BigQueryTask:
    task_kwargs = {"metadata": TaskMetadata(timeout=config.pop("timeout"))} if "timeout" in config else {}
    return BigQueryTask(
        name="costly",
        query_template=sql,
        task_config=BigQueryConfig(emulator.project, "US", **config),
        **task_kwargs,
    )


def test_estimate_is_taken_and_reported(emulator: Any) -> None:
    connector = BigQueryConnector()
    meta, resource = run(connector, _task(emulator, "SELECT COUNT(*) FROM samples.daily_downloads", Estimate=True))
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert meta.estimated_bytes == 0  # the local BigQuery estimates every query at 0 bytes
    assert resource.custom_info["estimated_bytes_processed"] == 0
    assert any("(est. 0 B)" in line for line in asyncio.run(connector.get_logs(meta)).body.results)


def test_byte_limit_reaches_the_job_as_maximum_bytes_billed(emulator: Any, bq_client: bigquery.Client) -> None:
    meta, resource = run(BigQueryConnector(), _task(emulator, "SELECT 1", MaximumBytes="10 GiB"))
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    recorded = bq_client.get_job(meta.job_id, location="US")._properties["configuration"]["query"]
    assert recorded["maximumBytesBilled"] == str(10 * 2**30)


def test_dry_run_error_fails_permanently_before_submission(emulator: Any, bq_client: bigquery.Client) -> None:
    meta, resource = run(BigQueryConnector(), _task(emulator, "SELECT * FROM samples.nope", Estimate=True))
    assert resource.phase == TaskExecution.FAILED
    assert "dry run" in resource.message
    assert meta.job_id == ""


def test_task_timeout_becomes_job_timeout(emulator: Any, bq_client: bigquery.Client) -> None:
    task = _task(emulator, "SELECT 1", timeout=datetime.timedelta(minutes=5))
    meta, _ = run(BigQueryConnector(), task)
    recorded = bq_client.get_job(meta.job_id, location="US")._properties["configuration"]
    assert recorded["jobTimeoutMs"] == "300000"


def test_job_past_the_task_deadline_is_cancelled(emulator: Any) -> None:
    connector = BigQueryConnector()
    # about 3 s in the local BigQuery, which answers jobs.insert after 1 s with the job still RUNNING
    task = _task(emulator, "SELECT COUNT(*) FROM UNNEST(GENERATE_ARRAY(1, 5000000)) a")
    meta = asyncio.run(connector.create(template_of(task), literals_of(task)))
    meta.deadline = 1.0  # as if the task's timeout had passed long ago
    resource = wait(connector, meta)
    assert resource.phase == TaskExecution.FAILED
    assert "timeout" in resource.message and "cancelled" in resource.message


def test_over_limit_query_is_refused_before_submission_through_the_service(
    agents_via_proxy: Any, faults: Any, emulator: Any, bq_client: bigquery.Client
) -> None:
    faults.add_rule("rewrite", "POST", INSERT_PATH, count=None, transform=dry_run_estimate(5 * 2**30))
    task = BigQueryTask(
        name="guarded",
        query_template="SELECT 1 AS one",
        task_config=BigQueryConfig(emulator.project, "US", MaximumBytes="1 GiB"),
    )
    execution = new_execution()
    meta = agents_via_proxy.CreateTask(create_request(task, execution), timeout=60).resource_meta
    resource = poll(agents_via_proxy, meta)
    assert resource.phase == TaskExecution.FAILED
    assert "would process 5.0 GiB, over the limit of 1.0 GiB; nothing was run" in resource.message
    assert [e.endpoint for e in faults.log] == ["jobs.insert"]  # the dry run, and nothing after it
    assert jobs_of(bq_client, execution) == []
