"""Reliability under network faults: no duplicate job, no lost result, no crash, the right phase.

Everything goes through the real service (``python -m flytekitplugins.bigquery.service``, driven with
flyteidl stubs) whose BigQuery traffic passes the fault proxy in front of the local BigQuery:

* the fault matrix: each fault (500/502/503, 429 with Retry-After, a reset before forwarding, a lost
  response after forwarding, latency before and after forwarding, a truncated body) on each call the
  connector makes (``jobs.insert``, ``jobs.get``, ``jobs.cancel``, ``tables.get`` for the row count; it never
  calls ``jobs.getQueryResults``), once (transient) and throughout (persistent), each scenario asserting
  the phase reached and the jobs the local BigQuery holds for the execution (by ``flyte_execution`` label);
* a seeded chaos run of 512 create/get/delete cycles, 16 in flight, with 20 % of BigQuery requests
  faulted (:mod:`tests.soak` drives and judges it), one test per promise;
* secrets and exposure: no input value nor token in the service's INFO logs; servers bind loopback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from flyte_bigquery_core.testing.faultproxy import FaultProxy
from flyte_bigquery_core.testing.sockets import is_loopback, listening_addresses
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service.agent_pb2_grpc import AsyncAgentServiceStub
from google.cloud import bigquery
from google.protobuf import json_format

from flytekitplugins.bigquery.metadata import BigQueryMetadata
from flytekitplugins.bigquery.testing.service_process import GRPC_OPTIONS, ServiceProcess

from . import helpers as h
from .soak import CHAOS_FAULTS, Cycle, ProcessStats, Verdict, Workload, process_stats, run_cycles, verify

pytestmark = pytest.mark.integration

#: The connector's retry budget here: small, so persistent faults end in seconds.
RETRY_SECONDS = "2"


@pytest.fixture(scope="module")
def service_env() -> dict[str, str]:
    return {"FLYTEKITPLUGINS_BIGQUERY_RETRY_SECONDS": RETRY_SECONDS}


# --- the fault matrix ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One fault as a proxy rule: ``action`` with ``options``, ``count`` times (``None``: throughout)."""

    name: str
    action: str
    options: dict[str, Any] = field(default_factory=dict)
    count: int | None = 1

    @property
    def forwards(self) -> bool:
        """Whether the request reaches BigQuery despite the fault (only its answer is lost or late)."""
        return self.action in ("drop", "truncate", "delay")


TRANSIENT = (
    Fault("500", "status", {"status": 500}),
    Fault("502", "status", {"status": 502}),
    Fault("503", "status", {"status": 503}),
    Fault("429-retry-after", "status", {"status": 429, "retry_after": 1}),
    Fault("reset-before-forwarding", "reset"),
    Fault("response-lost-after-forwarding", "drop"),
    Fault("latency-before-forwarding", "delay", {"seconds": 1.0}),
    Fault("latency-after-forwarding", "delay", {"seconds": 1.0, "after": True}),
    Fault("truncated-body", "truncate"),
)

_INSERT = ("POST", r"/projects/[^/]+/jobs$")
_TABLES_GET = ("GET", r"/datasets/[^/]+/tables/[^/]+$")


def _job_path(meta: bytes) -> str:
    return rf"/jobs/{BigQueryMetadata.decode(meta).job_id}$"


def _cancel_path(meta: bytes) -> str:
    return rf"/jobs/{BigQueryMetadata.decode(meta).job_id}/cancel$"


@dataclass(frozen=True)
class Proxied:
    """The service whose BigQuery traffic passes the fault proxy: its stub, the proxy, the project its tasks
    run in and a client of the local BigQuery to check the jobs with."""

    stub: AsyncAgentServiceStub
    faults: FaultProxy
    project: str
    bq: bigquery.Client

    def create(self, execution: str, attempt: int = 0, n: int = 5) -> bytes:
        """``CreateTask`` of attempt ``attempt`` of ``SELECT @n AS n`` in ``execution``: the resource meta."""
        task = h.query_task("SELECT @n AS n", self.project, inputs={"n": int})
        request = h.create_request(task, execution, attempt=attempt, n=n)
        return self.stub.CreateTask(request, timeout=60).resource_meta

    def jobs(self, execution: str) -> list[Any]:
        """The jobs the local BigQuery holds for ``execution``."""
        return h.jobs_of(self.bq, execution)


