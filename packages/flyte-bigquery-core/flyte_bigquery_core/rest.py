"""The connector's hot-path BigQuery calls over asyncio HTTP: ``jobs.insert``, ``jobs.get``, ``jobs.cancel``,
``tables.get``.

Why not google-cloud-bigquery on a thread pool for these: the connector service is one process, so its
throughput is bounded by the CPU one request costs under the GIL. With the synchronous client, a ``CreateTask``
or ``GetTask`` spent most of its CPU in requests/urllib3 and on the hop to a worker thread and back; made with
aiohttp on the calling event loop, the same calls cost half the service CPU (at 64 concurrent calls against
a 100 ms BigQuery: CreateTask 1.2 instead of 2.4 ms, GetTask 1.2 instead of 2.8 ms) and the service serves
about 590 creates/s instead of 410, no longer saturating its core; a connector that does nothing reaches 607
(``benchmarks/service_bench.py``; results in ``benchmarks/results/service.json``).

Only the transport is ours. Everything BigQuery-facing is the client library's or :mod:`.jobs`':

* request bodies come from ``QueryJob(...).to_api_repr()``; responses are parsed by ``QueryJob.from_api_repr``
  (``Client.job_from_resource`` for jobs.get, as ``Client.get_job`` does) and ``Table.from_api_repr``;
* HTTP errors become ``google.api_core.exceptions`` via ``from_http_status`` with BigQuery's ``errors``, so
  :func:`.jobs.raise_classified` judges them exactly as before;
* retries are ``google.api_core``'s ``AsyncRetry`` with :func:`.jobs.is_transient` and the same backoff and
  budget as the synchronous path (:func:`.jobs.async_retry_policy`); a 409 on insert adopts the existing job.

The endpoint is ``BIGQUERY_EMULATOR_HOST`` when set (as google-cloud-bigquery does), else
``https://bigquery.googleapis.com``. Credentials are the pool's (loaded once); a token is refreshed on a worker
thread, one refresh at a time per event loop, never on the loop itself; a 401 forces a refresh and a retry, as
google-auth's ``AuthorizedSession`` does.

aiohttp sessions belong to one event loop, and the connector runs on several: the service's loop, flytekit's
``local_connector_loop`` in a local ``pyflyte run``, a fresh loop per ``asyncio.run`` in tests. So
:class:`RestTransport` keeps one session per running loop and closes it when that loop shuts down (see
:meth:`RestTransport._session`).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import ssl
import threading
from collections.abc import AsyncGenerator, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import google.auth.transport.requests
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import bigquery
from google.cloud.bigquery.job.base import _JobReference
from yarl import URL

from .jobs import SubmitResult, async_retry_policy, raise_classified

__all__ = ["DEFAULT_ENDPOINT", "EMULATOR_HOST_ENV", "RestTransport"]

EMULATOR_HOST_ENV = "BIGQUERY_EMULATOR_HOST"
DEFAULT_ENDPOINT = "https://bigquery.googleapis.com"
_API_PATH = "/bigquery/v2"
#: Per-request HTTP timeout (as :data:`.jobs._REQUEST_TIMEOUT`): a hung connection counts against the budget.
_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30.0)
_ROW_COUNT_TIMEOUT = aiohttp.ClientTimeout(total=5.0)
#: google-auth's AuthorizedSession: refresh the token and retry on these, at most this many times.
_REFRESH_STATUS_CODES = frozenset({401})
_MAX_REFRESH_ATTEMPTS = 2
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@dataclass
class _LoopSession:
    """What one event loop needs: its HTTP session, its refresh lock, and the hook that closes them."""

    session: aiohttp.ClientSession
    refresh_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closer: AsyncGenerator[None, None] | None = None


class RestTransport:
    """Authorized JSON calls to the BigQuery REST API from any event loop, and the hot-path job calls.

    Owned by :class:`~.clients.ClientPool`, which supplies the credentials (per endpoint: anonymous for an
    emulator), the executor that token refreshes run on, and the connection limit per loop. Thread-safe.
    """

    def __init__(
        self,
        credentials: Callable[[str | None], Credentials],
        executor: Callable[[], Executor],
        max_connections: int,
        user_agent: str,
    ) -> None:
        self._credentials = credentials
        self._executor = executor
        self._max_connections = max_connections
        # What google-cloud-core's JSONConnection sends with every call.
        self._headers = {"User-Agent": user_agent, "X-Goog-API-Client": user_agent}
        self._lock = threading.Lock()
        self._loops: dict[asyncio.AbstractEventLoop, _LoopSession] = {}
        self._auth_request: google.auth.transport.requests.Request | None = None
        self._ssl: ssl.SSLContext | None = None

    # -- sessions, one per event loop -----------------------------------------------------------------

    async def _session(self) -> _LoopSession:
        """The running loop's session, created on first use.

        It is closed while its loop can still run the close: ``asyncio.run`` (and any loop that calls
        ``shutdown_asyncgens()`` before closing) finalizes the async generator :meth:`_close_at_shutdown`,
        whose ``finally`` closes the session. Loops found closed without that are forgotten on the next new
        session; :meth:`close` closes whatever is left.
        """
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is not None:
            return state
        connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl_context(), ttl_dns_cache=300)
        # trust_env makes aiohttp re-read proxy variables for every request; only pay that when one is set.
        trust_env = any(os.environ.get(name) for name in _PROXY_VARIABLES)
        state = _LoopSession(aiohttp.ClientSession(connector=connector, trust_env=trust_env))
        with self._lock:
            for old in [old for old in self._loops if old.is_closed()]:
                del self._loops[old]
            self._loops[loop] = state
        closer = state.closer = self._close_at_shutdown(loop, state)
        await closer.__anext__()  # started on this loop, so the loop finalizes it at shutdown
        return state

    async def _close_at_shutdown(
        self, loop: asyncio.AbstractEventLoop, state: _LoopSession
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                if self._loops.get(loop) is state:
                    del self._loops[loop]
            await state.session.close()

    def _ssl_context(self) -> ssl.SSLContext | bool:
        """requests' CA bundle (certifi, or ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``), built once."""
        if self._ssl is None:
            import certifi

            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
            self._ssl = ssl.create_default_context(cafile=bundle)
        return self._ssl

    def close(self) -> None:
        """Close the sessions of loops that are not running (and forget those of closed loops).

        Sessions of running loops are closed by their loop's shutdown (see :meth:`_session`).
        """
        with self._lock:
            states, self._loops = self._loops, {}
        for loop, state in states.items():
            if loop.is_closed():
                continue
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(_shut(state), loop)
                continue
            shutdown = _shut(state)
            try:
                loop.run_until_complete(shutdown)
            except RuntimeError:  # another loop is running in this thread: leave the session to the GC
                shutdown.close()

    # -- one authorized call --------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        timeout: aiohttp.ClientTimeout = _REQUEST_TIMEOUT,
    ) -> dict[str, Any]:
        """``method`` ``/bigquery/v2{path}``; the decoded JSON answer, or a ``GoogleAPICallError`` for a non-2xx."""
        emulator = os.environ.get(EMULATOR_HOST_ENV) or None
        credentials = self._credentials(emulator)
        url = (emulator or DEFAULT_ENDPOINT).rstrip("/") + _API_PATH + path
        if params:
            url += "?" + urlencode(params)
        data = json.dumps(body).encode() if body is not None else None
        state = await self._session()
        for attempt in range(_MAX_REFRESH_ATTEMPTS + 1):
            headers = dict(self._headers)
            if data is not None:
                headers["Content-Type"] = "application/json"
            await self._authorize(credentials, state, method, url, headers, force=attempt > 0)
            async with state.session.request(
                method, URL(url, encoded=True), data=data, headers=headers, timeout=timeout
            ) as response:
                status = response.status
                payload = await response.read()
            if status not in _REFRESH_STATUS_CODES or isinstance(credentials, AnonymousCredentials):
                break
        if 200 <= status < 300:
            return json.loads(payload) if payload else {}
        raise _http_error(status, method, url, payload)

    async def _authorize(
        self,
        credentials: Credentials,
        state: _LoopSession,
        method: str,
        url: str,
        headers: dict[str, str],
        force: bool,
    ) -> None:
        """Add the token to ``headers``; refresh it first (on a worker thread, once per loop) when needed."""
        if credentials.valid and not force:
            credentials.apply(headers)
            return
        token = credentials.token
        async with state.refresh_lock:
            if force and credentials.token == token:
                await self._in_executor(credentials.refresh, self._request_for_auth())
            # Refreshes if (still) invalid, then applies the token and google-auth's own headers.
            await self._in_executor(credentials.before_request, self._request_for_auth(), method, url, headers)

    def _request_for_auth(self) -> google.auth.transport.requests.Request:
        if self._auth_request is None:
            self._auth_request = google.auth.transport.requests.Request()
        return self._auth_request

    async def _in_executor(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor(), fn, *args)

    # -- the job calls --------------------------------------------------------------------------------

    async def submit_query(
        self,
        client: bigquery.Client,
        sql: str,
        job_config: bigquery.QueryJobConfig,
        job_id: str,
        location: str | None,
    ) -> SubmitResult:
        """:func:`.jobs.submit_query`, asynchronously: insert ``job_id``; on 409 adopt the existing job."""
        location = location or client.location
        reference = _JobReference(job_id, project=client.project, location=location)
        # As client.query does: a copy of the config, since QueryJob writes the query into it.
        resource = bigquery.QueryJob(reference, sql, client=client, job_config=copy.deepcopy(job_config)).to_api_repr()
        path = f"/projects/{client.project}/jobs"
        try:
            answer = await async_retry_policy()(self.request)("POST", path, body=resource)
            return SubmitResult(bigquery.QueryJob.from_api_repr(answer, client), reattached=False)
        except api_exceptions.Conflict:
            return SubmitResult(await self.fetch_job(client, job_id, client.project, location), reattached=True)
        except Exception as exc:
            raise_classified(exc, "submitting the query job")

    async def fetch_job(self, client: bigquery.Client, job_id: str, project: str, location: str | None) -> Any:
        """:func:`.jobs.fetch_job`, asynchronously: ``jobs.get``; NotFound propagates."""
        location = location or client.location
        try:
            answer = await async_retry_policy()(self.request)(
                "GET", f"/projects/{project}/jobs/{job_id}", params=_job_params(location)
            )
        except api_exceptions.NotFound:
            raise
        except Exception as exc:
            raise_classified(exc, f"fetching job {job_id}")
        return client.job_from_resource(answer)

    async def cancel_job(self, client: bigquery.Client, job_id: str, project: str, location: str | None) -> bool:
        """:func:`.jobs.cancel_job`, asynchronously: ``False`` when the job does not exist."""
        location = location or client.location
        try:
            await async_retry_policy()(self.request)(
                "POST", f"/projects/{project}/jobs/{job_id}/cancel", params=_job_params(location)
            )
            return True
        except api_exceptions.NotFound:
            return False
        except Exception as exc:
            raise_classified(exc, f"cancelling job {job_id}")

    async def table_rows(self, table: bigquery.TableReference) -> int | None:
        """``tables.get``'s row count, one try with a short timeout (a report detail, never worth waiting for)."""
        answer = await self.request("GET", table.path, timeout=_ROW_COUNT_TIMEOUT)
        rows = bigquery.Table.from_api_repr(answer).num_rows
        return int(rows) if rows is not None else None


async def _shut(state: _LoopSession) -> None:
    """Close a loop's session by finishing its shutdown hook (so the loop has nothing left to finalize)."""
    if state.closer is not None:
        await state.closer.aclose()
    await state.session.close()


def _job_params(location: str | None) -> dict[str, str]:
    """The query string google-cloud-bigquery sends with ``jobs.get`` and ``jobs.cancel``."""
    return {"projection": "full", "location": location} if location else {"projection": "full"}


def _http_error(status: int, method: str, url: str, payload: bytes) -> api_exceptions.GoogleAPICallError:
    """The ``google.api_core`` exception google-cloud-bigquery would raise for this answer."""
    try:
        decoded = json.loads(payload)
    except ValueError:
        decoded = None
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if not isinstance(error, dict):
        error = {"message": payload.decode(errors="replace") or "unknown error"}
    message = f"{method} {url}: {error.get('message', 'unknown error')}"
    return api_exceptions.from_http_status(
        status, message, errors=error.get("errors", ()), details=error.get("details", ())
    )
