"""The process's BigQuery clients: one credentials object, the jobs API, the sync clients reads and writes use,
and the thread pool blocking calls run on.

Making a client (and fetching a token) costs tens of milliseconds of CPU, so a process keeps one
:class:`ClientPool` (:func:`shared_pool`), shared by the connector and the ``bq://`` handlers: credentials are
loaded once. Job calls go through :meth:`ClientPool.jobs` (asyncio HTTP on the calling loop, :mod:`.jobs_api`);
the ``bq://`` handlers, which flytekit calls synchronously, use google-cloud-bigquery's client
(:meth:`ClientPool.client`), with an HTTP connection pool as large as the thread pool. Blocking work runs on a
bounded executor sized for I/O-bound work (not asyncio's default of ``cpu + 4`` threads), so the event loop of
the connector service never blocks.

``BIGQUERY_EMULATOR_HOST`` (read by google-cloud-bigquery itself) points the client at a local
BigQuery; then, and only then, anonymous credentials are used, since an emulator has no token endpoint.

Tasks that run as another service account (:class:`~.access.Caller`) get impersonated credentials
(:mod:`.impersonation`) over the process's (or the connection's) own, one per principal and kept for the pool's
life, so a principal's token is fetched once and refreshed before it expires; their jobs APIs share the pool's
HTTP sessions, executor and per-project gate (:class:`~.throttle.ProjectGate`). With a local BigQuery,
impersonation exchanges tokens only when ``FLYTEKITPLUGINS_BIGQUERY_IAM_ENDPOINT`` names an IAM endpoint (a
stand-in); otherwise calls stay anonymous.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import google.auth
import requests.adapters
from google.api_core.client_info import ClientInfo
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.transport.requests import AuthorizedSession

from .access import Caller
from .errors import PermanentError
from .impersonation import impersonated
from .jobs_api import JobsApi
from .settings import EMULATOR_HOST_ENV, MAX_WORKERS_ENV, Settings, current_settings
from .throttle import ProjectGate
from .transport import DEFAULT_ENDPOINT, AiohttpSend, Transport

if TYPE_CHECKING:  # google-cloud-bigquery imports pandas, pyarrow and the Storage client: loaded on first use
    from google.cloud import bigquery

__all__ = ["EMULATOR_HOST_ENV", "MAX_WORKERS_ENV", "ClientPool", "shared_pool"]

#: HTTP connections per event loop for each of ``max_workers``: one task call (a poll of a finished task with an
#: output) sends ``jobs.get`` and ``tables.get`` at once, so with one connection per worker 64 concurrent polls
#: would queue half their calls behind the other half (measured: get capped at 64 / 2 / latency, ~300 req/s at
#: 100 ms; with two per worker it runs at the CPU's pace).
CALLS_PER_TASK_CALL = 2

_SCOPES = ("https://www.googleapis.com/auth/bigquery", "https://www.googleapis.com/auth/cloud-platform")
#: The bearer token sent to a local BigQuery's IAM stand-in by the (anonymous) connector: it accepts any.
_LOCAL_SOURCE_TOKEN = "local-bigquery"
_QUOTA_HEADER = "x-goog-user-project"

T = TypeVar("T")


def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"flytekitplugins-bigquery/{version('flytekitplugins-bigquery')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "flytekitplugins-bigquery"


@functools.cache
def _bigquery_version() -> str:
    """google-cloud-bigquery's version, for the user agent, without importing it."""
    from importlib.metadata import version

    return version("google-cloud-bigquery")


def _service_account(info: str) -> Credentials:
    """Credentials of a service account key given as JSON text; errors never quote the key."""
    from google.oauth2 import service_account

    try:
        return service_account.Credentials.from_service_account_info(json.loads(info), scopes=list(_SCOPES))
    except (ValueError, TypeError, KeyError) as e:
        raise PermanentError(
            f"google_application_credentials is not a service account key in JSON ({type(e).__name__})"
        ) from None


def _settle_environment(session: requests.Session, settings: Settings) -> None:
    """Read requests' environment settings once instead of on every call.

    With ``trust_env`` on, requests re-reads proxy variables, ``.netrc`` and the CA bundle for every
    request (about a tenth of the connector's CPU per call). Without a proxy configured we resolve the CA
    bundle now and turn that off; with one, we keep requests' own handling (``NO_PROXY`` included). Both
    come from :class:`~.settings.Settings` (``proxy_configured``, ``ca_bundle``).
    """
    if settings.proxy_configured:
        return
    if settings.ca_bundle:
        session.verify = settings.ca_bundle
    session.trust_env = False


