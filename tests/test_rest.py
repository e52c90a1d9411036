"""The asyncio transport of the hot-path job calls (:mod:`flyte_bigquery_core.rest`), for real.

Real parts only: aiohttp talking HTTP to the local BigQuery emulator, through :class:`~tests.faultproxy.FaultProxy`
where a scenario needs BigQuery to misbehave (5xx, 429, dropped connections, a lost ``jobs.insert`` answer,
a truncated body, a 401). What is checked is what the synchronous client guaranteed: the same retry verdicts,
409 → reattach, NotFound semantics, BigQuery's reason and message in our errors, and that the calls work from
any event loop and leave nothing open.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flyte_bigquery_core.clients import ClientPool
from flyte_bigquery_core.errors import BigQueryJobError, TransientError
from flyte_bigquery_core.jobs import RETRY_BUDGET_ENV
from flyte_bigquery_core.rest import EMULATOR_HOST_ENV, RestTransport
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import Credentials
from google.cloud import bigquery

from .faultproxy import FaultProxy

pytestmark = pytest.mark.integration

_INSERT = r"/projects/[^/]+/jobs$"
_GET_JOB = r"/projects/[^/]+/jobs/[^/]+$"


@pytest.fixture(scope="module")
def proxy(emulator: Any) -> Iterator[FaultProxy]:
    with FaultProxy(emulator.rest_url) as p:
        yield p


@pytest.fixture
def faults(proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The proxy, cleared, with BigQuery traffic routed through it and a short retry budget."""
    proxy.clear()
    monkeypatch.setenv(EMULATOR_HOST_ENV, proxy.url)
    monkeypatch.setenv(RETRY_BUDGET_ENV, "3")
    yield proxy
    proxy.clear()


@pytest.fixture
def pool(emulator: Any) -> Iterator[ClientPool]:
    pool = ClientPool(max_workers=4)
    yield pool
    pool.close()


def _job_id() -> str:
    return f"rest_{uuid.uuid4().hex}"


def _config() -> bigquery.QueryJobConfig:
    return bigquery.QueryJobConfig(
        query_parameters=[bigquery.ScalarQueryParameter("n", "INT64", 6)],
        labels={"suite": "rest"},
        use_query_cache=False,
    )


def _submit(pool: ClientPool, project: str, job_id: str, sql: str = "SELECT @n * 7 AS answer") -> Any:
    client = pool.client(project, "US")
    return asyncio.run(pool.rest.submit_query(client, sql, _config(), job_id, "US"))


# --- the calls ----------------------------------------------------------------------------------------


def test_insert_sends_the_client_librarys_job_resource(
    pool: ClientPool, emulator: Any, bq_client: bigquery.Client
) -> None:
    job_id = _job_id()
    config = _config()
    result = _submit(pool, emulator.project, job_id)

    assert not result.reattached
    assert isinstance(result.job, bigquery.QueryJob)
    assert (result.job.job_id, result.job.project, result.job.location) == (job_id, emulator.project, "US")
    assert config.to_api_repr() == _config().to_api_repr()  # the caller's config is not written into
    stored = bq_client.get_job(job_id, location="US")
    assert stored.query == "SELECT @n * 7 AS answer"
    assert stored.labels == {"suite": "rest"}
    assert stored.use_query_cache is False
    [param] = stored.query_parameters
    assert (param.name, param.value) == ("n", 6)
    assert [dict(r) for r in stored.result()] == [{"answer": 42}]


def test_fetch_cancel_and_row_count(pool: ClientPool, emulator: Any) -> None:
    job_id = _job_id()
    _submit(pool, emulator.project, job_id)
    client = pool.client(emulator.project, "US")

    async def calls() -> tuple[Any, int | None, bool]:
        rest = pool.rest
        deadline = asyncio.get_running_loop().time() + 30
        job = await rest.fetch_job(client, job_id, emulator.project, "US")
        while job.state != "DONE" and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
            job = await rest.fetch_job(client, job_id, emulator.project, "US")
        rows = await rest.table_rows(job.destination)
        return job, rows, await rest.cancel_job(client, job_id, emulator.project, "US")

    job, rows, cancelled = asyncio.run(calls())
    assert isinstance(job, bigquery.QueryJob) and job.state == "DONE" and job.error_result is None
    assert job._properties["statistics"]["query"]["statementType"] == "SELECT"
    assert rows == 1
    assert cancelled is True


