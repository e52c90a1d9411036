"""Run the offline BigQuery emulator (``local-bigquery``) for tests, benchmarks and the demo.

Why a subprocess and not an in-process server: ``local-bigquery`` needs Python >= 3.13 while flytekit
needs 3.10-3.12, so the emulator lives in its own virtualenv (``.venv-emulator``, built by ``make
emulator-venv``) and we talk to it over the network exactly like a client talks to BigQuery:

* REST (jobs, tables, datasets) on ``http://127.0.0.1:<port>``; the real ``google-cloud-bigquery``
  client reaches it through ``BIGQUERY_EMULATOR_HOST`` or an explicit ``api_endpoint``.
* The BigQuery Storage Read API (gRPC) on ``127.0.0.1:<grpc port>``. The Storage client ignores
  ``BIGQUERY_EMULATOR_HOST``, so we publish it as ``FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST``.

Both ports are picked free on loopback and the server is always bound to ``127.0.0.1`` (its own default
is ``0.0.0.0``, which would expose an unauthenticated BigQuery to the network). Every emulator gets a
private temporary data directory, runs in its own process group, and is torn down on ``stop()``, on
leaving the ``with`` block, at interpreter exit, and on SIGTERM/SIGHUP, so nothing is left running.

Command line (used by ``make demo``)::

    python -m flyte_bigquery_core.testing.emulator run [--project P] [--seed demo] -- CMD ARGS...
    python -m flyte_bigquery_core.testing.emulator serve [--project P] [--seed demo]

``run`` starts an emulator, seeds it, runs CMD with the emulator's environment (plus
``GOOGLE_CLOUD_PROJECT``), stops the emulator and exits with CMD's exit code. ``serve`` prints the
``export`` lines for a shell and keeps the emulator up until interrupted.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from flyte_bigquery_core.testing._lifecycle import Harness

if TYPE_CHECKING:
    from google.cloud import bigquery
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient

__all__ = [
    "DEFAULT_PROJECT",
    "DEMO_DATASET",
    "DEMO_ROWS",
    "DEMO_TABLE",
    "ENV_BINARY",
    "ENV_REST_HOST",
    "ENV_STORAGE_HOST",
    "Emulator",
    "EmulatorError",
    "find_binary",
    "main",
]

#: Overrides where the ``local-bigquery`` executable is found.
ENV_BINARY = "LOCAL_BIGQUERY_BIN"
#: Read by google-cloud-bigquery: send REST calls here instead of bigquery.googleapis.com.
ENV_REST_HOST = "BIGQUERY_EMULATOR_HOST"
#: Read by this plugin: the ``host:port`` of the emulator's Storage Read API (plain-text gRPC).
ENV_STORAGE_HOST = "FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST"

#: A project id that is obviously not a real one, so nothing can be confused with production.
DEFAULT_PROJECT = "local-project"
HOST = "127.0.0.1"

DEMO_DATASET = "samples"
DEMO_TABLE = "daily_downloads"


def _demo_rows() -> tuple[dict[str, Any], ...]:
    """Daily download counts for a few packages: a tiny, deterministic stand-in for a public dataset.

    3 packages x 2 versions x 5 days = 30 rows. The numbers follow a fixed formula (no randomness) so
    tests and the demo can compute the expected aggregates from :data:`DEMO_ROWS` itself.
    """
    packages = {
        "flytekit": (("1.15.4", 1_200), ("1.16.0", 2_600)),
        "pandas": (("2.2.3", 91_000), ("3.0.0", 48_500)),
        "pyarrow": (("17.0.0", 30_250), ("18.1.0", 44_100)),
    }
    first_day = dt.date(2025, 6, 1)
    rows = []
    for package, versions in packages.items():
        for version, base in versions:
            for offset in range(5):
                rows.append(
                    {
                        "package": package,
                        "version": version,
                        "downloads": base + 137 * offset * (1 + len(version)),
                        "day": (first_day + dt.timedelta(days=offset)).isoformat(),
                    }
                )
    return tuple(rows)


#: Contents of ``samples.daily_downloads`` after :meth:`Emulator.seed_demo` (``day`` as ISO text).
DEMO_ROWS: tuple[dict[str, Any], ...] = _demo_rows()

# Environment variables the server must not inherit. local-bigquery reads its settings from the
# environment (pydantic-settings: BIGQUERY_PORT, DATA_DIR, STORAGE_EMULATOR_HOST, ...), and a Python
# path meant for the 3.11 project venv would break its 3.13 interpreter.
_SERVER_ENV_DROP = frozenset(
    {
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "VIRTUAL_ENV",
        "BIGQUERY_PORT",
        "BIGQUERY_HOST",
        "GRPC_PORT",
        "DATA_DIR",
        "DEFAULT_PROJECT_ID",
        "DEFAULT_DATASET_ID",
        "CALLER",
        "GROUPS",
        "POSTGRES_CONNECTION_ID",
        "GCS_LOCAL_ROOT",
        "STORAGE_EMULATOR_HOST",
        "POSTGRES_URI",
    }
)
_LOG_TAIL_LINES = 40
_PORT_CLASH_MARKERS = ("address already in use", "errno 98", "failed to add port", "failed to bind")


class EmulatorError(RuntimeError):
    """The emulator could not be found, started or reached. The message says what to do about it."""


class _PortClashError(EmulatorError):
    """Someone grabbed one of our ports between picking it and the server binding it; retry."""


def find_binary(explicit: str | None = None) -> str:
    """Locate the ``local-bigquery`` executable.

    Order: ``explicit`` (a path or a name on PATH), ``$LOCAL_BIGQUERY_BIN``, ``.venv-emulator`` next to
    the running virtualenv (``make emulator-venv`` puts it there), then ``local-bigquery`` on PATH. An
    explicit choice that does not work is an error rather than a silent fallback, so a typo cannot make
    the tests run against a different emulator than intended.
    """
    chosen, origin = (explicit, "binary argument") if explicit else (os.environ.get(ENV_BINARY), f"${ENV_BINARY}")
    if chosen:
        resolved = shutil.which(chosen)
        if resolved is None:
            problem = "does not exist" if not os.path.exists(chosen) else "is not an executable file"
            raise EmulatorError(
                f"local-bigquery binary {chosen!r} (from {origin}) {problem}; run `make emulator-venv` "
                f"or point {ENV_BINARY} at .venv-emulator/bin/local-bigquery"
            )
        return resolved
    sibling = Path(sys.prefix).parent / ".venv-emulator" / "bin" / "local-bigquery"
    if os.access(sibling, os.X_OK):
        return str(sibling)
    on_path = shutil.which("local-bigquery")
    if on_path:
        return on_path
    raise EmulatorError(
        f"cannot find the local-bigquery emulator: not at {sibling}, not on PATH and {ENV_BINARY} is unset; "
        "run `make emulator-venv` (it needs Python >= 3.13) or set "
        f"{ENV_BINARY}=/path/to/.venv-emulator/bin/local-bigquery"
    )


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on loopback (held open together so they cannot coincide)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def _server_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key.upper() not in _SERVER_ENV_DROP}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _with_no_proxy(env: Mapping[str, str]) -> str:
    """The existing NO_PROXY list plus loopback: a proxy must never sit between a client and the emulator."""
    current = env.get("NO_PROXY") or env.get("no_proxy") or ""
    entries = [entry for entry in current.split(",") if entry.strip()]
    for host in (HOST, "localhost"):
        if host not in entries:
            entries.append(host)
    return ",".join(entries)


# Every started, not yet stopped emulator; the signal handler stops them before the process dies.
_LIVE: weakref.WeakSet[Emulator] = weakref.WeakSet()
_HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _stop_all_and_redeliver(signum: int, frame: FrameType | None) -> None:
    """Stop every live emulator, then die of the same signal as we would have without the handler."""
    for emulator in list(_LIVE):
        emulator.stop()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_signal_handlers() -> None:
    """Make SIGTERM/SIGHUP stop the emulators first (the default action skips ``atexit``).

    Only signals still at their default disposition are touched, and only from the main thread (Python
    allows nothing else), so an application's own handlers always win.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in _HANDLED_SIGNALS:
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _stop_all_and_redeliver)


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
    ) -> None:
        """Configure, but do not start, an emulator; ``binary`` overrides :func:`find_binary`'s search."""
        self._project = project
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
                    env=_server_env(),
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
                if self._answers(opener, url) and self._accepts(self._grpc_port):
                    return
            except EmulatorError as error:
                raise EmulatorError(f"{error}\nits log ends with:\n{self.log_tail()}") from None
            if time.monotonic() > deadline:
                raise EmulatorError(
                    f"local-bigquery did not become healthy within {self._startup_timeout:.0f}s "
                    f"(GET {url}); its log ends with:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    @staticmethod
    def _answers(opener: urllib.request.OpenerDirector, url: str) -> bool:
        """True once the REST API lists datasets; an error *response* means it is up but broken."""
        try:
            with opener.open(url, timeout=2) as response:
                return int(response.status) == 200
        except urllib.error.HTTPError as error:
            body = error.read(2000).decode(errors="replace")
            hint = ""
            if "extension" in body:
                hint = " (DuckDB extensions missing: run `make emulator-venv`, which installs them offline)"
            raise EmulatorError(f"local-bigquery answered GET {url} with HTTP {error.code}{hint}: {body}") from None
        except (urllib.error.URLError, OSError):
            return False

    @staticmethod
    def _accepts(port: int) -> bool:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return True
        except OSError:
            return False

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
        from google.cloud import bigquery

        table_id = f"{self._project}.{DEMO_DATASET}.{DEMO_TABLE}"
        client = self.client()
        try:
            client.create_dataset(bigquery.Dataset(f"{self._project}.{DEMO_DATASET}"), exists_ok=True)
            config = bigquery.LoadJobConfig(
                schema=[
                    bigquery.SchemaField("package", "STRING", mode="REQUIRED"),
                    bigquery.SchemaField("version", "STRING", mode="REQUIRED"),
                    bigquery.SchemaField("downloads", "INT64", mode="REQUIRED"),
                    bigquery.SchemaField("day", "DATE", mode="REQUIRED"),
                ],
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            )
            client.load_table_from_json(list(DEMO_ROWS), table_id, job_config=config).result(timeout=60)
        finally:
            client.close()
        return table_id


_SEEDS = {"demo": Emulator.seed_demo}


# --- command line -----------------------------------------------------------------------------------

# Exit codes of the wrapper itself, following env(1)/timeout(1): 125 = we failed, 126/127 = CMD could not run.
_EXIT_HARNESS_FAILED = 125
_EXIT_NOT_EXECUTABLE = 126
_EXIT_NOT_FOUND = 127


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flyte_bigquery_core.testing.emulator",
        description="Run the offline BigQuery emulator (local-bigquery) around a command.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("run", "start an emulator, run `-- CMD ARGS...` against it, stop it, exit with CMD's code"),
        ("serve", "start an emulator, print the export lines for a shell, run until interrupted"),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--project", default=DEFAULT_PROJECT, help=f"project id to serve (default {DEFAULT_PROJECT})")
        sub.add_argument("--seed", choices=sorted(_SEEDS), action="append", default=[], help="load a data set")
        sub.add_argument("--startup-timeout", type=float, default=60.0, metavar="SECONDS")
    return parser


def _run_command(emulator: Emulator, command: Sequence[str]) -> int:
    """Run ``command`` in the foreground with the emulator's environment and return its exit code.

    Ctrl-C in a terminal reaches the command directly (same process group), so here SIGINT is swallowed
    and we simply wait for the command to finish; SIGTERM/SIGHUP sent to us are passed on to it. (A
    Python handler rather than SIG_IGN, because an ignored SIGINT would be inherited by the command.)
    """
    child: subprocess.Popen[bytes] | None = None
    pending: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        if child is None:
            pending.append(signum)
        else:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    def swallow(signum: int, frame: FrameType | None) -> None:
        pass

    previous = {signum: signal.signal(signum, forward) for signum in _HANDLED_SIGNALS}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, swallow)
    try:
        try:
            child = subprocess.Popen(list(command), env={**os.environ, **emulator.env()})
        except FileNotFoundError:
            print(f"emulator run: command not found: {command[0]}", file=sys.stderr)
            return _EXIT_NOT_FOUND
        except PermissionError:
            print(f"emulator run: command not executable: {command[0]}", file=sys.stderr)
            return _EXIT_NOT_EXECUTABLE
        for signum in pending:
            child.send_signal(signum)
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code


def _serve(emulator: Emulator) -> int:
    for key, value in emulator.env().items():
        print(f"export {key}={value}")
    print(f"# local-bigquery pid {emulator.pid} serving project {emulator.project}; Ctrl-C to stop", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while emulator.running:
            time.sleep(0.5)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m flyte_bigquery_core.testing.emulator``; returns the exit code."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in args_in:
        split = args_in.index("--")
        args_in, command = args_in[:split], args_in[split + 1 :]
    parser = _parser()
    args = parser.parse_args(args_in)
    if args.command == "run" and not command:
        parser.error("run needs a command after `--`, e.g. `run --seed demo -- pyflyte run wf.py wf`")
    if args.command == "serve" and command:
        parser.error("serve takes no command")

    try:
        with Emulator(args.project, startup_timeout=args.startup_timeout) as emulator:
            for seed in dict.fromkeys(args.seed):
                _SEEDS[seed](emulator)
            return _run_command(emulator, command) if args.command == "run" else _serve(emulator)
    except EmulatorError as error:
        print(f"emulator: {error}", file=sys.stderr)
        return _EXIT_HARNESS_FAILED
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
