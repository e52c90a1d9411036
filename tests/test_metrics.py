"""Our Prometheus metrics where Flyte meets them: the phases ``get`` returns, and the launcher's metrics port.

The metrics themselves (what each BigQuery call, retry, refusal and finished job records) are tested on
scripted answers in ``tests/core/test_metrics.py``.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from flyte_bigquery_core.engine import Observation
from flyte_bigquery_core.settings import Settings
from flyte_bigquery_core.status import Outcome
from flyte_bigquery_core.testing.sockets import is_loopback, listening_addresses
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service.agent_pb2_grpc import AsyncAgentServiceStub
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from flytekitplugins.bigquery.connector import PHASE_NAMES, BigQueryConnector
from flytekitplugins.bigquery.metadata import BigQueryMetadata
from flytekitplugins.bigquery.testing import Emulator
from flytekitplugins.bigquery.testing.service_process import GRPC_OPTIONS, ServiceProcess

from .helpers import SERVICE_RETRY_SECONDS, create_request, new_execution, poll
from .helpers import query_task as service_task

_METRICS_LINE = re.compile(r"prometheus metrics on http://(\S+):(\d+)/metrics")


# --- phases returned by get ---------------------------------------------------------------------------


class _Engine:
    """Stands in for the core's engine: ``observe`` answers the outcome under test."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome

    async def observe(self, handle: Any) -> Observation:
        return Observation(self.outcome, "scripted")


@pytest.mark.parametrize(
    ("outcome", "phase"),
    [
        (Outcome.QUEUED, "RUNNING"),
        (Outcome.RUNNING, "RUNNING"),
        (Outcome.SUCCEEDED, "SUCCEEDED"),
        (Outcome.RETRYABLE_FAILURE, "RETRYABLE_FAILED"),
        (Outcome.PERMANENT_FAILURE, "FAILED"),
        (Outcome.ABORTED, "ABORTED"),
    ],
)
def test_get_counts_the_phase_it_returns(outcome: Outcome, phase: str, monkeypatch: pytest.MonkeyPatch) -> None:
    connector = BigQueryConnector(Settings())
    monkeypatch.setattr(connector._core, "engine", lambda service_account_info=None, caller=None: _Engine(outcome))
    before = {name: REGISTRY.get_sample_value("flyte_bigquery_phases_total", {"phase": name}) for name in _phases()}
    resource = asyncio.run(connector.get(BigQueryMetadata(job_id="j", project="p", location="US")))
    after = {name: REGISTRY.get_sample_value("flyte_bigquery_phases_total", {"phase": name}) for name in _phases()}
    assert TaskExecution.Phase.Name(resource.phase) == phase
    assert {name: after[name] - before[name] for name in after if after[name] != before[name]} == {phase: 1.0}


def _phases() -> set[str]:
    return set(PHASE_NAMES.values())


def test_every_phase_is_exported_before_it_is_returned() -> None:
    for phase in _phases():
        assert REGISTRY.get_sample_value("flyte_bigquery_phases_total", {"phase": phase}) is not None, phase


# --- the launcher's metrics port ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metered_service(emulator: Emulator) -> Iterator[tuple[ServiceProcess, str]]:
    """The launcher with ``--prometheus-port 0``, and the metrics URL its start line names."""
    env = {"FLYTEKITPLUGINS_BIGQUERY_RETRY_SECONDS": SERVICE_RETRY_SECONDS}
    service = ServiceProcess(env, args=["--prometheus-port", "0"]).start()
    try:
        deadline = time.monotonic() + 10
        while not (match := _METRICS_LINE.search(service.log_text())) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert match, service.log_text()[-3000:]
        yield service, f"http://{match.group(1)}:{match.group(2)}/metrics"
        assert service.stop() == 0, service.log_text()[-3000:]
    finally:
        service.cleanup()


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    with opener.open(url, timeout=10) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_launcher_serves_our_metrics_on_loopback(
    metered_service: tuple[ServiceProcess, str], emulator: Emulator
) -> None:
    service, url = metered_service
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    ours = [address for address, bound in listening_addresses(service.pid) if bound == port]
    assert ours and all(is_loopback(address) for address in ours), ours

    task = service_task("SELECT @n AS n", emulator.project, inputs={"n": int})
    with grpc.insecure_channel(service.target, options=GRPC_OPTIONS) as channel:
        stub = AsyncAgentServiceStub(channel)
        meta = stub.CreateTask(create_request(task, new_execution(), n=3), timeout=30).resource_meta
        assert poll(stub, meta).phase == TaskExecution.SUCCEEDED

    samples = _scrape(url)
    # A fresh process that ran one task: the counts are exact.
    expected = {
        ("flyte_bigquery_job_submissions_total", (("result", "created"),)): 1.0,
        ("flyte_bigquery_job_submissions_total", (("result", "adopted"),)): 0.0,
        ("flyte_bigquery_job_submissions_total", (("result", "reused"),)): 0.0,
        ("flyte_bigquery_phases_total", (("phase", "SUCCEEDED"),)): 1.0,
        ("flyte_bigquery_api_request_duration_seconds_count", (("method", "jobs.insert"), ("status", "200"))): 1.0,
        ("flyte_bigquery_api_request_duration_seconds_count", (("method", "tables.get"), ("status", "200"))): 1.0,
        ("flyte_bigquery_cost_guard_refusals_total", ()): 0.0,
        ("flyte_bigquery_bytes_billed_total", ()): 0.0,  # the local BigQuery reports 0 bytes billed
    }
    assert {key: samples.get(key) for key in expected} == expected
    gets = ("flyte_bigquery_api_request_duration_seconds_count", (("method", "jobs.get"), ("status", "200")))
    assert samples[gets] == samples[("flyte_bigquery_phases_total", (("phase", "RUNNING"),))] + 1
    # flytekit's own metrics share the registry without a clash.
    assert any(name.startswith("flyte_connector_") for name, _ in samples)