@pytest.fixture
def proxied(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any, bq_client: bigquery.Client
) -> Proxied:
    return Proxied(agents_via_proxy, faults, emulator.project, bq_client)


def _each_fault(faults: tuple[Fault, ...]) -> pytest.MarkDecorator:
    """Run the test once per fault, named after it."""
    return pytest.mark.parametrize("fault", faults, ids=[f.name for f in faults])


@_each_fault(TRANSIENT)
def test_transient_fault_on_jobs_insert_ends_succeeded_with_exactly_one_job(proxied: Proxied, fault: Fault) -> None:
    rule = proxied.faults.add_rule(fault.action, *_INSERT, count=fault.count, **fault.options)
    execution = h.new_execution()
    meta = proxied.create(execution)
    resource = h.poll(proxied.stub, meta)

    assert rule.applied == 1
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert [j.job_id for j in proxied.jobs(execution)] == [BigQueryMetadata.decode(meta).job_id]
    assert h.rows_of(proxied.bq, h.results_uri(resource)) == [{"n": 5}]
    # A retry after a request that reached BigQuery adopts the job (409) instead of inserting another.
    upstream = [e.upstream_status for e in proxied.faults.exchanges("jobs.insert")]
    expected = {"delay": [200], "drop": [200, 409], "truncate": [200, 409]}.get(fault.action, [None, 200])
    assert upstream == expected


@_each_fault(TRANSIENT)
def test_transient_fault_on_jobs_get_is_retried_within_one_poll(proxied: Proxied, fault: Fault) -> None:
    execution = h.new_execution()
    meta = proxied.create(execution)
    rule = proxied.faults.add_rule(fault.action, "GET", _job_path(meta), count=fault.count, **fault.options)
    resource = h.poll(proxied.stub, meta)

    assert rule.applied == 1
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert len(proxied.jobs(execution)) == 1


@_each_fault(TRANSIENT)
def test_transient_fault_on_jobs_cancel_is_retried_and_delete_succeeds(proxied: Proxied, fault: Fault) -> None:
    execution = h.new_execution()
    meta = proxied.create(execution)
    rule = proxied.faults.add_rule(fault.action, "POST", _cancel_path(meta), count=fault.count, **fault.options)
    proxied.stub.DeleteTask(agent_pb2.DeleteTaskRequest(task_category=h.CATEGORY, resource_meta=meta), timeout=60)

    assert rule.applied == 1
    assert len(proxied.faults.exchanges("jobs.cancel")) == (1 if fault.action == "delay" else 2)
    # The local BigQuery accepts the cancel but lets the job finish.
    assert h.poll(proxied.stub, meta).phase in (TaskExecution.ABORTED, TaskExecution.SUCCEEDED)
    assert len(proxied.jobs(execution)) == 1


@_each_fault(TRANSIENT)
def test_fault_on_the_row_count_still_succeeds_with_the_results(proxied: Proxied, fault: Fault) -> None:
    rule = proxied.faults.add_rule(fault.action, *_TABLES_GET, count=fault.count, **fault.options)
    execution = h.new_execution()
    meta = proxied.create(execution, n=8)
    resource = h.poll(proxied.stub, meta)

    assert rule.applied == 1
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert h.rows_of(proxied.bq, h.results_uri(resource)) == [{"n": 8}]
    assert len(proxied.jobs(execution)) == 1


def _first_attempt_with_insert_failing(proxied: Proxied, fault: Fault) -> tuple[str, agent_pb2.Resource]:
    """Attempt 0 of a new execution while ``jobs.insert`` meets ``fault`` throughout: it ends retryable."""
    proxied.faults.add_rule(fault.action, *_INSERT, count=fault.count, **fault.options)
    execution = h.new_execution()
    resource = h.poll(proxied.stub, proxied.create(execution, attempt=0))
    assert resource.phase == TaskExecution.RETRYABLE_FAILED, resource.message
    return execution, resource


# A 429 throughout is not here: throttling never fails a task (tests/test_rate_limits.py).
_NEVER_FORWARDED = (
    Fault("503", "status", {"status": 503}, count=None),
    Fault("reset-before-forwarding", "reset", count=None),
)


