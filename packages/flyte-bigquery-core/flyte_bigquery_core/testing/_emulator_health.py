"""Health probes of a starting emulator: does its REST API answer, does its gRPC port accept."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

from flyte_bigquery_core.testing._emulator_env import HOST
from flyte_bigquery_core.testing._emulator_errors import EmulatorError

__all__ = ["accepts", "answers"]


def answers(opener: urllib.request.OpenerDirector, url: str) -> bool:
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


def accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False
