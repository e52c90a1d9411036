"""The two sides of the comparison: our plugin (``.venv``) and the upstream plugin (``.venv-peer``).

``make peer-venv`` builds ``.venv-peer`` with PyPI's ``flytekitplugins-bigquery==1.16.31`` and
``flytekit[connector]==1.16.31`` (it pins numpy<2 and does not pull pandas or pyarrow). The upstream plugin is
never a dependency of ours: it is only ever imported by that venv's interpreter, in subprocesses.

The connector services are started the same way for both sides: our launcher
(``flytekitplugins/bigquery/service.py``, which serves flytekit's own servicers on loopback) — as
``python -m flytekitplugins.bigquery.service`` for ours, and for upstream as a copy of the same file run as a
script by the peer interpreter (a script, so that ``flytekitplugins`` resolves to the peer's site-packages;
the file needs nothing of ours beyond flytekit). Both bind 127.0.0.1 only.

``server="pyflyte"`` starts each side's own ``pyflyte serve connector`` instead (``.venv/bin/pyflyte``,
``.venv-peer/bin/pyflyte``): the deployed path. It binds every interface and always starts a Prometheus HTTP
server on 0.0.0.0, so it is only started inside a network namespace whose one interface is loopback
(:func:`only_loopback`; ``python -m benchmarks.service_compare --server pyflyte`` re-execs itself under
``unshare -n``), on fixed ports (pyflyte can neither take port 0 nor report the one bound).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from benchmarks.exec_command import NO_ARGS_ENV, exec_env
from benchmarks.service_bench import ROOT
from flytekitplugins.bigquery.testing.service_process import ServiceProcess

__all__ = [
    "OURS",
    "PEER_PYTHON",
    "PEER_VENV",
    "SERVERS",
    "SIDES",
    "UPSTREAM",
    "LaunchedService",
    "PyflyteService",
    "only_loopback",
    "python_for",
    "require_peer",
    "service_for",
    "versions",
]

OURS = "ours"
UPSTREAM = "upstream"
SIDES = (OURS, UPSTREAM)
PEER_VENV = ROOT / ".venv-peer"
PEER_PYTHON = PEER_VENV / "bin" / "python"
UPSTREAM_VERSION = "1.16.31"
#: Credential paths a connector service can be started with (see :func:`service_for`).
CREDENTIALS = ("key", "anonymous")
#: How a connector service can be started: our launcher (``service.py``) or ``pyflyte serve connector``.
SERVERS = ("launcher", "pyflyte")


def require_peer() -> Path:
    """The peer interpreter, or exit saying how to build it."""
    if not os.access(PEER_PYTHON, os.X_OK):
        raise SystemExit(f"{PEER_PYTHON} is missing: run `make peer-venv` (or `make bench`, which builds it)")
    return PEER_PYTHON


def python_for(side: str) -> str:
    return sys.executable if side == OURS else str(require_peer())


#: google-auth falls back to probing the GCE metadata server (a link-local address) when it finds no
#: credentials; nothing here may leave the machine, so every child gets a closed loopback port instead.
NO_METADATA_SERVER = {"NO_GCE_CHECK": "true", "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9"}


def clean_env(side: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a child of ``side``: no Python path or venv of ours leaks into the peer,
    and google-auth never looks for a metadata server off this machine."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env.update(NO_METADATA_SERVER)
    if side == OURS:
        env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def versions(side: str) -> dict[str, str]:
    """Installed versions of the packages that matter, as the side's interpreter sees them."""
    code = (
        "import json, importlib.metadata as m\n"
        "out = {}\n"
        "for n in ('flytekitplugins-bigquery', 'flytekit', 'google-cloud-bigquery', 'google-auth', 'grpcio',"
        " 'numpy', 'pandas', 'pyarrow'):\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = None\n"
        "print(json.dumps(out))"
    )
    out = subprocess.run(
        [python_for(side), "-c", code], env=clean_env(side), capture_output=True, text=True, check=True, cwd="/"
    )
    return dict(json.loads(out.stdout))