class ClientPool:
    """Owns the credentials, the clients and the executor of one connector instance.

    Thread-safe. ``close()`` releases the HTTP sessions and the threads; the pool is usable again after
    (clients are recreated on demand), which keeps tests and forked workers simple.

    ``settings`` pins the pool to those settings; without, it follows the process's
    :func:`~.settings.current_settings` (read once and cached). Either way they are validated here, so a
    malformed setting raises :class:`~.errors.SettingsError` when the pool is made, not on a call.
    """

    def __init__(self, max_workers: int | None = None, settings: Settings | None = None) -> None:
        self._pinned = settings
        validated = self._settings
        self._max_workers = max_workers or validated.max_workers
        self._lock = threading.Lock()
        self._credentials_lock = threading.Lock()
        self._clients: dict[tuple[Any, ...], bigquery.Client] = {}
        self._credentials: Credentials | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._jobs: dict[tuple[Any, ...], JobsApi] = {}
        self._sends: dict[tuple[Any, ...], AiohttpSend] = {}
        #: Credentials of a connection's key and/or an impersonated principal (see :meth:`credentials`).
        self._credentials_by: dict[tuple[Any, ...], Credentials] = {}
        self._gates: dict[int, ProjectGate] = {}

    @property
    def _settings(self) -> Settings:
        return self._pinned if self._pinned is not None else current_settings()

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

    def credentials(
        self, settings: Settings, caller: Caller | None = None, service_account_info: str | None = None
    ) -> Credentials:
        """The credentials calls for ``caller`` use (default: the process's own, or the connection's service
        account key ``service_account_info``). For an impersonating caller they are impersonated over those,
        made once per principal, delegates and IAM endpoint and reused (their token with them). A local BigQuery
        takes anonymous credentials, and impersonates only when an IAM endpoint is set (a stand-in)."""
        account = None if settings.emulator_host or not service_account_info else service_account_info
        local_only = settings.emulator_host and not settings.iam_endpoint  # a local BigQuery with no IAM stand-in
        principal = caller if caller is not None and caller.impersonates and not local_only else None
        if principal is None and account is None:
            return self._credentials_for_host(settings.emulator_host)
        key: tuple[Any, ...] = (
            hashlib.sha256(account.encode()).hexdigest() if account else None,
            settings.emulator_host,
        )
        if principal is not None:
            key = (*key, principal.principal, principal.delegates, settings.iam_endpoint)
        known = self._credentials_by.get(key)
        if known is None:
            # Loaded before taking the lock, which loading the process's credentials takes too.
            own = None if account else self._credentials_for_host(settings.emulator_host)
            with self._credentials_lock:
                known = self._credentials_by.get(key)
                if known is None:
                    known = self._credentials_by[key] = self._make_credentials(settings, principal, account, own)
        return known

    def _make_credentials(
        self, settings: Settings, principal: Caller | None, account: str | None, own: Credentials | None
    ) -> Credentials:
        source = _service_account(account) if account else own
        assert source is not None
        if principal is None:
            return source
        if isinstance(source, AnonymousCredentials):  # a local BigQuery: its IAM stand-in takes any token
            from google.oauth2.credentials import Credentials as TokenCredentials

            source = TokenCredentials(token=_LOCAL_SOURCE_TOKEN)
        return impersonated(source, principal, _SCOPES, settings.iam_endpoint)

    def jobs(
        self, settings: Settings | None = None, service_account_info: str | None = None, caller: Caller | None = None
    ) -> JobsApi:
        """The jobs API (:mod:`.jobs_api`) for ``settings`` (default: the pool's), credentials and ``caller``
        (default: the connector's own identity): one per endpoint, retry budget, HTTP environment, credentials and
        caller, usable from any event loop. APIs of one endpoint share their HTTP sessions; all share the
        per-project gate (:class:`~.throttle.ProjectGate`).

        ``service_account_info`` is a service account key (JSON text, as Flyte 2 passes a connection's
        ``google_application_credentials`` secret): its credentials are used instead of the process's
        Application Default Credentials (except against a local BigQuery, which takes anonymous ones), and are the
        source of an impersonating caller's. A key that is not one raises :class:`~.errors.PermanentError`, never
        quoting it."""
        settings = settings if settings is not None else self._settings
        caller = caller or Caller()
        account = None if settings.emulator_host or not service_account_info else service_account_info
        base = (settings.emulator_host, settings.proxy_configured, settings.ca_bundle)
        key = (
            *base,
            settings.retry_seconds,
            hashlib.sha256(account.encode()).hexdigest() if account else None,
            settings.iam_endpoint,
            settings.max_inflight_per_project,
            caller,
        )
        known = self._jobs.get(key)
        if known is not None:
            return known
        with self._lock:
            known = self._jobs.get(key)
            if known is None:
                user_agent = ClientInfo(
                    user_agent=_user_agent(), client_library_version=_bigquery_version()
                ).to_user_agent()
                send = self._sends.get(base)
                if send is None:
                    connections = CALLS_PER_TASK_CALL * self._max_workers
                    send = self._sends[base] = AiohttpSend(connections, settings.proxy_configured, settings.ca_bundle)
                cap = settings.max_inflight_per_project
                gate = self._gates.setdefault(cap, ProjectGate(cap))
                endpoint = settings.emulator_host or DEFAULT_ENDPOINT
                credentials = self.credentials(settings, caller, account)
                quota = {_QUOTA_HEADER: caller.quota_project} if caller.quota_project else None
                transport = Transport(endpoint, credentials, self.executor, user_agent, send, after_auth=quota)
                known = self._jobs[key] = JobsApi(transport, settings.retry_seconds, gate=gate)
        return known

    def client(self, project: str, location: str | None = None, caller: Caller | None = None) -> bigquery.Client:
        """The shared client for ``project``/``location`` calling as ``caller`` (default: the process's own
        identity); created on first use."""
        settings = self._settings
        emulator = settings.emulator_host
        caller = caller or Caller()
        key = (project, location, emulator, caller)
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                from google.cloud import bigquery

                credentials = self.credentials(settings, caller)
                session = AuthorizedSession(credentials)
                if caller.quota_project:
                    session.headers[_QUOTA_HEADER] = caller.quota_project
                _settle_environment(session, settings)
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
            for send in self._sends.values():
                send.close()
            self._sends.clear()
            self._jobs.clear()
            if self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None


_shared: ClientPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> ClientPool:
    """The process's pool, following :func:`~.settings.current_settings`; made on first use."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = ClientPool()
    return _shared