@_each_fault(_NEVER_FORWARDED)
def test_insert_failing_past_the_retry_budget_is_retryable_and_starts_no_job(proxied: Proxied, fault: Fault) -> None:
    execution, resource = _first_attempt_with_insert_failing(proxied, fault)
    assert "unavailable" in resource.message
    assert proxied.jobs(execution) == []


_ANSWER_LOST = (
    Fault("response-lost-after-forwarding", "drop", count=None),
    Fault("truncated-body", "truncate", count=None),
)


@_each_fault(_ANSWER_LOST)
def test_insert_whose_answers_are_all_lost_is_retryable_and_the_next_attempt_reuses_its_job(
    proxied: Proxied, fault: Fault
) -> None:
    execution, _ = _first_attempt_with_insert_failing(proxied, fault)
    [started] = proxied.jobs(execution)  # the first insert reached BigQuery

    proxied.faults.clear()
    meta = proxied.create(execution, attempt=1)
    resource = h.poll(proxied.stub, meta)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert BigQueryMetadata.decode(meta).reused_from_attempt == 0
    assert [j.job_id for j in proxied.jobs(execution)] == [started.job_id]


def _task_keeps_running(stub: AsyncAgentServiceStub, meta: bytes) -> None:
    during = h.get_resource(stub, meta)
    assert during.phase == TaskExecution.RUNNING
    assert "will check again" in during.message


def _task_succeeds(stub: AsyncAgentServiceStub, meta: bytes) -> None:
    assert h.poll(stub, meta).phase == TaskExecution.SUCCEEDED


def _delete(meta: bytes) -> agent_pb2.DeleteTaskRequest:
    return agent_pb2.DeleteTaskRequest(task_category=h.CATEGORY, resource_meta=meta)


def _delete_is_a_grpc_error(stub: AsyncAgentServiceStub, meta: bytes) -> None:
    with pytest.raises(grpc.RpcError) as failed:
        stub.DeleteTask(_delete(meta), timeout=60)
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    assert "unavailable while cancelling" in (failed.value.details() or "")


def _delete_is_retried_and_succeeds(stub: AsyncAgentServiceStub, meta: bytes) -> None:
    stub.DeleteTask(_delete(meta), timeout=60)  # propeller's retry
    assert h.poll(stub, meta).phase in (TaskExecution.ABORTED, TaskExecution.SUCCEEDED)


@dataclass(frozen=True)
class Outage:
    """BigQuery failing one call about a started job past the retry budget (each of ``faults``), then recovering:
    ``during`` asserts what the platform sees meanwhile, ``after`` that the next attempt of the call works."""

    name: str
    method: str
    path: Callable[[bytes], str]
    faults: tuple[Fault, ...]
    during: Callable[[AsyncAgentServiceStub, bytes], None]
    after: Callable[[AsyncAgentServiceStub, bytes], None]


OUTAGES = (
    Outage(
        "jobs.get-keeps-the-task-running",
        "GET",
        _job_path,
        (
            Fault("503", "status", {"status": 503}, count=None),
            Fault("reset-before-forwarding", "reset", count=None),
            Fault("truncated-body", "truncate", count=None),
        ),
        during=_task_keeps_running,
        after=_task_succeeds,
    ),
    Outage(
        "jobs.cancel-is-a-grpc-error-the-platform-retries",
        "POST",
        _cancel_path,
        (
            Fault("503", "status", {"status": 503}, count=None),
            Fault("response-lost-after-forwarding", "drop", count=None),
        ),
        during=_delete_is_a_grpc_error,
        after=_delete_is_retried_and_succeeds,
    ),
)


@pytest.mark.parametrize(
    ("outage", "fault"), [pytest.param(o, f, id=f"{o.name}-{f.name}") for o in OUTAGES for f in o.faults]
)
def test_job_call_failing_past_the_retry_budget_is_reported_and_recovers(
    proxied: Proxied, outage: Outage, fault: Fault
) -> None:
    execution = h.new_execution()
    meta = proxied.create(execution)
    proxied.faults.add_rule(fault.action, outage.method, outage.path(meta), count=fault.count, **fault.options)
    outage.during(proxied.stub, meta)

    proxied.faults.clear()
    outage.after(proxied.stub, meta)
    assert len(proxied.jobs(execution)) == 1


