"""Serve the connector over gRPC on loopback: flytekit's own servicers, without ``pyflyte serve connector``'s exposure.

Why not just ``pyflyte serve connector``: it binds every interface (``[::]:PORT``) and always starts a
Prometheus HTTP server on ``0.0.0.0``, while servers we start listen on ``127.0.0.1`` unless told otherwise
(a sidecar next to Flyte's propeller, a test, a benchmark). Everything else is deliberately the same as
pyflyte, so what is tested here is what production runs:

* the servicers are flytekit's (``AsyncConnectorService``, ``SyncConnectorService``,
  ``ConnectorMetadataService`` from ``flytekit.extend.backend.connector_service``), added with flyteidl's
  ``add_*_to_server`` on a ``grpc.aio`` server, plus the standard gRPC health service when
  ``grpcio-health-checking`` is installed (Flyte's deployment probes it);
* connectors are found the way pyflyte finds them: importing flytekit loads every ``flytekit.plugins``
  entry point (this package registers the BigQuery connector there), flytekit's webhook connector is
  registered as pyflyte does, and ``--modules`` imports more;
* Prometheus metrics are opt-in (``--prometheus-port``) and bound to the same host as gRPC.

SIGTERM and SIGINT stop the server gracefully: health turns NOT_SERVING, new calls are refused, calls in
flight get ``--grace`` seconds to finish, and the process exits with status 0.

Usage::

    python -m flytekitplugins.bigquery.service --host 127.0.0.1 --port 8000 [--workers 10]

``--port 0`` picks a free port; the INFO start line (on stderr) names the address actually bound.

The plugin's settings (environment variables, :mod:`flyte_bigquery_core.settings`) are validated before
anything is served: a malformed one ends the process with status 2 and one line on stderr naming the
variable and what it expects.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import logging
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "Service", "build_service", "load_connectors", "main", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: pyflyte's default; only synchronous handlers (none of flytekit's servicers) use these threads.
DEFAULT_WORKERS = 10
DEFAULT_GRACE_SECONDS = 5.0

log = logging.getLogger("flytekitplugins.bigquery.service")  # not __name__: "__main__" under -m


def load_connectors(modules: Sequence[str] = ()) -> list[str]:
    """Register connectors as ``pyflyte serve connector`` does and return the task types served.

    ``import flytekit`` runs ``flytekit.load_implicit_plugins()``, which loads every entry point of group
    ``flytekit.plugins`` (ours is ``bigquery = flytekitplugins.bigquery``). Importing the package once more
    is a no-op kept for source trees without installed metadata. ``modules`` are imported afterwards, like
    pyflyte's ``--modules``.
    """
    import flytekit  # noqa: F401  (loads the flytekit.plugins entry points)
    from flytekit.extend.backend.base_connector import ConnectorRegistry

    importlib.import_module("flytekitplugins.bigquery")
    try:  # pyflyte registers the webhook connector too; keep the same connector set.
        importlib.import_module("flytekit.extras.webhook")
    except ImportError as e:  # pragma: no cover - depends on flytekit's optional extras
        log.warning("flytekit's webhook connector is unavailable: %s", e)
    for module in modules:
        importlib.import_module(module)
    return sorted(t for c in ConnectorRegistry.list_connectors() for t in c.supported_task_types)


@dataclass
class Service:
    """A configured, not yet started, server and the addresses it is bound to."""

    server: grpc.aio.Server
    host: str
    port: int
    health: Any | None = None
    executor: ThreadPoolExecutor | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    async def stop(self, grace: float = DEFAULT_GRACE_SECONDS) -> None:
        """Refuse new calls, let calls in flight finish within ``grace`` seconds, release the threads."""
        if self.health is not None:
            await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.executor is not None:
            self.executor.shutdown(wait=False)


async def _add_health_service(server: grpc.aio.Server) -> Any | None:
    """flytekit's health setup (every agent service SERVING), with the asyncio servicer an aio server wants.

    Returns the servicer, or ``None`` when ``grpcio-health-checking`` is not installed (as pyflyte, we serve
    without it then).
    """
    try:
        from flyteidl.service import agent_pb2
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    except ImportError:
        log.warning("grpcio-health-checking is not installed; serving without the gRPC health service")
        return None
    servicer = health.aio.HealthServicer()
    names = [s.full_name for s in agent_pb2.DESCRIPTOR.services_by_name.values()] + [health.SERVICE_NAME, ""]
    for name in names:
        await servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return servicer


async def build_service(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, workers: int = DEFAULT_WORKERS) -> Service:
    """Create the gRPC server with flytekit's servicers, bound to ``host:port`` only (``port=0``: any free).

    ``SO_REUSEPORT`` (gRPC's default on Linux) is turned off: with it a second server on a busy port starts
    "successfully" and silently takes a share of the connections; without it the second one fails to start.

    Must run inside the event loop that will serve (grpc.aio binds the server to it).
    """
    try:
        from flytekit.extend.backend.connector_service import (
            AsyncConnectorService,
            ConnectorMetadataService,
            SyncConnectorService,
        )
    except ImportError as e:  # pragma: no cover - flytekit without the [connector] extra
        raise ImportError("the connector service needs flytekit[connector] (pip install 'flytekit[connector]')") from e
    from flyteidl.service.agent_pb2_grpc import (
        add_AgentMetadataServiceServicer_to_server,
        add_AsyncAgentServiceServicer_to_server,
        add_SyncAgentServiceServicer_to_server,
    )

    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc")
    server = grpc.aio.server(executor, options=[("grpc.so_reuseport", 0)])
    add_AsyncAgentServiceServicer_to_server(AsyncConnectorService(), server)
    add_SyncAgentServiceServicer_to_server(SyncConnectorService(), server)
    add_AgentMetadataServiceServicer_to_server(ConnectorMetadataService(), server)

    health_servicer = await _add_health_service(server)

    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(target)
    except RuntimeError as e:  # grpc reports a port in use or a bad address this way
        raise OSError(f"cannot listen on {target}: {e}") from e
    if not bound:
        raise OSError(f"cannot listen on {target}")
    return Service(server=server, host=host, port=bound, health=health_servicer, executor=executor)


def _start_prometheus(host: str, port: int) -> None:
    """Serve the default registry (flytekit's metrics and ours, ``flyte_bigquery_*``); port 0 picks a free one,
    named in the INFO line."""
    from prometheus_client import start_http_server

    started = start_http_server(port, addr=host)
    bound = started[0].server_port if started else port  # prometheus-client < 0.20 returns None
    log.info("prometheus metrics on http://%s:%d/metrics", host, bound)


async def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    workers: int = DEFAULT_WORKERS,
    modules: Sequence[str] = (),
    prometheus_port: int | None = None,
    grace: float = DEFAULT_GRACE_SECONDS,
) -> None:
    """Load connectors, serve until SIGTERM/SIGINT, then stop gracefully."""
    task_types = load_connectors(modules)
    # The plugin imports google-cloud-bigquery (and with it pandas/pyarrow) lazily, on first use; a service
    # will use it, so pay that here, before serving and before the freeze, not on the first CreateTask.
    importlib.import_module("google.cloud.bigquery")
    # Everything imported so far lives as long as the process: move it out of the collector's generations,
    # so garbage collections under load stop re-scanning flytekit, grpc and the client libraries.
    gc.collect()
    gc.freeze()
    service = await build_service(host, port, workers)
    if prometheus_port is not None:
        _start_prometheus(host, prometheus_port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await service.server.start()
    log.info(
        "connector service listening on %s (task types: %s; workers: %d)",
        service.address,
        ", ".join(task_types) or "none",
        workers,
    )
    try:
        await stopping.wait()
        log.info("stopping: refusing new calls, %.1fs for calls in flight", grace)
    finally:
        await service.stop(grace)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.info("connector service stopped")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flytekitplugins.bigquery.service",
        description="Serve Flyte connectors (BigQuery included) over gRPC, on loopback by default.",
    )
    add = parser.add_argument
    add("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    add("--port", type=int, default=DEFAULT_PORT, help=f"gRPC port, 0 = any free (default {DEFAULT_PORT})")
    add("--workers", type=int, default=DEFAULT_WORKERS, help="threads for synchronous gRPC handlers (pyflyte --worker)")
    add("--modules", action="append", default=[], help="extra module defining connectors (repeatable)")
    add("--prometheus-port", type=int, default=None, help="Prometheus metrics on HOST:PORT, 0 = any free (default off)")
    add("--grace", type=float, default=DEFAULT_GRACE_SECONDS, help="seconds granted to calls in flight at stop")
    return parser


#: Exit status of a process whose connector settings are malformed (as argparse exits on a bad argument); the
#: connector's import exits with it too.
EXIT_BAD_SETTINGS = 2


def _settings_problem() -> str | None:
    """The message of a malformed setting, or None. Imported here, not at the top, so that this file also runs
    as a plain script beside another BigQuery plugin (``benchmarks/peer.py`` serves upstream's with it)."""
    try:
        from flyte_bigquery_core.errors import SettingsError
        from flyte_bigquery_core.settings import current_settings
    except ImportError:
        return None
    try:
        current_settings()
    except SettingsError as e:
        return str(e)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m flytekitplugins.bigquery.service``; returns the exit code."""
    args = _parser().parse_args(argv)
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    # Before anything is bound: a malformed setting is the operator's to fix, so say which one and stop,
    # rather than serve a connector that fails every call.
    problem = _settings_problem()
    if problem is not None:
        print(f"{_parser().prog}: {problem}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    try:
        asyncio.run(serve(args.host, args.port, args.workers, args.modules, args.prometheus_port, args.grace))
    except OSError as e:
        log.error("cannot start the connector service: %s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