def test_missing_job_is_not_found_and_cancelling_it_is_no_error(pool: ClientPool, emulator: Any) -> None:
    client = pool.client(emulator.project, "US")
    missing = _job_id()
    with pytest.raises(api_exceptions.NotFound) as info:
        asyncio.run(pool.rest.fetch_job(client, missing, emulator.project, "US"))
    assert missing in str(info.value)
    assert asyncio.run(pool.rest.cancel_job(client, missing, emulator.project, "US")) is False


# --- faults: the retry policy and the verdicts ---------------------------------------------------------


def test_insert_503_twice_then_ok_is_one_job(
    pool: ClientPool, faults: FaultProxy, emulator: Any, bq_client: bigquery.Client
) -> None:
    faults.add_rule("status", "POST", _INSERT, count=2, status=503)
    job_id = _job_id()
    result = _submit(pool, emulator.project, job_id)
    assert not result.reattached and result.job.job_id == job_id
    assert [e.status for e in faults.exchanges("jobs.insert")] == [503, 503, 200]
    assert bq_client.get_job(job_id, location="US").job_id == job_id


def test_lost_insert_response_reattaches_to_the_job(pool: ClientPool, faults: FaultProxy, emulator: Any) -> None:
    faults.add_rule("drop", "POST", _INSERT, count=1)
    job_id = _job_id()
    result = _submit(pool, emulator.project, job_id)
    assert result.reattached and result.job.job_id == job_id
    # The emulator created the job, the answer was lost; the retry got 409 and jobs.get adopted the job.
    assert [(e.upstream_status, e.status) for e in faults.exchanges("jobs.insert")] == [(200, None), (409, 409)]
    assert [e.status for e in faults.exchanges("jobs.get")] == [200]


def test_jobs_get_500_reset_and_truncated_body_are_retried(pool: ClientPool, faults: FaultProxy, emulator: Any) -> None:
    job_id = _job_id()
    _submit(pool, emulator.project, job_id)
    faults.clear()
    faults.add_rule("status", "GET", _GET_JOB, count=1, status=500)
    faults.add_rule("reset", "GET", _GET_JOB, count=1)
    faults.add_rule("truncate", "GET", _GET_JOB, count=1)
    client = pool.client(emulator.project, "US")
    job = asyncio.run(pool.rest.fetch_job(client, job_id, emulator.project, "US"))
    assert job.job_id == job_id
    assert [e.fault for e in faults.exchanges("jobs.get")] == ["status:500", "reset", "truncate", None]


def test_429_is_retried(pool: ClientPool, faults: FaultProxy, emulator: Any) -> None:
    faults.add_rule("status", "POST", _INSERT, count=1, status=429, retry_after=1)
    result = _submit(pool, emulator.project, _job_id())
    assert not result.reattached
    assert [e.status for e in faults.exchanges("jobs.insert")] == [429, 200]


def test_unavailable_throughout_is_transient_after_the_budget(
    pool: ClientPool, faults: FaultProxy, emulator: Any
) -> None:
    faults.add_rule("status", "POST", _INSERT, count=None, status=503)
    with pytest.raises(TransientError, match="unavailable while submitting the query job") as info:
        _submit(pool, emulator.project, _job_id())
    assert isinstance(info.value.__cause__, api_exceptions.RetryError)
    assert len(faults.exchanges("jobs.insert")) >= 2