def test_row_count_unavailable_throughout_still_succeeds_with_the_results(proxied: Proxied) -> None:
    proxied.faults.add_rule("status", *_TABLES_GET, count=None, status=503)
    execution = h.new_execution()
    resource = h.poll(proxied.stub, proxied.create(execution, n=9))
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert h.rows_of(proxied.bq, h.results_uri(resource)) == [{"n": 9}]
    info = json_format.MessageToDict(resource.custom_info)
    assert "total_rows" in info and info["total_rows"] is None


def test_failing_query_under_transient_faults_is_failed_not_retryable(proxied: Proxied) -> None:
    proxied.faults.add_rule("status", *_INSERT, count=1, status=503)
    proxied.faults.add_rule("drop", *_INSERT, count=1)
    proxied.faults.add_rule("status", "GET", r"/jobs/[^/]+$", count=2, status=500)
    task = h.query_task("SELECT * FROM reliability_missing_dataset.t", proxied.project)
    execution = h.new_execution()
    meta = proxied.stub.CreateTask(h.create_request(task, execution), timeout=60).resource_meta
    resource = h.poll(proxied.stub, meta)

    assert resource.phase == TaskExecution.FAILED
    assert "notFound" in resource.message and "reliability_missing_dataset" in resource.message
    assert len(proxied.jobs(execution)) == 1


def test_lost_insert_answer_then_failing_lookup_of_the_existing_job_still_adopts_it(proxied: Proxied) -> None:
    proxied.faults.add_rule("drop", *_INSERT, count=1)
    proxied.faults.add_rule("status", "GET", r"/jobs/[^/]+$", count=1, status=502)
    execution = h.new_execution()
    meta = proxied.create(execution)
    assert [(e.upstream_status, e.status) for e in proxied.faults.exchanges("jobs.insert")] == [(200, None), (409, 409)]
    assert h.poll(proxied.stub, meta).phase == TaskExecution.SUCCEEDED
    assert [j.job_id for j in proxied.jobs(execution)] == [BigQueryMetadata.decode(meta).job_id]


# --- the chaos run ------------------------------------------------------------------------------------

CHAOS_CYCLES = 512
CHAOS_WARMUP = 64
CHAOS_CONCURRENCY = 16
CHAOS_RATE = 0.2
CHAOS_SEED = 20240611
#: The service's RSS after the run may exceed its post-warm-up RSS by this fraction at most...
RSS_TOLERANCE = 0.15
#: ...and its open descriptors by this many (pooled connections come and go with resets and drops).
FD_TOLERANCE = 12


@dataclass
class ChaosRun:
    cycles: list[Cycle]
    verdict: Verdict
    before: ProcessStats
    after: ProcessStats
    injected: dict[tuple[str, str], int]
    alive: bool


@pytest.fixture(scope="module")
def chaos(
    agents_via_proxy: AsyncAgentServiceStub, proxied_service: ServiceProcess, proxy: FaultProxy, emulator: Any
) -> Iterator[ChaosRun]:
    """512 seeded cycles (after a warm-up) with 20 % of BigQuery requests faulted, judged by tests.soak."""
    proxy.clear()
    execution = f"chaos{uuid.uuid4().hex[:12]}"
    workload = Workload(agents_via_proxy, emulator.project, execution, seed=CHAOS_SEED)
    proxy.chaos(CHAOS_RATE, seed=CHAOS_SEED, faults=CHAOS_FAULTS)
    try:
        warm = run_cycles(workload, range(CHAOS_WARMUP), CHAOS_CONCURRENCY)
        time.sleep(1)
        before = process_stats(proxied_service.pid)
        cycles = run_cycles(workload, range(CHAOS_WARMUP, CHAOS_WARMUP + CHAOS_CYCLES), CHAOS_CONCURRENCY)
        time.sleep(1)
        after = process_stats(proxied_service.pid)
        injected = dict(proxy.injected_at)
    finally:
        proxy.clear()
    alive = proxied_service._proc is not None and proxied_service._proc.poll() is None
    client = emulator.client()
    try:
        verdict = verify(warm + cycles, client, workload, sweep=True)
    finally:
        client.close()
    print(f"\nchaos run: {verdict.summary()}\nfaults: {injected}\nservice before: {before}\nservice after: {after}")
    yield ChaosRun(cycles, verdict, before, after, injected, alive)


