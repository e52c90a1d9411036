"""Authorized JSON calls to the BigQuery REST API from any asyncio event loop.

Why our own transport and not google-cloud-bigquery on a thread pool: the connector service is one process,
so its throughput is bounded by the CPU one request costs under the GIL. With the synchronous client a job
call spent most of its CPU in requests/urllib3 and on the hop to a worker thread and back; made with aiohttp
on the calling loop the same calls cost about half (``benchmarks/service_bench.py``). Only the transport is
ours: errors become ``google.api_core`` exceptions exactly as the client library raises them, and the retry
verdict is :mod:`.retry`'s.

The lowest boundary is a :class:`Send` function: ``(method, url, headers, body, timeout) -> Response``. The
default, :class:`AiohttpSend`, keeps one aiohttp session per running event loop (sessions belong to one
loop, and the connector runs on several: the service's, flytekit's ``local_connector_loop``, a fresh one per
``asyncio.run``) and closes it when that loop shuts down. Tests pass their own function to play 401, 409,
429 and 503 answers in-process, in milliseconds.

Tokens: refreshed on a worker thread, one refresh at a time per event loop, never on the loop itself; a 401
forces a refresh and another try, at most :data:`MAX_REFRESH_ATTEMPTS` times, as google-auth's
``AuthorizedSession`` does. A 429/503 answer's ``Retry-After`` is attached to the raised exception as
``retry_after`` (seconds) for :func:`.retry.call_with_retry`.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp
import google.auth.transport.requests
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import AnonymousCredentials, Credentials
from yarl import URL

from . import metrics
from .retry import RETRY_AFTER_STATUSES, parse_retry_after

__all__ = ["API_PATH", "DEFAULT_ENDPOINT", "MAX_REFRESH_ATTEMPTS", "AiohttpSend", "Response", "Send", "Transport"]

DEFAULT_ENDPOINT = "https://bigquery.googleapis.com"
API_PATH = "/bigquery/v2"
#: Seconds one HTTP request may take, so that a hung connection counts against the retry budget.
REQUEST_TIMEOUT = 30.0
#: google-auth's AuthorizedSession: on these statuses refresh the token and try again, at most this often.
REFRESH_STATUSES = frozenset({401})
MAX_REFRESH_ATTEMPTS = 2


@dataclass(frozen=True)
class Response:
    """One HTTP answer: status, headers (case-insensitive lookups are the sender's business) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Send(Protocol):
    """Sends one HTTP request and returns the whole answer; raises on transport failures."""

    def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> Awaitable[Response]: ...


# --- the default sender: aiohttp, one session per event loop ---------------------------------------------------


@dataclass
class _LoopSession:
    session: aiohttp.ClientSession
    closer: AsyncGenerator[None, None] | None = None


class AiohttpSend:
    """:class:`Send` over aiohttp. ``trust_env`` makes aiohttp honour proxy variables (read per request, so
    only on when a proxy is configured); ``ca_bundle`` replaces certifi's bundle. Thread-safe."""

    def __init__(self, max_connections: int, trust_env: bool = False, ca_bundle: str | None = None) -> None:
        self._max_connections = max_connections
        self._trust_env = trust_env
        self._ca_bundle = ca_bundle
        self._lock = threading.Lock()
        self._loops: dict[asyncio.AbstractEventLoop, _LoopSession] = {}
        self._ssl: ssl.SSLContext | None = None

    async def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> Response:
        state = await self._session()
        async with state.session.request(
            method,
            URL(url, encoded=True),
            data=body,
            headers=dict(headers),
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as answer:
            return Response(answer.status, answer.headers, await answer.read())

    async def _session(self) -> _LoopSession:
        """The running loop's session, created on first use and closed by the loop's own shutdown:
        ``asyncio.run`` finalizes the async generator :meth:`_close_at_shutdown`, whose ``finally`` closes it.
        Sessions of loops found closed without that are forgotten when the next one is made."""
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is not None:
            return state
        connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl_context(), ttl_dns_cache=300)
        state = _LoopSession(aiohttp.ClientSession(connector=connector, trust_env=self._trust_env))
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

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            import certifi

            self._ssl = ssl.create_default_context(cafile=self._ca_bundle or certifi.where())
        return self._ssl

    def close(self) -> None:
        """Close the sessions of loops that are not running; running loops close theirs at shutdown."""
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
            except RuntimeError:  # another loop runs in this thread: leave the session to the GC
                shutdown.close()


async def _shut(state: _LoopSession) -> None:
    if state.closer is not None:
        await state.closer.aclose()
    await state.session.close()


# --- authorized JSON calls --------------------------------------------------------------------------------------


class Transport:
    """``request(method, path, ...)`` against ``{endpoint}/bigquery/v2{path}`` with ``credentials``.

    ``executor`` runs token refreshes (blocking google-auth calls); ``user_agent`` is sent as google-cloud-core's
    JSONConnection sends it. ``after_auth`` headers are set after the credentials' own (e.g. a task's
    ``x-goog-user-project``, which wins over the credentials' quota project). Thread-safe; usable from any
    number of event loops.
    """

    def __init__(
        self,
        endpoint: str,
        credentials: Credentials,
        executor: Callable[[], Executor],
        user_agent: str,
        send: Send,
        after_auth: Mapping[str, str] | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._credentials = credentials
        self._executor = executor
        self._headers = {"User-Agent": user_agent, "X-Goog-API-Client": user_agent}
        self._after_auth = dict(after_auth or {})
        self._send = send
        self._refresh_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._auth_request: google.auth.transport.requests.Request | None = None

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        timeout: float = REQUEST_TIMEOUT,
        api_method: str = "other",
    ) -> dict[str, Any]:
        """The decoded JSON answer of one call (``{}`` for an empty body).

        Each HTTP try is timed into :data:`.metrics.API_SECONDS` as ``api_method`` (``jobs.get``…) with its
        status, or with the class of the transport error it raised.

        Raises the ``google.api_core.exceptions.GoogleAPICallError`` subclass google-cloud-bigquery would raise
        for a non-2xx answer (with BigQuery's ``errors``, and ``retry_after`` on 429/503), and the transport's
        own errors (``aiohttp.ClientError``, ``TimeoutError``…) unchanged.
        """
        url = self.endpoint + API_PATH + path + ("?" + urlencode(params) if params else "")
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        for attempt in range(MAX_REFRESH_ATTEMPTS + 1):
            headers = dict(self._headers)
            if data is not None:
                headers["Content-Type"] = "application/json"
            await self._authorize(method, url, headers, force=attempt > 0)
            headers.update(self._after_auth)
            started = time.perf_counter()
            try:
                answer = await self._send(method, url, headers, data, timeout)
            except BaseException as exc:
                metrics.api_call(api_method, exc.__class__.__name__, time.perf_counter() - started)
                raise
            metrics.api_call(api_method, answer.status, time.perf_counter() - started)
            if answer.status not in REFRESH_STATUSES or isinstance(self._credentials, AnonymousCredentials):
                break
        if 200 <= answer.status < 300:
            return json.loads(answer.body) if answer.body else {}
        raise http_error(answer, method, path)

    async def _authorize(self, method: str, url: str, headers: dict[str, str], force: bool) -> None:
        """Add the token to ``headers``; refresh it first (on a worker thread, once per loop) when needed."""
        credentials = self._credentials
        if credentials.valid and not force:
            credentials.apply(headers)
            return
        token = credentials.token
        loop = asyncio.get_running_loop()
        lock = self._refresh_locks.setdefault(loop, asyncio.Lock())
        async with lock:
            if force and credentials.token == token:  # nobody refreshed it meanwhile
                await loop.run_in_executor(self._executor(), credentials.refresh, self._request_for_auth())
            # Refreshes if (still) invalid, then applies the token and google-auth's own headers.
            await loop.run_in_executor(
                self._executor(), credentials.before_request, self._request_for_auth(), method, url, headers
            )

    def _request_for_auth(self) -> google.auth.transport.requests.Request:
        if self._auth_request is None:
            self._auth_request = google.auth.transport.requests.Request()
        return self._auth_request


def http_error(answer: Response, method: str, path: str) -> api_exceptions.GoogleAPICallError:
    """The ``google.api_core`` exception for a non-2xx answer, as google-cloud-bigquery would raise it.

    The message names the method and the API path (never the query string or body, which may carry values).
    """
    try:
        decoded = json.loads(answer.body)
    except ValueError:
        decoded = None
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if not isinstance(error, dict):
        error = {"message": answer.body.decode(errors="replace")[:500] or "unknown error"}
    exc = api_exceptions.from_http_status(
        answer.status,
        f"{method} {API_PATH}{path}: {error.get('message', 'unknown error')}",
        errors=error.get("errors", ()),
        details=error.get("details", ()),
    )
    if answer.status in RETRY_AFTER_STATUSES:
        exc.retry_after = parse_retry_after(_header(answer.headers, "Retry-After"))
    return exc


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value
