"""Bursts of job creation: which ``jobs.insert`` refusals mean "not now", and a cap on job calls in flight.

BigQuery sheds a burst of ``jobs.insert`` calls with 429, with 403 ``rateLimitExceeded`` (API requests per
second, job creation rate), with ``jobRateLimitExceeded``, and with ``quotaExceeded`` when too many queries run
at once ("concurrent" in the message; other ``quotaExceeded`` errors are daily or hard quotas, which waiting
does not cure). None of these says anything about the task, so none may fail it: :func:`is_throttled` names
them, ``jobs.insert`` retries them with jittered backoff (:func:`.retry.call_with_retry`) within the create's
budget, and past the budget raises :class:`Throttled` — the engine then returns a handle that submits the same
job (same job id) on a later ``get`` (:mod:`.resubmission`), so a throttled create neither fails nor consumes a
Flyte retry.

:class:`ProjectGate` caps the job calls (``jobs.insert``/``get``/``cancel``/dry runs) one replica has in flight
per BigQuery project (``FLYTEKITPLUGINS_BIGQUERY_MAX_INFLIGHT_PER_PROJECT``). The cap is per replica and per
event loop: with N replicas the project sees at most N * cap calls at once. Waits in backoff hold no slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import weakref
from collections.abc import AsyncIterator

from google.api_core import exceptions as api_exceptions

from .errors import TransientError
from .retry import is_retryable

__all__ = [
    "CONCURRENCY_QUOTA_MARKERS",
    "INSERT_THROTTLE_REASONS",
    "ProjectGate",
    "Throttled",
    "is_insert_retryable",
    "is_throttled",
    "project_of_path",
]

#: ``jobs.insert`` error reasons that mean "too many, too fast" (whatever the HTTP status).
INSERT_THROTTLE_REASONS: frozenset[str] = frozenset({"rateLimitExceeded", "jobRateLimitExceeded"})
#: ``quotaExceeded`` is a concurrency quota (worth waiting for) when its message says so.
CONCURRENCY_QUOTA_MARKERS: tuple[str, ...] = ("concurrent",)
_JOBS_PATH = re.compile(r"^/projects/(?P<project>[^/]+)/jobs(?:/|$)")


class Throttled(TransientError):
    """``jobs.insert`` was throttled (rate or concurrency) through the whole budget: the job was not created."""


def _reasons(exc: api_exceptions.GoogleAPICallError) -> list[tuple[str | None, str]]:
    return [(e.get("reason"), str(e.get("message") or "")) for e in (exc.errors or []) if isinstance(e, dict)]


def is_throttled(exc: BaseException) -> bool:
    """Whether a ``jobs.insert`` failure is BigQuery shedding load (see the module docstring)."""
    if isinstance(exc, api_exceptions.TooManyRequests):
        return True
    if not isinstance(exc, api_exceptions.GoogleAPICallError):
        return False
    for reason, message in _reasons(exc) or [(None, exc.message or "")]:
        if reason in INSERT_THROTTLE_REASONS:
            return True
        text = (message or exc.message or "").casefold()
        if reason == "quotaExceeded" and any(marker in text for marker in CONCURRENCY_QUOTA_MARKERS):
            return True
    return False


def is_insert_retryable(exc: BaseException) -> bool:
    """The retry predicate of ``jobs.insert``: :func:`.retry.is_retryable`, plus every throttling refusal."""
    return is_retryable(exc) or is_throttled(exc)


def project_of_path(path: str) -> str | None:
    """The project of a job call's REST path (``/projects/{p}/jobs...``); ``None`` for other calls."""
    match = _JOBS_PATH.match(path)
    return match.group("project") if match else None


class ProjectGate:
    """At most ``cap`` job calls in flight per BigQuery project, per event loop (``cap=0``: no cap)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = (
            weakref.WeakKeyDictionary()
        )

    @contextlib.asynccontextmanager
    async def slot(self, path: str) -> AsyncIterator[None]:
        """Hold one of the project's slots for the call to ``path`` (no wait for calls that are not job calls)."""
        project = project_of_path(path) if self.cap > 0 else None
        if project is None:
            yield
            return
        semaphores = self._loops.setdefault(asyncio.get_running_loop(), {})
        semaphore = semaphores.get(project)
        if semaphore is None:
            semaphore = semaphores[project] = asyncio.Semaphore(self.cap)
        async with semaphore:
            yield
