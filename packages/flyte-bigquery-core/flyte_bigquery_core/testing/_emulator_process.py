"""The emulator process: :class:`Emulator` starts one ``local-bigquery`` server, waits until it is healthy,
says where it is (URLs, environment, clients) and stops it."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from flyte_bigquery_core.testing._demo_data import seed_demo
from flyte_bigquery_core.testing._emulator_binary import find_binary
from flyte_bigquery_core.testing._emulator_env import (
    DEFAULT_PROJECT,
    ENV_REST_HOST,
    ENV_STORAGE_HOST,
    HOST,
    _free_ports,
    _server_env,
    _with_no_proxy,
)
from flyte_bigquery_core.testing._emulator_errors import _PORT_CLASH_MARKERS, EmulatorError, _PortClashError
from flyte_bigquery_core.testing._emulator_health import accepts, answers
from flyte_bigquery_core.testing._emulator_signals import _LIVE, _install_signal_handlers
from flyte_bigquery_core.testing._lifecycle import Harness

if TYPE_CHECKING:
    from google.cloud import bigquery
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient

__all__ = ["Emulator"]

_LOG_TAIL_LINES = 40


class Emulator(Harness):
    """One ``local-bigquery`` server on free loopback ports with a private, temporary data directory.

    Use it as a context manager (``with Emulator() as emu: ...``) or call :meth:`start` / :meth:`stop`.
    ``stop`` is idempotent and also runs at interpreter exit and on SIGTERM/SIGHUP.
    """

    def __init__(
        self,
        project: str = DEFAULT_PROJECT,
        *,
        binary: str | None = None,
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        storage_emulator_host: str | None = None,
    ) -> None:
        """Configure, but do not start, an emulator; ``binary`` overrides :func:`find_binary`'s search.
        ``storage_emulator_host`` (a GCS stand-in's URL, :class:`~._gcs_process.GcsEmulator`) is where its load
        and extract jobs read and write ``gs://``; without one, ``gs://`` is a folder of its data directory."""
        self._project = project
        self._storage_emulator_host = storage_emulator_host
        self._binary = binary
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmpdir: Path | None = None
        self._rest_port = 0
        self._grpc_port = 0
        self._lock = threading.RLock()

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Start the server and block until it answers REST and accepts gRPC connections.

        Raises :class:`EmulatorError` (with the tail of the server's log) if it exits early or is not
        healthy within ``startup_timeout`` seconds; nothing is left running in that case.
        """
        with self._lock:
            if self._proc is not None:
                raise EmulatorError("this Emulator is already running")
            binary = find_binary(self._binary)
            _install_signal_handlers()
            for attempt in range(3):
                try:
                    self._launch(binary)
                    self._wait_until_healthy()
                    return self
                except _PortClashError:
                    self.stop()
                    if attempt == 2:
                        raise
                except BaseException:
                    self.stop()
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _launch(self, binary: str) -> None:
        self._tmpdir = Path(tempfile.mkdtemp(prefix="local-bigquery-"))
        self._rest_port, self._grpc_port = _free_ports(2)
        command = [
            binary,
            "serve",
            "--host",
            HOST,
            "--port",
            str(self._rest_port),
            "--grpc-port",
            str(self._grpc_port),
            "--project",
            self._project,
            "--data-dir",
            str(self._tmpdir / "data"),
        ]
        with open(self.log_path, "wb") as log:
            try:
                # A new session: Ctrl-C in a terminal must not kill the server behind our back (we stop
                # it ourselves, in order), and killpg() then reaches exactly the server and its children.
                self._proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._tmpdir,
                    env=_server_env(self._storage_emulator_host),
                    start_new_session=True,
                )
            except OSError as error:
                raise EmulatorError(f"cannot execute local-bigquery binary {binary!r}: {error}") from error
        _LIVE.add(self)
        atexit.register(self.stop)

    def _wait_until_healthy(self) -> None:
        assert self._proc is not None
        url = f"{self.rest_url}/bigquery/v2/projects/{self._project}/datasets"
        # No proxies: an http_proxy in the environment must not intercept a loopback health check.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + self._startup_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                tail = self.log_tail()
                error_type = _PortClashError if any(m in tail.lower() for m in _PORT_CLASH_MARKERS) else EmulatorError
                raise error_type(f"local-bigquery exited with code {code} during startup; its log ends with:\n{tail}")
            try:
                if answers(opener, url) and accepts(self._grpc_port):
                    return
            except EmulatorError as error:
                raise EmulatorError(f"{error}\nits log ends with:\n{self.log_tail()}") from None
            if time.monotonic() > deadline:
                raise EmulatorError(
                    f"local-bigquery did not become healthy within {self._startup_timeout:.0f}s "
                    f"(GET {url}); its log ends with:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Terminate the server's process group (SIGKILL after ``stop_timeout``) and delete its data.

        Safe to call repeatedly, from ``atexit`` and from a signal handler.
        """
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is not None:
                self._terminate(proc)
            _LIVE.discard(self)
            atexit.unregister(self.stop)
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
                self._tmpdir = None

    def _terminate(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=self._stop_timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # The leader is gone; make sure no straggler (a worker it forked) survives in its group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    # --- where it is --------------------------------------------------------------------------------

    def _require_running(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise EmulatorError("the emulator is not running; call start() or use it as a context manager")
        return self._proc

    @property
    def running(self) -> bool:
        """Whether the server process is alive (it may die on its own, e.g. when killed externally)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def project(self) -> str:
        """The project id the emulator serves (any other project is created on first use)."""
        return self._project

    @property
    def pid(self) -> int:
        """Process id of the server (also its process group id)."""
        return self._require_running().pid

    @property
    def rest_url(self) -> str:
        """Base URL of the REST API, with scheme, as ``BIGQUERY_EMULATOR_HOST`` wants it."""
        self._require_running()
        return f"http://{HOST}:{self._rest_port}"

    @property
    def grpc_target(self) -> str:
        """``host:port`` of the Storage Read/Write gRPC API (plain text, no TLS)."""
        self._require_running()
        return f"{HOST}:{self._grpc_port}"

    @property
    def log_path(self) -> Path:
        """The server's combined stdout/stderr (deleted with the data directory on :meth:`stop`)."""
        if self._tmpdir is None:
            raise EmulatorError("the emulator has no log: it is not running")
        return self._tmpdir / "server.log"

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the server's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, EmulatorError):
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    def env(self) -> dict[str, str]:
        """Environment variables that point a client process (the plugin, pyflyte) at this emulator.

        ``BIGQUERY_EMULATOR_HOST`` for google-cloud-bigquery, ``FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST``
        for the plugin's Storage Read client, ``GOOGLE_CLOUD_PROJECT`` as the default project, and loopback
        added to ``NO_PROXY``/``no_proxy`` so neither requests nor gRPC route emulator traffic via a proxy.
        """
        no_proxy = _with_no_proxy(os.environ)
        return {
            ENV_REST_HOST: self.rest_url,
            ENV_STORAGE_HOST: self.grpc_target,
            "GOOGLE_CLOUD_PROJECT": self._project,
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }

    # --- clients ------------------------------------------------------------------------------------

    def client(self, project: str | None = None) -> bigquery.Client:
        """A real ``google.cloud.bigquery.Client`` aimed at this emulator with anonymous credentials.

        The endpoint is passed explicitly, so this works whether or not ``BIGQUERY_EMULATOR_HOST`` is set.
        """
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=project or self._project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.rest_url),
        )

    def read_client(self) -> BigQueryReadClient:
        """A Storage Read API client on a plain-text gRPC channel to this emulator."""
        import grpc
        from google.cloud.bigquery_storage_v1 import BigQueryReadClient
        from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

        channel = grpc.insecure_channel(self.grpc_target)
        return BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=channel))

    # --- data ---------------------------------------------------------------------------------------

    def seed_demo(self) -> str:
        """Create ``samples.daily_downloads`` (:data:`DEMO_ROWS`), the table the demo workflow queries.

        Idempotent: the dataset is reused and the table contents replaced. Returns the table id
        ``project.samples.daily_downloads``.
        """
        return seed_demo(self)