class LaunchedService(ServiceProcess):
    """:class:`~flytekitplugins.bigquery.testing.service_process.ServiceProcess` with any command line
    (interpreter and launcher, started through :mod:`benchmarks.exec_command`) and exactly ``env``."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], *, cleanup_dir: Path | None = None) -> None:
        super().__init__(module="benchmarks.exec_command", args=["--", *command])
        self._env = exec_env({**env, "PYTHONUNBUFFERED": "1"})
        self._cleanup_dir = cleanup_dir

    def cleanup(self) -> None:
        super().cleanup()
        if self._cleanup_dir is not None:
            shutil.rmtree(self._cleanup_dir, ignore_errors=True)
            self._cleanup_dir = None


def only_loopback() -> bool:
    """Whether this process's network namespace has no interface but ``lo`` (``/proc/self/net/dev`` is per
    namespace; ``/sys/class/net`` is not), so that a server bound to every interface is reachable on loopback only."""
    lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    return [line.split(":", 1)[0].strip() for line in lines] == ["lo"]


class PyflyteService(LaunchedService):
    """``pyflyte serve connector`` of one side on the fixed ``port`` (ready once gRPC health says SERVING)."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], port: int) -> None:
        super().__init__(command, {**env, NO_ARGS_ENV: "1"})
        self._fixed_port = port

    def start(self) -> PyflyteService:
        self.port = self._fixed_port  # nothing to read from the log: pyflyte does not say where it listens
        super().start()
        return self


def service_for(
    side: str,
    env: Mapping[str, str],
    credentials: str = "key",
    server: str = "launcher",
    ports: tuple[int, int] | None = None,
) -> LaunchedService:
    """A not yet started connector service of ``side`` (``credentials``: ``key`` or ``anonymous``).

    ``key``: the service authenticates with ``GOOGLE_APPLICATION_CREDENTIALS`` (which ``env`` must set).
    Upstream always does (it builds every client from ADC); ours uses anonymous credentials whenever
    ``BIGQUERY_EMULATOR_HOST`` is set, so for ``key`` it runs under :mod:`benchmarks.sa_service`, which
    makes it load ADC anyway. ``anonymous`` exists for ours only: the default emulator path.

    ``server="pyflyte"``: the side's own ``pyflyte serve connector --port P --prometheus_port Q`` with
    ``ports=(P, Q)``; for ours with ``key``, ``--modules benchmarks.sa_pyflyte`` applies the same ADC setup.
    Refused unless :func:`only_loopback`.
    """
    if credentials not in CREDENTIALS:
        raise ValueError(f"credentials must be one of {CREDENTIALS}")
    if server not in SERVERS:
        raise ValueError(f"server must be one of {SERVERS}")
    if side == UPSTREAM and credentials != "key":
        raise ValueError("the upstream connector always uses Application Default Credentials")
    if server == "pyflyte":
        if not only_loopback():
            raise RuntimeError(
                "pyflyte serve connector binds every interface and 0.0.0.0 for Prometheus: it is only started in "
                "a network namespace with loopback alone (e.g. `unshare -n`)"
            )
        if ports is None:
            raise ValueError("pyflyte serve connector needs fixed ports: ports=(grpc, prometheus)")
        venv_bin = Path(sys.executable).parent if side == OURS else require_peer().parent
        command = [str(venv_bin / "pyflyte"), "serve", "connector", "--port", str(ports[0])]
        command += ["--prometheus_port", str(ports[1])]
        if side == OURS and credentials == "key":
            command += ["--modules", "benchmarks.sa_pyflyte"]
        return PyflyteService(command, clean_env(side, env), ports[0])
    if side == OURS:
        module = "benchmarks.sa_service" if credentials == "key" else "flytekitplugins.bigquery.service"
        return LaunchedService([sys.executable, "-m", module], clean_env(OURS, env))
    directory = Path(tempfile.mkdtemp(prefix="bq-peer-service-"))
    launcher = directory / "bq_connector_service.py"
    shutil.copyfile(ROOT / "flytekitplugins" / "bigquery" / "service.py", launcher)
    return LaunchedService([str(require_peer()), str(launcher)], clean_env(UPSTREAM, env), cleanup_dir=directory)
