"""The call layer (:mod:`flyte_bigquery_core.jobs_api` over :mod:`flyte_bigquery_core.transport`), for real.

Real parts only: aiohttp talking HTTP to the local BigQuery emulator through the fault-injecting proxy
(:class:`~flyte_bigquery_core.testing.faultproxy.FaultProxy`, conftest's ``proxy``/``faults``), which makes
BigQuery misbehave where a scenario needs it (5xx, 429, dropped connections, a lost ``jobs.insert`` answer, a
truncated body, a 401). What is checked is what the client library guaranteed: the same retry verdicts,
409 → reattach, NotFound semantics, BigQuery's reason and message in our errors, and that the calls work from
any event loop and leave nothing open. The same behaviours, scripted in-process, are in tests/core.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import pytest
from flyte_bigquery_core.clients import ClientPool
from flyte_bigquery_core.errors import BigQueryJobError, TransientError
from flyte_bigquery_core.jobs_api import Inserted, JobsApi
from flyte_bigquery_core.settings import Settings
from flyte_bigquery_core.testing.faultproxy import FaultProxy
from flyte_bigquery_core.transport import AiohttpSend, Transport
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import bigquery

pytestmark = pytest.mark.integration

_INSERT = r"/projects/[^/]+/jobs$"
_GET_JOB = r"/projects/[^/]+/jobs/[^/]+$"
_BUDGET = 3.0
_SQL = "SELECT @n * 7 AS answer"


@pytest.fixture
def api(faults: FaultProxy) -> Iterator[JobsApi]:
    """The jobs API as the connector gets it (the pool's wiring), aimed at the proxy, with a short budget."""
    pool = ClientPool(max_workers=4, settings=Settings(emulator_host=faults.url, retry_seconds=_BUDGET))
    try:
        yield pool.jobs()
    finally:
        pool.close()


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as pool:
        yield pool


def _job_id() -> str:
    return f"jobs_api_{uuid.uuid4().hex}"


def _resource(project: str, job_id: str, sql: str = _SQL) -> dict[str, Any]:
    """A query job resource as the connector builds it: BigQuery's REST fields, written by hand."""
    return {
        "jobReference": {"projectId": project, "jobId": job_id, "location": "US"},
        "configuration": {
            "query": {
                "query": sql,
                "useLegacySql": False,
                "useQueryCache": False,
                "parameterMode": "NAMED",
                "queryParameters": [
                    {"name": "n", "parameterType": {"type": "INT64"}, "parameterValue": {"value": "6"}}
                ],
            },
            "labels": {"suite": "jobs_api"},
        },
    }


def _insert(api: JobsApi, project: str, job_id: str) -> Inserted:
    return asyncio.run(api.insert(_resource(project, job_id)))


def _get(api: JobsApi, project: str, job_id: str) -> dict[str, Any]:
    return asyncio.run(api.get(project, job_id, "US"))


# --- the calls ----------------------------------------------------------------------------------------


def test_insert_sends_the_job_resource_and_bigquery_records_it(
    api: JobsApi, emulator: Any, bq_client: bigquery.Client
) -> None:
    job_id = _job_id()
    resource = _resource(emulator.project, job_id)
    sent = copy.deepcopy(resource)
    result = asyncio.run(api.insert(resource))

    assert not result.reattached
    reference = result.job["jobReference"]
    assert (reference["jobId"], reference["projectId"], reference["location"]) == (job_id, emulator.project, "US")
    assert resource == sent  # the caller's resource is not written into
    stored = bq_client.get_job(job_id, location="US")
    assert isinstance(stored, bigquery.QueryJob)
    assert stored.query == _SQL
    assert stored.labels == {"suite": "jobs_api"}
    assert stored.use_query_cache is False
    [param] = stored.query_parameters
    assert (param.name, param.value) == ("n", 6)
    assert [dict(r) for r in bq_client.list_rows(stored.destination)] == [{"answer": 42}]


def test_get_cancel_and_the_result_tables_row_count(api: JobsApi, emulator: Any) -> None:
    job_id = _job_id()
    _insert(api, emulator.project, job_id)

    async def calls() -> tuple[dict[str, Any], dict[str, Any], bool]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        job = await api.get(emulator.project, job_id, "US")
        while job["status"]["state"] != "DONE" and loop.time() < deadline:
            await asyncio.sleep(0.1)
            job = await api.get(emulator.project, job_id, "US")
        destination = job["configuration"]["query"]["destinationTable"]
        table = await api.table(destination["projectId"], destination["datasetId"], destination["tableId"])
        return job, table, await api.cancel(emulator.project, job_id, "US")

    job, table, cancelled = asyncio.run(calls())
    assert job["jobReference"]["jobId"] == job_id
    assert job["status"]["state"] == "DONE" and "errorResult" not in job["status"]
    assert job["statistics"]["query"]["statementType"] == "SELECT"
    assert int(table["numRows"]) == 1
    assert cancelled is True


def test_missing_job_is_not_found_and_cancelling_it_is_no_error(api: JobsApi, emulator: Any) -> None:
    missing = _job_id()
    with pytest.raises(api_exceptions.NotFound) as info:
        _get(api, emulator.project, missing)
    assert missing in str(info.value)
    assert asyncio.run(api.cancel(emulator.project, missing, "US")) is False


# --- faults: the retry policy and the verdicts ---------------------------------------------------------


def test_insert_503_twice_then_ok_is_one_job(
    api: JobsApi, faults: FaultProxy, emulator: Any, bq_client: bigquery.Client
) -> None:
    faults.add_rule("status", "POST", _INSERT, count=2, status=503)
    job_id = _job_id()
    result = _insert(api, emulator.project, job_id)
    assert not result.reattached and result.job["jobReference"]["jobId"] == job_id
    assert [e.status for e in faults.exchanges("jobs.insert")] == [503, 503, 200]
    assert bq_client.get_job(job_id, location="US").job_id == job_id


def test_lost_insert_response_reattaches_to_the_job(api: JobsApi, faults: FaultProxy, emulator: Any) -> None:
    faults.add_rule("drop", "POST", _INSERT, count=1)
    job_id = _job_id()
    result = _insert(api, emulator.project, job_id)
    assert result.reattached and result.job["jobReference"]["jobId"] == job_id
    # The emulator created the job, the answer was lost; the retry got 409 and jobs.get adopted the job.
    assert [(e.upstream_status, e.status) for e in faults.exchanges("jobs.insert")] == [(200, None), (409, 409)]
    assert [e.status for e in faults.exchanges("jobs.get")] == [200]


def test_jobs_get_500_reset_and_truncated_body_are_retried(api: JobsApi, faults: FaultProxy, emulator: Any) -> None:
    job_id = _job_id()
    _insert(api, emulator.project, job_id)
    faults.clear()
    faults.add_rule("status", "GET", _GET_JOB, count=1, status=500)
    faults.add_rule("reset", "GET", _GET_JOB, count=1)
    faults.add_rule("truncate", "GET", _GET_JOB, count=1)
    job = _get(api, emulator.project, job_id)
    assert job["jobReference"]["jobId"] == job_id
    assert [e.fault for e in faults.exchanges("jobs.get")] == ["status:500", "reset", "truncate", None]


def test_429_is_retried_after_the_retry_after_wait(api: JobsApi, faults: FaultProxy, emulator: Any) -> None:
    faults.add_rule("status", "POST", _INSERT, count=1, status=429, retry_after=1)
    started = time.monotonic()
    result = _insert(api, emulator.project, _job_id())
    waited = time.monotonic() - started
    assert not result.reattached
    assert [e.status for e in faults.exchanges("jobs.insert")] == [429, 200]
    assert waited >= 1.0  # our own first backoff is at most 0.25 s: the header set the wait


def test_unavailable_throughout_is_transient_after_the_budget(api: JobsApi, faults: FaultProxy, emulator: Any) -> None:
    faults.add_rule("status", "POST", _INSERT, count=None, status=503)
    started = time.monotonic()
    with pytest.raises(TransientError, match="unavailable while submitting the job") as info:
        _insert(api, emulator.project, _job_id())
    elapsed = time.monotonic() - started
    assert isinstance(info.value.__cause__, api_exceptions.ServiceUnavailable)
    assert len(faults.exchanges("jobs.insert")) >= 2
    assert elapsed < _BUDGET + 2  # gave up within the budget (plus the time of the last requests)


@pytest.mark.parametrize("status", [400, 403])
def test_rejection_is_permanent_with_bigquerys_reason_and_message(
    api: JobsApi, faults: FaultProxy, emulator: Any, status: int
) -> None:
    faults.add_rule("status", "POST", _INSERT, count=1, status=status)
    with pytest.raises(BigQueryJobError) as info:
        _insert(api, emulator.project, _job_id())
    assert info.value.reason == "injectedFault"
    assert f"injectedFault: fault injected by test proxy: HTTP {status}" in str(info.value)
    assert len(faults.exchanges("jobs.insert")) == 1  # not retried


def test_rate_limit_rejection_is_retried_by_its_reason(api: JobsApi, faults: FaultProxy, emulator: Any) -> None:
    # BigQuery sheds load with 403 rateLimitExceeded: the reason, not the status, makes it retryable.
    faults.add_rule("status", "POST", _INSERT, count=1, status=403, reason="rateLimitExceeded")
    result = _insert(api, emulator.project, _job_id())
    assert not result.reattached
    assert [e.status for e in faults.exchanges("jobs.insert")] == [403, 200]


def test_transient_jobs_get_failure_is_a_transient_error(api: JobsApi, faults: FaultProxy, emulator: Any) -> None:
    faults.add_rule("status", "GET", _GET_JOB, count=None, status=503)
    with pytest.raises(TransientError, match="fetching job"):
        _get(api, emulator.project, _job_id())


# --- credentials --------------------------------------------------------------------------------------


class _TestCredentials(Credentials):
    """Real google-auth credentials whose token endpoint is a counter; records where refreshes ran."""

    def __init__(self) -> None:
        super().__init__()
        self.refreshes = 0
        self.refreshed_on_a_loop = False
        self._mutex = threading.Lock()

    def refresh(self, request: Any) -> None:
        with self._mutex:
            self.refreshed_on_a_loop |= asyncio._get_running_loop() is not None
            self.refreshes += 1
            self.token = f"token-{self.refreshes}"
        self.expiry = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + datetime.timedelta(hours=1)


def _authorizations(faults: FaultProxy) -> list[str | None]:
    return [dict((k.lower(), v) for k, v in e.headers).get("authorization") for e in faults.log]


def test_token_is_refreshed_once_off_the_loop_for_concurrent_calls(
    faults: FaultProxy, emulator: Any, executor: ThreadPoolExecutor
) -> None:
    credentials = _TestCredentials()
    send = AiohttpSend(8)
    transport = Transport(faults.url, credentials, lambda: executor, "flytekitplugins-bigquery-test", send)
    path = f"/projects/{emulator.project}/datasets/samples"

    async def many() -> list[dict[str, Any]]:
        return await asyncio.gather(*(transport.request("GET", path) for _ in range(20)))

    try:
        answers = asyncio.run(many())
    finally:
        send.close()
    assert {a["datasetReference"]["datasetId"] for a in answers} == {"samples"}
    assert credentials.refreshes == 1
    assert not credentials.refreshed_on_a_loop
    assert _authorizations(faults) == ["Bearer token-1"] * 20


def test_401_refreshes_the_token_and_retries(faults: FaultProxy, emulator: Any, executor: ThreadPoolExecutor) -> None:
    credentials = _TestCredentials()
    faults.add_rule("status", "GET", r"/datasets/samples$", count=1, status=401)
    send = AiohttpSend(8)
    transport = Transport(faults.url, credentials, lambda: executor, "flytekitplugins-bigquery-test", send)
    try:
        answer = asyncio.run(transport.request("GET", f"/projects/{emulator.project}/datasets/samples"))
    finally:
        send.close()
    assert answer["datasetReference"]["datasetId"] == "samples"
    assert credentials.refreshes == 2  # the first token, then a forced refresh after the 401
    assert [e.status for e in faults.log] == [401, 200]
    assert _authorizations(faults) == ["Bearer token-1", "Bearer token-2"]


# --- one session per event loop -----------------------------------------------------------------------


class _Sessions:
    """A jobs API over its own :class:`AiohttpSend`, recording the aiohttp session each call used."""

    def __init__(self, url: str, project: str, job_id: str, executor: ThreadPoolExecutor) -> None:
        self.send = AiohttpSend(8)
        transport = Transport(url, AnonymousCredentials(), lambda: executor, "flytekitplugins-bigquery-test", self.send)
        self.api = JobsApi(transport, _BUDGET)
        self.project, self.job_id = project, job_id
        self.used: list[aiohttp.ClientSession] = []

    async def fetch(self) -> str:
        job = await self.api.get(self.project, self.job_id, "US")
        self.used.append(self.send._loops[asyncio.get_running_loop()].session)
        return str(job["jobReference"]["jobId"])


@pytest.fixture
def sessions(api: JobsApi, faults: FaultProxy, emulator: Any, executor: ThreadPoolExecutor) -> Iterator[_Sessions]:
    job_id = _job_id()
    _insert(api, emulator.project, job_id)
    recorder = _Sessions(faults.url, emulator.project, job_id, executor)
    try:
        yield recorder
    finally:
        recorder.send.close()


def test_each_asyncio_run_gets_a_session_closed_at_its_shutdown(sessions: _Sessions) -> None:
    assert [asyncio.run(sessions.fetch()) for _ in range(2)] == [sessions.job_id] * 2
    first, second = sessions.used
    assert first is not second
    assert first.closed and second.closed
    assert not sessions.send._loops


def test_a_long_lived_loop_keeps_its_session_until_close(sessions: _Sessions) -> None:
    # flytekit's local_connector_loop is such a loop.
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(sessions.fetch()) == sessions.job_id
        assert loop.run_until_complete(sessions.fetch()) == sessions.job_id
        first, again = sessions.used
        assert first is again and not first.closed
        sessions.send.close()
        assert first.closed
        # Usable again after close: a new session.
        assert loop.run_until_complete(sessions.fetch()) == sessions.job_id
        assert sessions.used[2] is not first and not sessions.used[2].closed
        sessions.send.close()
        assert sessions.used[2].closed
    finally:
        loop.close()


def test_two_loops_in_two_threads_get_a_session_each(sessions: _Sessions) -> None:
    both = threading.Barrier(2)

    def in_a_thread(_: int) -> str:
        async def fetch_together() -> str:
            await asyncio.get_running_loop().run_in_executor(None, both.wait, 10)  # both loops alive at once
            return await sessions.fetch()

        return asyncio.run(fetch_together())

    with ThreadPoolExecutor(2) as threads:
        assert list(threads.map(in_a_thread, range(2))) == [sessions.job_id] * 2
    first, second = sessions.used
    assert first is not second
    assert first.closed and second.closed
