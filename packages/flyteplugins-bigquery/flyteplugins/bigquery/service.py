"""Serve Flyte 2 connectors (BigQuery's included) over gRPC: ``python -m flyteplugins.bigquery.service``.

Serves flyteidl2's ``AsyncConnectorService`` (CreateTask, GetTask, DeleteTask, GetTaskMetrics, and GetTaskLogs,
which streams), ``ConnectorMetadataService`` (GetConnector, ListConnectors) and the standard gRPC health
service, for every connector registered through the ``flyte.connectors`` entry points (this package registers
the BigQuery one) and the modules named with ``--modules``.

Why not Flyte 2's own server, ``c0`` (``flyte/_bin/connect.py``)? Two reasons, either enough:

* **It unpickles requests.** Before any connector sees a CreateTask, ``flyte/connectors/_server.py`` converts
  the inputs with flyte's TypeEngine, which runs ``cloudpickle.loads`` (``flyte/types/_pickle.py``) on every
  ``Decimal``, ``bytes``, ``time`` or unknown-class input. A pickle runs whatever it names, so anyone who can
  send a request runs code inside the service, with its BigQuery credentials. This service decodes inputs
  without unpickling (:mod:`._service_inputs`: pickles go through the core's restricted reader, which rebuilds
  bytes, decimals and date/time values and refuses everything else).
* **It listens on every interface**: gRPC on ``[::]`` and Prometheus on ``0.0.0.0``, unauthenticated. This
  service binds ``127.0.0.1`` unless told otherwise (a sidecar next to Flyte's backend, a test), and its metrics
  are off unless asked for, on the same host as gRPC.

It also ends a call whose request is bad with a status code saying so (``INVALID_ARGUMENT``, ``NOT_FOUND``…,
:data:`._service_rpc.STATUS_CODES`) instead of ``INTERNAL``, never echoes an input value or a secret, stops
gracefully on SIGTERM, and fails at start-up, not on every call, when a connector cannot be loaded or a setting
is malformed.

Usage (``DO_NOT_TRACK`` defaults to 1 here: flyte reports errors to an outside tracker otherwise)::

    python -m flyteplugins.bigquery.service [--host 127.0.0.1] [--port 8000] [--prometheus-port 9090]

Every flag has an environment variable (:mod:`._service_settings`: ``FLYTEPLUGINS_BIGQUERY_SERVICE_HOST``…);
the flag wins. ``--port 0`` picks a free port; the INFO start line (on stderr) names the address bound. A
malformed setting — the service's or the plugin's (:mod:`flyte_bigquery_core.settings`) — ends the process with
status 2 and one line naming it; a connector that cannot be loaded or an address that cannot be bound, with 1.

This process imports flyte and never flytekit: both register the same Prometheus metric names
(``flyte_connector_*``), so each SDK's service runs in its own process (flytekit's is
``python -m flytekitplugins.bigquery.service``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import importlib
import importlib.metadata
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ._service_settings import OPTIONS, ServiceSettings, SettingsError

__all__ = ["ENTRY_POINT_GROUP", "EXIT_BAD_SETTINGS", "Service", "build_service", "load_connectors", "main", "serve"]

#: Exit status of a process whose settings are malformed (as argparse exits on a bad argument).
EXIT_BAD_SETTINGS = 2
#: Exit status when a connector cannot be loaded or the address cannot be bound.
EXIT_CANNOT_START = 1
#: Where connectors register themselves (as for Flyte 2's own server).
ENTRY_POINT_GROUP = "flyte.connectors"

log = logging.getLogger("flyteplugins.bigquery.service")  # not __name__: "__main__" under -m


class StartupError(Exception):
    """The service cannot start (a connector does not load, the address cannot be bound); exit status 1."""


def load_connectors(modules: Sequence[str] = ()) -> list[str]:
    """Load every ``flyte.connectors`` entry point, then import ``modules``; return the task categories served
    (``name (version)``). A connector that fails to load raises :class:`StartupError` naming it (Flyte 2's own
    server logs a warning and serves without it); a malformed plugin setting raises ``SettingsError``."""
    from flyte.connectors import ConnectorRegistry

    loaders: list[tuple[str, Callable[[], object]]] = [
        (f"entry point {ep.name!r}", ep.load) for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    ]
    loaders += [(f"module {module!r}", functools.partial(importlib.import_module, module)) for module in modules]
    for what, load in loaders:
        try:
            load()
        except SettingsError:
            raise
        except Exception as e:
            raise StartupError(f"cannot load the connector {what}: {type(e).__name__}: {e}") from e
    return sorted(
        f"{category.name} ({category.version})"
        for connector in ConnectorRegistry._list_connectors()
        for category in connector.supported_task_categories
    )


@dataclass
class Service:
    """A configured, not yet started, server and the address it is bound to."""

    server: Any  # grpc.aio.Server
    host: str
    port: int
    health: Any | None = None
    executor: ThreadPoolExecutor | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    async def stop(self, grace: float) -> None:
        """Health turns NOT_SERVING, new calls are refused, calls in flight get ``grace`` seconds."""
        if self.health is not None:
            await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.executor is not None:
            self.executor.shutdown(wait=False)


async def _add_health_service(server: Any) -> Any:
    """The standard gRPC health service, SERVING for the server (``""``), both connector services and itself."""
    from flyteidl2.connector import service_pb2
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    servicer = health.aio.HealthServicer()
    names = [s.full_name for s in service_pb2.DESCRIPTOR.services_by_name.values()] + [health.SERVICE_NAME, ""]
    for name in names:
        await servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return servicer


async def build_service(settings: ServiceSettings) -> Service:
    """The gRPC server with the connector, metadata and health services, bound to ``settings.address`` only.

    ``SO_REUSEPORT`` (gRPC's default on Linux) is off: with it, a second server on a busy port starts
    "successfully" and silently takes a share of the connections. Must run in the event loop that will serve.
    """
    import grpc
    from flyteidl2.connector.service_pb2_grpc import (
        add_AsyncConnectorServiceServicer_to_server,
        add_ConnectorMetadataServiceServicer_to_server,
    )

    from ._service_rpc import AsyncConnectorServicer, ConnectorMetadataServicer

    executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="grpc")
    server = grpc.aio.server(executor, options=[("grpc.so_reuseport", 0)])
    add_AsyncConnectorServiceServicer_to_server(AsyncConnectorServicer(), server)
    add_ConnectorMetadataServiceServicer_to_server(ConnectorMetadataServicer(), server)
    health = await _add_health_service(server)
    try:
        bound = server.add_insecure_port(settings.address)
    except RuntimeError as e:  # grpc reports a port in use or a bad address this way
        raise StartupError(f"cannot listen on {settings.address}: {e}") from e
    if not bound:
        raise StartupError(f"cannot listen on {settings.address}")
    return Service(server=server, host=settings.host, port=bound, health=health, executor=executor)


def _start_prometheus(host: str, port: int) -> None:
    """Serve the default registry (flyte's ``flyte_connector_*`` and the core's ``flyte_bigquery_*``) on
    ``host:port``; port 0 picks a free one, named in the INFO line."""
    from prometheus_client import start_http_server

    try:
        started = start_http_server(port, addr=host)
    except OSError as e:
        raise StartupError(f"cannot serve metrics on {host}:{port}: {e}") from e
    bound = started[0].server_port if started else port  # prometheus-client < 0.20 returns None
    log.info("prometheus metrics on http://%s:%d/metrics", host, bound)


def _warm_up() -> None:
    """Pay the imports a first CreateTask would (google-cloud-bigquery brings pandas and pyarrow), then move
    everything loaded so far out of the collector's generations: it lives as long as the process."""
    with contextlib.suppress(ImportError):  # a connector that does not need it
        importlib.import_module("google.cloud.bigquery")
    gc.collect()
    gc.freeze()


async def serve(settings: ServiceSettings) -> None:
    """Load connectors, serve until SIGTERM/SIGINT, then stop gracefully."""
    categories = load_connectors(settings.modules)
    _warm_up()
    service = await build_service(settings)
    if settings.prometheus_port is not None:
        _start_prometheus(settings.host, settings.prometheus_port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await service.server.start()
    log.info(
        "connector service listening on %s (task types: %s; workers: %d)",
        service.address,
        ", ".join(categories) or "none",
        settings.workers,
    )
    try:
        await stopping.wait()
        log.info("stopping: refusing new calls, %.1fs for calls in flight", settings.grace)
    finally:
        await service.stop(settings.grace)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.info("connector service stopped")


PROG = "python -m flyteplugins.bigquery.service"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Serve Flyte 2 connectors (BigQuery's included) over gRPC, on loopback by default."
    )
    for option in OPTIONS:
        flag, env = option.names
        parser.add_argument(flag, metavar=option.field.upper(), help=f"{option.expects} (env {env})")
    parser.add_argument("--modules", action="append", default=[], help="extra module defining connectors (repeatable)")
    return parser


def _configure_logging() -> None:
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def _read_settings(argv: Sequence[str] | None) -> ServiceSettings:
    """The service's settings, and the plugin's validated (both raise ``SettingsError`` naming the variable)."""
    from flyte_bigquery_core.settings import current_settings

    args = _parser().parse_args(argv)
    flags = {option.names[0]: getattr(args, option.names[0][2:].replace("-", "_")) for option in OPTIONS}
    settings = ServiceSettings.read(flags, args.modules)
    current_settings()
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m flyteplugins.bigquery.service``; returns the exit status."""
    os.environ.setdefault("DO_NOT_TRACK", "1")  # flyte reads it when it would report to its outside tracker
    _configure_logging()
    try:
        settings = _read_settings(argv)
        asyncio.run(serve(settings))
    except SettingsError as e:  # the operator's to fix: say which one, serve nothing
        print(f"{PROG}: {e}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    except StartupError as e:
        log.error("cannot start the connector service: %s", e)
        return EXIT_CANNOT_START
    return 0


if __name__ == "__main__":
    sys.exit(main())
