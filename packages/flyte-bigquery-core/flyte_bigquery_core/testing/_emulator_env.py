"""The environment around the emulator: the variables that point clients at it, the default project, the
loopback host it is bound to, and the environments the server and its clients get."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping

__all__ = ["DEFAULT_PROJECT", "ENV_BINARY", "ENV_REST_HOST", "ENV_STORAGE_HOST", "HOST"]

#: Overrides where the ``local-bigquery`` executable is found.
ENV_BINARY = "LOCAL_BIGQUERY_BIN"
#: Read by google-cloud-bigquery: send REST calls here instead of bigquery.googleapis.com.
ENV_REST_HOST = "BIGQUERY_EMULATOR_HOST"
#: Read by this plugin: the ``host:port`` of the emulator's Storage Read API (plain-text gRPC).
ENV_STORAGE_HOST = "FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST"

#: A project id that is obviously not a real one, so nothing can be confused with production.
DEFAULT_PROJECT = "local-project"
HOST = "127.0.0.1"


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


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on loopback (held open together so they cannot coincide)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def _server_env(storage_emulator_host: str | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key.upper() not in _SERVER_ENV_DROP}
    env["PYTHONUNBUFFERED"] = "1"
    if storage_emulator_host:
        env["STORAGE_EMULATOR_HOST"] = storage_emulator_host
    return env


def _with_no_proxy(env: Mapping[str, str]) -> str:
    """The existing NO_PROXY list plus loopback: a proxy must never sit between a client and the emulator."""
    current = env.get("NO_PROXY") or env.get("no_proxy") or ""
    entries = [entry for entry in current.split(",") if entry.strip()]
    for host in (HOST, "localhost"):
        if host not in entries:
            entries.append(host)
    return ",".join(entries)