@pytest.mark.parametrize("status", [400, 403])
def test_rejection_is_permanent_with_bigquerys_reason_and_message(
    pool: ClientPool, faults: FaultProxy, emulator: Any, status: int
) -> None:
    faults.add_rule("status", "POST", _INSERT, count=1, status=status)
    with pytest.raises(BigQueryJobError) as info:
        _submit(pool, emulator.project, _job_id())
    assert info.value.reason == "injectedFault"
    assert f"injectedFault: fault injected by test proxy: HTTP {status}" in str(info.value)
    assert len(faults.exchanges("jobs.insert")) == 1  # not retried


def test_transient_jobs_get_failure_is_a_transient_error(pool: ClientPool, faults: FaultProxy, emulator: Any) -> None:
    faults.add_rule("status", "GET", _GET_JOB, count=None, status=503)
    client = pool.client(emulator.project, "US")
    with pytest.raises(TransientError, match="fetching job"):
        asyncio.run(pool.rest.fetch_job(client, _job_id(), emulator.project, "US"))


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


def _transport(credentials: Credentials, executor: ThreadPoolExecutor) -> RestTransport:
    return RestTransport(lambda emulator: credentials, lambda: executor, 8, "flytekitplugins-bigquery-test")


def test_token_is_refreshed_once_off_the_loop_for_concurrent_calls(faults: FaultProxy, emulator: Any) -> None:
    credentials = _TestCredentials()
    path = f"/projects/{emulator.project}/datasets/samples"
    with ThreadPoolExecutor(2) as executor:
        transport = _transport(credentials, executor)

        async def many() -> list[dict[str, Any]]:
            return await asyncio.gather(*(transport.request("GET", path) for _ in range(20)))

        answers = asyncio.run(many())
        transport.close()
    assert {a["datasetReference"]["datasetId"] for a in answers} == {"samples"}
    assert credentials.refreshes == 1
    assert not credentials.refreshed_on_a_loop


def test_401_refreshes_the_token_and_retries(faults: FaultProxy, emulator: Any) -> None:
    credentials = _TestCredentials()
    faults.add_rule("status", "GET", r"/datasets/samples$", count=1, status=401)
    with ThreadPoolExecutor(2) as executor:
        transport = _transport(credentials, executor)
        answer = asyncio.run(transport.request("GET", f"/projects/{emulator.project}/datasets/samples"))
        transport.close()
    assert answer["datasetReference"]["datasetId"] == "samples"
    assert credentials.refreshes == 2  # the first token, then a forced refresh after the 401
    assert [e.status for e in faults.log] == [401, 200]


# --- one session per event loop -----------------------------------------------------------------------


def test_sessions_follow_event_loops_and_close(pool: ClientPool, emulator: Any) -> None:
    client = pool.client(emulator.project, "US")
    job_id = _job_id()
    _submit(pool, emulator.project, job_id)
    sessions = []

    async def fetch() -> str:
        job = await pool.rest.fetch_job(client, job_id, emulator.project, "US")
        sessions.append(pool.rest._loops[asyncio.get_running_loop()].session)
        return str(job.job_id)

    # asyncio.run: a fresh loop each time; its session is closed when that loop shuts down.
    assert [asyncio.run(fetch()) for _ in range(2)] == [job_id, job_id]
    assert sessions[0] is not sessions[1]
    assert all(s.closed for s in sessions) and not pool.rest._loops

    # A long-lived loop (flytekit's local_connector_loop is one) keeps its session until the pool closes.
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(fetch()) == job_id
        assert loop.run_until_complete(fetch()) == job_id
        assert sessions[2] is sessions[3] and not sessions[2].closed
        pool.close()
        assert sessions[2].closed
        # The pool is usable again after close (a new transport, a new session).
        assert loop.run_until_complete(fetch()) == job_id
        assert sessions[4] is not sessions[2]
        pool.close()
    finally:
        loop.close()

    # Two loops at once, in two threads: each gets its own session.
    with ThreadPoolExecutor(2) as threads:
        assert list(threads.map(lambda _: asyncio.run(fetch()), range(2))) == [job_id, job_id]
