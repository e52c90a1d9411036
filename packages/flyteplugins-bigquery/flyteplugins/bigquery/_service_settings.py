"""The connector service's own settings: where it listens, its threads, metrics and grace period.

Each setting comes from a command-line flag or, when the flag is not given, an environment variable, and is
read once, from one declarative table (:data:`OPTIONS`, rows of the core's
:class:`~flyte_bigquery_core.settings.Variable`), into one validated :class:`ServiceSettings`. A malformed value
raises :class:`~flyte_bigquery_core.errors.SettingsError` naming the flag or variable and what it expects; the
launcher turns that into exit status 2 before anything is bound.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from flyte_bigquery_core import text_values as tv
from flyte_bigquery_core.errors import SettingsError
from flyte_bigquery_core.settings import Variable

__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_WORKERS",
    "GRACE_ENV",
    "HOST_ENV",
    "OPTIONS",
    "PORT_ENV",
    "PROMETHEUS_PORT_ENV",
    "WORKERS_ENV",
    "ServiceSettings",
    "SettingsError",
]

HOST_ENV = "FLYTEPLUGINS_BIGQUERY_SERVICE_HOST"
PORT_ENV = "FLYTEPLUGINS_BIGQUERY_SERVICE_PORT"
WORKERS_ENV = "FLYTEPLUGINS_BIGQUERY_SERVICE_WORKERS"
PROMETHEUS_PORT_ENV = "FLYTEPLUGINS_BIGQUERY_SERVICE_PROMETHEUS_PORT"
GRACE_ENV = "FLYTEPLUGINS_BIGQUERY_SERVICE_GRACE_SECONDS"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: Threads for synchronous handlers (health checks); the connector's own calls run on the event loop.
DEFAULT_WORKERS = 10
DEFAULT_GRACE_SECONDS = 5.0

_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def _host(text: str) -> str:
    """An IP address (``[::1]`` brackets dropped) or a host name."""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        if not _HOST_NAME.match(bare):
            raise
        return bare


def _port(text: str) -> int:
    value = tv.whole(0)(text)
    if value > 65535:
        raise tv.Malformed("at most 65535")
    return value


#: Every setting: its flag, then its environment variable (the first one given wins).
OPTIONS: tuple[Variable, ...] = (
    Variable(("--host", HOST_ENV), "host", _host, DEFAULT_HOST, "an IP address or a host name"),
    Variable(("--port", PORT_ENV), "port", _port, DEFAULT_PORT, "a port number, 0-65535 (0: any free port)"),
    Variable(
        ("--workers", WORKERS_ENV), "workers", tv.whole(1), DEFAULT_WORKERS, "a whole number of threads, at least 1"
    ),
    Variable(
        ("--prometheus-port", PROMETHEUS_PORT_ENV),
        "prometheus_port",
        _port,
        None,
        "a port number, 0-65535 (0: any free port); unset: no metrics endpoint",
    ),
    Variable(("--grace", GRACE_ENV), "grace", tv.number(0), DEFAULT_GRACE_SECONDS, "a number of seconds, at least 0"),
)


@dataclass(frozen=True)
class ServiceSettings:
    """How the service runs; ``ServiceSettings()`` is every default."""

    host: str = DEFAULT_HOST
    """The address gRPC (and the metrics endpoint) listen on; loopback unless told otherwise."""
    port: int = DEFAULT_PORT
    """The gRPC port; 0 picks a free one (the start line names it)."""
    workers: int = DEFAULT_WORKERS
    """Threads for synchronous gRPC handlers."""
    prometheus_port: int | None = None
    """Port of the Prometheus endpoint on ``host``; ``None``: no endpoint (metrics are opt-in)."""
    grace: float = DEFAULT_GRACE_SECONDS
    """Seconds calls in flight get to finish after SIGTERM/SIGINT."""
    modules: tuple[str, ...] = field(default=())
    """Extra modules to import (connectors not registered through the ``flyte.connectors`` entry points)."""

    @classmethod
    def read(
        cls, flags: Mapping[str, str | None], modules: Sequence[str] = (), environ: Mapping[str, str] = os.environ
    ) -> ServiceSettings:
        """Settings from the given flags (``"--port" → "8000"``; ``None`` or absent: not given) and, for the
        rest, ``environ``. Raises :class:`SettingsError` on the first malformed value."""
        given = {name: value for name, value in flags.items() if value is not None}
        sources = {**environ, **given}
        values = {option.field: option.read(sources) for option in OPTIONS}
        return cls(**values, modules=tuple(modules))

    @property
    def address(self) -> str:
        """``host:port`` (``[host]:port`` for IPv6), as gRPC wants it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