def test_chaos_run_injected_every_kind_of_fault_into_every_call(chaos: ChaosRun) -> None:
    assert len(chaos.cycles) >= 500
    kinds = {rule.kind for rule in CHAOS_FAULTS}
    for endpoint in ("jobs.insert", "jobs.get", "tables.get"):
        assert {k for (e, k), n in chaos.injected.items() if e == endpoint and n} == kinds, endpoint
    assert sum(n for (e, _), n in chaos.injected.items() if e == "jobs.cancel") > 0
    assert sum(chaos.injected.values()) >= 0.1 * chaos.verdict.attempts


def test_chaos_run_started_no_duplicate_job(chaos: ChaosRun) -> None:
    assert chaos.verdict.broken["no_duplicate_jobs"] == []
    assert chaos.verdict.duplicates == 0
    assert chaos.verdict.jobs > 0.7 * len(chaos.cycles)


def test_chaos_run_brought_every_attempt_to_a_terminal_phase(chaos: ChaosRun) -> None:
    assert chaos.verdict.broken["every_attempt_terminal"] == []


def test_chaos_run_never_turned_a_transient_fault_into_a_permanent_failure(chaos: ChaosRun) -> None:
    assert chaos.verdict.broken["transient_never_permanent"] == []
    assert chaos.verdict.outcomes["ok:SUCCEEDED"] > 0


def test_chaos_run_never_turned_a_permanent_error_into_a_retryable_one(chaos: ChaosRun) -> None:
    assert chaos.verdict.broken["permanent_never_retryable"] == []
    assert chaos.verdict.outcomes["failing:FAILED"] > 0 and chaos.verdict.outcomes["bad_input:FAILED"] > 0


def test_chaos_run_lost_no_result(chaos: ChaosRun) -> None:
    assert chaos.verdict.broken["no_result_lost"] == []
    assert chaos.verdict.results_checked == chaos.verdict.outcomes["ok:SUCCEEDED"]


def test_chaos_run_kept_the_service_up_without_grpc_errors(chaos: ChaosRun) -> None:
    assert chaos.alive
    assert chaos.verdict.broken["no_service_errors"] == []


def test_chaos_run_left_rss_and_open_files_near_their_baseline(chaos: ChaosRun) -> None:
    assert chaos.after.rss_kb <= chaos.before.rss_kb * (1 + RSS_TOLERANCE), (chaos.before, chaos.after)
    assert chaos.after.fds <= chaos.before.fds + FD_TOLERANCE, (chaos.before, chaos.after)


# The chaos run's re-sent CreateTask (a lost response) once answered other metadata than the first send. It
# is harmless: under 20 % faults a create can spend its whole retry budget (2 s here), and its answer is then
# metadata with ``error`` + ``retryable`` and no job id, while the re-send, past the faults, names the job.
# Job ids are deterministic, so nothing else can differ: whichever send reached BigQuery started the
# attempt's one job, a later send adopts it (409), and an attempt that was answered retryable is retried
# by the platform as the next attempt, whose create reuses that job. tests.soak now classifies the case
# (``re-sent CreateTasks ... answered differently``) and fails on any other difference. These tests force it.

_BUDGET_SPENT = (
    Fault("503-never-forwarded", "status", {"status": 503}, count=None),
    Fault("answers-lost-after-forwarding", "drop", count=None),
)


