"""Long-lived BigQuery clients and the thread pool their blocking calls run on.

Making a client (and fetching a token) costs tens of milliseconds of CPU, so the connector keeps one
:class:`ClientPool` for its lifetime: one credentials object, one client per (project, location), each
with an HTTP connection pool as large as the thread pool so concurrent calls reuse connections. The
google-cloud-bigquery client is synchronous; its calls run on a bounded executor sized for I/O-bound work
(not asyncio's default of ``cpu + 4`` threads), so the event loop of the connector service never blocks.
The hot-path job calls do not need a thread at all: :attr:`ClientPool.rest` makes them over asyncio HTTP
(:mod:`.rest`) with the same credentials.

``BIGQUERY_EMULATOR_HOST`` (read by google-cloud-bigquery itself) points the client at a local
BigQuery; then, and only then, anonymous credentials are used, since an emulator has no token endpoint.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import google.auth
import requests.adapters
from google.api_core.client_info import ClientInfo
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud import bigquery

from .rest import RestTransport

__all__ = ["EMULATOR_HOST_ENV", "MAX_WORKERS_ENV", "ClientPool"]

EMULATOR_HOST_ENV = "BIGQUERY_EMULATOR_HOST"
MAX_WORKERS_ENV = "FLYTEKITPLUGINS_BIGQUERY_MAX_WORKERS"
_DEFAULT_MAX_WORKERS = 64
_SCOPES = ("https://www.googleapis.com/auth/bigquery", "https://www.googleapis.com/auth/cloud-platform")

T = TypeVar("T")


def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"flytekitplugins-bigquery/{version('flytekitplugins-bigquery')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "flytekitplugins-bigquery"


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def _settle_environment(session: requests.Session) -> None:
    """Read requests' environment settings once instead of on every call.

    With ``trust_env`` on, requests re-reads proxy variables, ``.netrc`` and the CA bundle for every
    request (about a tenth of the connector's CPU per call). Without a proxy configured we resolve the CA
    bundle now and turn that off; with one, we keep requests' own handling (``NO_PROXY`` included).
    """
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False


class ClientPool:
    """Owns the credentials, the clients and the executor of one connector instance.

    Thread-safe. ``close()`` releases the HTTP sessions and the threads; the pool is usable again after
    (clients are recreated on demand), which keeps tests and forked workers simple.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        self._max_workers = max_workers or int(os.environ.get(MAX_WORKERS_ENV, _DEFAULT_MAX_WORKERS))
        self._lock = threading.Lock()
        self._credentials_lock = threading.Lock()
        self._clients: dict[tuple[str, str | None, str | None], bigquery.Client] = {}
        self._credentials: Credentials | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._rest: RestTransport | None = None

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def _credentials_for_host(self, emulator: str | None) -> Credentials:
        if emulator:
            return AnonymousCredentials()
        if self._credentials is None:
            with self._credentials_lock:
                if self._credentials is None:
                    credentials, _ = google.auth.default(scopes=list(_SCOPES))
                    self._credentials = credentials
        return self._credentials

    @property
    def rest(self) -> RestTransport:
        """The asynchronous transport for jobs.insert/get/cancel and tables.get (:mod:`.rest`), on any loop."""
        if self._rest is None:
            with self._lock:
                if self._rest is None:
                    user_agent = ClientInfo(
                        user_agent=_user_agent(), client_library_version=bigquery.__version__
                    ).to_user_agent()
                    self._rest = RestTransport(self._credentials_for_host, self.executor, self._max_workers, user_agent)
        return self._rest

    def client(self, project: str, location: str | None = None) -> bigquery.Client:
        """The shared client for ``project``/``location``; created on first use."""
        emulator = os.environ.get(EMULATOR_HOST_ENV) or None
        key = (project, location, emulator)
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                credentials = self._credentials_for_host(emulator)
                session = AuthorizedSession(credentials)
                _settle_environment(session)
                adapter = requests.adapters.HTTPAdapter(
                    pool_connections=4, pool_maxsize=self._max_workers, max_retries=0
                )
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                client = bigquery.Client(
                    project=project,
                    location=location,
                    credentials=credentials,
                    _http=session,
                    client_info=ClientInfo(user_agent=_user_agent()),
                )
                self._clients[key] = client
        return client

    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(self._max_workers, thread_name_prefix="bigquery")
        return self._executor

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking client call on the pool's executor without blocking the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor(), functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
            if self._rest is not None:
                self._rest.close()
                self._rest = None
            if self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None
