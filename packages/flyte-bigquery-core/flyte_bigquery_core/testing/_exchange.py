"""The fault proxy's log entry: :class:`Exchange`, one request as the proxy handled it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Exchange"]


@dataclass(frozen=True)
class Exchange:
    """One request as the proxy handled it: what was asked, which fault (if any), what the client got.

    ``status`` is the HTTP status sent to the client, ``None`` when it got no response at all.
    ``upstream_status`` is the emulator's answer when the request was forwarded; ``headers`` are the
    request headers the client sent.
    """

    method: str
    path: str
    endpoint: str
    fault: str | None
    status: int | None
    upstream_status: int | None
    headers: tuple[tuple[str, str], ...] = ()
