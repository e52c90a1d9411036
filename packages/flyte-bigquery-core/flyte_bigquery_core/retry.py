"""When a BigQuery API call is tried again, and how long to wait: the retry policy as module constants.

The verdict follows google-cloud-bigquery's own (``google.cloud.bigquery.retry._should_retry``), so a call made
here is retried exactly when the client library would retry it:

* an API error is retried when its *first* error's reason is one of :data:`RETRYABLE_API_REASONS`, or when its
  HTTP status is one of :data:`RETRYABLE_STATUS_ERRORS` (429, 500, 502, 503; 504 too, which the library leaves
  to the caller: a gateway timeout never means the request was wrong);
* a transport failure is retried (:data:`RETRYABLE_TRANSPORT_ERRORS`: refused, reset and dropped connections,
  timeouts, a truncated body, google-auth's ``TransportError`` while fetching a token), but never an SSL
  failure (:data:`NEVER_RETRIED_ERRORS`): a certificate problem is configuration, and retrying only hides it.

A *job*'s ``errorResult`` reasons are a different vocabulary, judged in :mod:`.status`; they are not mixed in
here. Field lesson: BigQuery answers load it sheds with 403 ``rateLimitExceeded`` and with 400/500
``backendError``, so the status code alone is not enough.

Waits grow exponentially with full jitter (:data:`INITIAL_DELAY` doubling up to :data:`MAXIMUM_DELAY`). A
``Retry-After`` header on a 429 or 503 is honoured: the next try waits at least that long, and when that is
past the remaining budget the call gives up at once instead of sleeping into a failure.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions

__all__ = [
    "INITIAL_DELAY",
    "MAXIMUM_DELAY",
    "MULTIPLIER",
    "NEVER_RETRIED_ERRORS",
    "RETRYABLE_API_REASONS",
    "RETRYABLE_STATUS_ERRORS",
    "RETRYABLE_TRANSPORT_ERRORS",
    "RETRY_AFTER_STATUSES",
    "call_with_retry",
    "is_retryable",
    "parse_retry_after",
    "retry_after",
]

T = TypeVar("T")

#: API error reasons worth another try (google-cloud-bigquery's ``_RETRYABLE_REASONS``).
RETRYABLE_API_REASONS: frozenset[str] = frozenset({"rateLimitExceeded", "backendError", "internalError", "badGateway"})

#: HTTP statuses worth another try, as the exceptions ``google.api_core`` raises for them.
RETRYABLE_STATUS_ERRORS: tuple[type[BaseException], ...] = (
    api_exceptions.TooManyRequests,
    api_exceptions.InternalServerError,
    api_exceptions.BadGateway,
    api_exceptions.ServiceUnavailable,
    api_exceptions.GatewayTimeout,
)

#: Failures below HTTP: the request may not have reached BigQuery, or its answer was lost.
RETRYABLE_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted
    TimeoutError,
    asyncio.TimeoutError,  # aiohttp's per-request timeout (not TimeoutError before Python 3.11)
    aiohttp.ClientConnectionError,  # server disconnected, socket timeouts
    aiohttp.ClientPayloadError,  # a truncated body
    auth_exceptions.TransportError,  # the token endpoint could not be reached
)

#: Never retried, although some are subclasses of the above: certificate and TLS failures.
NEVER_RETRIED_ERRORS: tuple[type[BaseException], ...] = (ssl.SSLError, aiohttp.ClientSSLError)

#: Statuses whose ``Retry-After`` header is honoured.
RETRY_AFTER_STATUSES: frozenset[int] = frozenset({429, 503})

#: Backoff: the first wait is up to this many seconds, then doubling, at most :data:`MAXIMUM_DELAY`.
INITIAL_DELAY = 0.25
MULTIPLIER = 2.0
MAXIMUM_DELAY = 8.0


def _first_reason(exc: BaseException) -> str | None:
    errors = getattr(exc, "errors", None) or []
    first = errors[0] if errors else None
    return first.get("reason") if isinstance(first, dict) else None


def is_retryable(exc: BaseException) -> bool:
    """Whether another try of the same API call could succeed (see the module docstring)."""
    if isinstance(exc, NEVER_RETRIED_ERRORS):
        return False
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        return _first_reason(exc) in RETRYABLE_API_REASONS or isinstance(exc, RETRYABLE_STATUS_ERRORS)
    return isinstance(exc, RETRYABLE_TRANSPORT_ERRORS)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110 §10.2.3).

    ``None`` for a missing or unreadable header; never negative.
    """
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_after(exc: BaseException) -> float | None:
    """The ``Retry-After`` seconds a transport attached to an API error (``exc.retry_after``), if any."""
    value: Any = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, int | float) else None


async def call_with_retry(
    call: Callable[[], Awaitable[T]],
    budget: float,
    *,
    predicate: Callable[[BaseException], bool] = is_retryable,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    jitter: Callable[[], float] = random.random,
    on_retry: Callable[[BaseException], object] | None = None,
) -> T:
    """``await call()``, retried on what ``predicate`` accepts for at most ``budget`` seconds in all.

    The last error is raised when it is not retryable, or when the next wait would end past the budget
    (a ``Retry-After`` longer than what is left ends the call at once). ``sleep``, ``clock`` and ``jitter``
    are injectable for tests. ``on_retry(error)`` is called before each wait for another try (metrics).
    """
    deadline = clock() + budget
    ceiling = INITIAL_DELAY
    while True:
        try:
            return await call()
        except Exception as exc:
            if not predicate(exc):
                raise
            delay = ceiling * jitter()
            asked = retry_after(exc)
            if asked is not None:
                delay = max(delay, asked)
            if clock() + delay > deadline:
                raise
            if on_retry is not None:
                on_retry(exc)
        await sleep(delay)
        ceiling = min(ceiling * MULTIPLIER, MAXIMUM_DELAY)
