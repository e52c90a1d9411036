"""A test transport: a :class:`~flyte_bigquery_core.transport.Send` that plays scripted answers in-process.

Like httpx's ``MockTransport``: the lowest boundary of the call layer is replaced, so everything above it
(authorization, error mapping, retries, 409 adoption) runs for real, in milliseconds, without a server.

    send = ScriptedSend([Answer(503, {"error": {...}}, {"Retry-After": "2"}), Answer(200, {"id": "p:US.j"})])
    transport = scripted_transport(send)

Each request takes the next answer (an exception instance is raised instead, to play a transport failure);
:attr:`ScriptedSend.requests` records what was sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from google.auth.credentials import AnonymousCredentials, Credentials

from ..transport import Response, Transport

__all__ = ["Answer", "FakeClock", "ScriptedSend", "SentRequest", "error_body", "scripted_transport"]


@dataclass(frozen=True)
class Answer:
    """One scripted HTTP answer: status, JSON body (``None``: empty) and headers."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SentRequest:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: Any


def error_body(status: int, reason: str, message: str = "scripted error") -> dict[str, Any]:
    """BigQuery's error payload (``{"error": {"code", "message", "errors": [{"reason", "message"}]}}``)."""
    return {"error": {"code": status, "message": message, "errors": [{"reason": reason, "message": message}]}}


class ScriptedSend:
    """Answers requests from a script, in order; an exhausted script is a test error."""

    def __init__(self, script: Iterable[Answer | BaseException]) -> None:
        self._script = list(script)
        self.requests: list[SentRequest] = []

    async def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> Response:
        parts = urlsplit(url)
        self.requests.append(
            SentRequest(
                method, parts.path, dict(parse_qsl(parts.query)), dict(headers), json.loads(body) if body else None
            )
        )
        if not self._script:
            raise AssertionError(f"unscripted request: {method} {parts.path}")
        answer = self._script.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        payload = json.dumps(answer.body).encode() if answer.body is not None else b""
        return Response(answer.status, dict(answer.headers), payload)

    @property
    def remaining(self) -> int:
        return len(self._script)


def scripted_transport(send: ScriptedSend, credentials: Credentials | None = None) -> Transport:
    """A :class:`Transport` to ``https://bigquery.test`` over ``send`` (anonymous unless ``credentials``)."""
    executor = ThreadPoolExecutor(2, thread_name_prefix="scripted")
    return Transport(
        "https://bigquery.test", credentials or AnonymousCredentials(), lambda: executor, "scripted/1.0", send
    )


class FakeClock:
    """A clock that only sleeping advances, for retries without waiting:
    ``JobsApi(transport, budget, sleep=clock.sleep, clock=clock.now)``. :attr:`slept` lists the waits (seconds)."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def now(self) -> float:
        return sum(self.slept)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