@_each_fault(_BUDGET_SPENT)
def test_a_resent_create_after_one_that_spent_its_budget_names_the_one_job(proxied: Proxied, fault: Fault) -> None:
    task = h.query_task("SELECT @n AS n", proxied.project, inputs={"n": int})
    execution = h.new_execution()
    request = h.create_request(task, execution, attempt=0, n=5)
    proxied.faults.add_rule(fault.action, *_INSERT, count=fault.count, **fault.options)
    first = proxied.stub.CreateTask(request, timeout=60).resource_meta
    proxied.faults.clear()
    second = proxied.stub.CreateTask(request, timeout=60).resource_meta  # the same attempt, re-sent

    spent, named = BigQueryMetadata.decode(first), BigQueryMetadata.decode(second)
    assert first != second
    assert spent.retryable and spent.error and "unavailable" in spent.error and not spent.job_id
    assert named.error is None and named.job_id
    # Whichever answer the platform kept: the retryable one ends the attempt for a retry...
    assert h.poll(proxied.stub, first).phase == TaskExecution.RETRYABLE_FAILED
    assert h.poll(proxied.stub, second).phase == TaskExecution.SUCCEEDED
    # ...whose create reuses the job the re-send named, instead of starting another.
    retry = proxied.create(execution, attempt=1, n=5)
    assert BigQueryMetadata.decode(retry).job_id == named.job_id
    assert BigQueryMetadata.decode(retry).reused_from_attempt == 0
    assert h.poll(proxied.stub, retry).phase == TaskExecution.SUCCEEDED
    assert [j.job_id for j in proxied.jobs(execution)] == [named.job_id]
    inserts = [e.upstream_status for e in proxied.faults.exchanges("jobs.insert")]
    assert inserts == ([409] if fault.forwards else [200])  # the re-send adopted the job, or started it


def test_a_resent_create_whose_reuse_lookup_spent_its_budget_starts_no_second_job(proxied: Proxied) -> None:
    execution = h.new_execution()
    meta = proxied.create(execution, attempt=0)
    started = BigQueryMetadata.decode(meta).job_id
    assert h.poll(proxied.stub, meta).phase == TaskExecution.SUCCEEDED
    proxied.faults.clear()
    task = h.query_task("SELECT @n AS n", proxied.project, inputs={"n": int})
    request = h.create_request(task, execution, attempt=1, n=5)
    proxied.faults.add_rule("status", "GET", rf"/jobs/{started}$", count=None, status=503)
    first = proxied.stub.CreateTask(request, timeout=60).resource_meta  # attempt 1 cannot look up attempt 0's job
    proxied.faults.clear()
    second = proxied.stub.CreateTask(request, timeout=60).resource_meta

    spent, reused = BigQueryMetadata.decode(first), BigQueryMetadata.decode(second)
    assert spent.retryable and spent.error and not spent.job_id
    assert (reused.job_id, reused.reused_from_attempt) == (started, 0)
    assert h.poll(proxied.stub, first).phase == TaskExecution.RETRYABLE_FAILED
    assert h.poll(proxied.stub, second).phase == TaskExecution.SUCCEEDED
    assert proxied.faults.exchanges("jobs.insert") == []  # neither send submitted anything
    assert [j.job_id for j in proxied.jobs(execution)] == [started]


# --- secrets and exposure -----------------------------------------------------------------------------

_SECRET_TEXT = "s3cr3t-input-VALUE-7f3a9c"
_SECRET_INT = 918273645546372
_FAKE_TOKEN = "ya29.FAKE-TOKEN-do-not-log-4c1d8e"
_KEY_ID = "fake-private-key-id-0b7e2a"

#: Imported by the service (``--modules``): its anonymous emulator credentials carry a bearer token, as
#: real credentials would, so the token travels in every BigQuery request the proxy sees (whichever of
#: google-auth's two hooks the transport calls).
_TOKEN_MODULE = f"""
from google.auth import credentials

def _apply(self, headers, token=None):
    headers["authorization"] = "Bearer {_FAKE_TOKEN}"

def _before_request(self, request, method, url, headers):
    self.apply(headers)

credentials.AnonymousCredentials.apply = _apply
credentials.AnonymousCredentials.before_request = _before_request
"""


@pytest.fixture(scope="module")
def logged_service(emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, Any]]:
    """A service logging at INFO, with a bearer token on its requests and a fake key file in its env."""
    home = tmp_path_factory.mktemp("secrets")
    (home / "bq_fake_token.py").write_text(textwrap.dedent(_TOKEN_MODULE))
    key = home / "key.json"
    key.write_text(f'{{"type": "service_account", "private_key_id": "{_KEY_ID}", "private_key": "{_FAKE_TOKEN}"}}')
    with FaultProxy(emulator.rest_url) as proxy:
        env = {
            "BIGQUERY_EMULATOR_HOST": proxy.url,
            "FLYTEKITPLUGINS_BIGQUERY_RETRY_SECONDS": "1",
            "FLYTE_SDK_LOGGING_LEVEL": "20",  # INFO
            "FLYTE_SDK_RICH_TRACEBACKS": "0",  # plain lines: rich wraps them at 80 columns
            "FLYTE_SDK_LOGGING_FORMAT": "text",
            "GOOGLE_APPLICATION_CREDENTIALS": str(key),
            "PYTHONPATH": os.pathsep.join([str(home), os.environ.get("PYTHONPATH", "")]),
        }
        service = ServiceProcess(env, args=["--modules", "bq_fake_token"]).start()
        try:
            yield service, proxy
        finally:
            service.cleanup()


def test_service_logs_at_info_contain_no_input_value_token_or_key(
    logged_service: tuple[ServiceProcess, FaultProxy], emulator: Any
) -> None:
    service, proxy = logged_service
    with grpc.insecure_channel(service.target, options=GRPC_OPTIONS) as channel:
        stub = AsyncAgentServiceStub(channel)
        values = {"s": _SECRET_TEXT, "n": _SECRET_INT}
        good = h.query_task("SELECT @s AS s, @n AS n", emulator.project, inputs={"s": str, "n": int})
        failing = h.query_task("SELECT @s AS s FROM secrets_missing_dataset.t", emulator.project, inputs={"s": str})
        undeclared = h.query_task("SELECT @s AS s, @missing AS m", emulator.project, inputs={"s": str})

        proxy.add_rule("status", *_INSERT, count=1, status=503)
        proxy.add_rule("drop", *_INSERT, count=1)
        meta = stub.CreateTask(h.create_request(good, h.new_execution(), **values), timeout=60).resource_meta
        assert h.poll(stub, meta).phase == TaskExecution.SUCCEEDED
        meta = stub.CreateTask(h.create_request(failing, h.new_execution(), s=_SECRET_TEXT), timeout=60).resource_meta
        assert h.poll(stub, meta).phase == TaskExecution.FAILED
        meta = stub.CreateTask(
            h.create_request(undeclared, h.new_execution(), s=_SECRET_TEXT), timeout=60
        ).resource_meta
        assert h.poll(stub, meta).phase == TaskExecution.FAILED
        proxy.add_rule("status", *_INSERT, count=None, status=503)
        meta = stub.CreateTask(h.create_request(good, h.new_execution(), **values), timeout=60).resource_meta
        assert h.poll(stub, meta).phase == TaskExecution.RETRYABLE_FAILED
        exchanges = list(proxy.log)
        proxy.clear()
        with pytest.raises(grpc.RpcError):  # an error path that logs a traceback
            h.get_resource(stub, b"\x00 not metadata")

    log = service.log_text()
    assert "start creating the job" in log  # INFO lines are really there
    headers = [{k.lower(): v for k, v in e.headers} for e in exchanges]
    assert any(sent.get("authorization") == f"Bearer {_FAKE_TOKEN}" for sent in headers)  # the token was in play
    unwrapped = "".join(log.split())  # a value split across lines would still be found
    for secret in (_SECRET_TEXT, str(_SECRET_INT), _FAKE_TOKEN, _KEY_ID):
        assert secret not in unwrapped


def test_service_launcher_binds_loopback_when_no_host_is_given(tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flytekitplugins.bigquery.service", "--port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while "connector service listening on" not in log.read_text() and proc.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert "listening on 127.0.0.1:" in log.read_text()
        addresses = listening_addresses(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    assert addresses and all(is_loopback(address) for address, _ in addresses), addresses


def test_emulator_harness_binds_loopback_only(emulator: Any) -> None:
    addresses = [a for pid in h.group_pids(emulator.pid) for a in listening_addresses(pid)]
    assert len({port for _, port in addresses}) >= 2, addresses  # REST and gRPC
    assert all(is_loopback(address) for address, _ in addresses), addresses


def test_fault_proxy_binds_loopback_only(emulator: Any) -> None:
    with FaultProxy(emulator.rest_url) as proxy:
        port = proxy.port
        ours = [a for a in listening_addresses(os.getpid()) if a[1] == port]
    assert ours == [("127.0.0.1", port)]
