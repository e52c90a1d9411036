"""The retry policy: which failures are tried again, and how long to wait (google-cloud-bigquery's semantics)."""

from __future__ import annotations

import asyncio
import email.utils
import ssl

import aiohttp
import pytest
from flyte_bigquery_core.retry import call_with_retry, is_retryable, parse_retry_after
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions


def _api(status: int, *reasons: str) -> api_exceptions.GoogleAPICallError:
    return api_exceptions.from_http_status(status, "x", errors=[{"reason": r} for r in reasons])


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (auth_exceptions.TransportError("token endpoint unreachable"), True),
        (ssl.SSLError("bad certificate"), False),
        (ssl.SSLCertVerificationError("unknown ca"), False),
        (
            aiohttp.ClientSSLError(
                aiohttp.client_reqrep.ConnectionKey("h", 443, True, True, None, None, None), OSError()
            ),
            False,
        ),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (aiohttp.ServerDisconnectedError(), True),
        (aiohttp.ClientPayloadError("truncated"), True),
        (_api(403, "rateLimitExceeded"), True),
        (_api(400, "backendError"), True),
        (_api(400, "invalidQuery"), False),
        (_api(400, "invalidQuery", "backendError"), False),  # the first reason decides
        (_api(403, "accessDenied"), False),
        (_api(404, "notFound"), False),
        (_api(409, "duplicate"), False),
        (_api(429), True),
        (_api(500), True),
        (_api(502), True),
        (_api(503), True),
        (_api(504), True),
        (ValueError("a bug"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_is_retryable_follows_the_client_librarys_verdict(error: BaseException, retryable: bool) -> None:
    assert is_retryable(error) is retryable


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), ("0", 0.0), (" 12 ", 12.0), (None, None), ("", None), ("soon", None), ("-1", None)],
)
def test_retry_after_delta_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_http_date_is_seconds_from_now() -> None:
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 42, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(42.0)


def test_retry_after_in_the_past_is_zero() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0


class _Clock:
    """A fake clock that sleeping advances."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _failing(errors: list[BaseException], result: str = "ok"):  # type: ignore[no-untyped-def]
    calls = []

    async def call() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return result

    return call, calls


def _retry_after(seconds: float) -> api_exceptions.GoogleAPICallError:
    exc = _api(429)
    exc.retry_after = seconds  # type: ignore[attr-defined]
    return exc


def test_a_retryable_failure_is_tried_again_until_it_succeeds() -> None:
    clock = _Clock()
    call, calls = _failing([_api(503), ConnectionResetError()])
    assert asyncio.run(call_with_retry(call, 60, sleep=clock.sleep, clock=clock, jitter=lambda: 1.0)) == "ok"
    assert len(calls) == 3
    assert clock.sleeps == [0.25, 0.5]  # exponential backoff


def test_a_permanent_failure_is_raised_after_one_try() -> None:
    clock = _Clock()
    call, calls = _failing([_api(400, "invalidQuery")])
    with pytest.raises(api_exceptions.BadRequest):
        asyncio.run(call_with_retry(call, 60, sleep=clock.sleep, clock=clock))
    assert len(calls) == 1 and clock.sleeps == []


def test_retry_after_is_honoured_when_longer_than_the_backoff() -> None:
    clock = _Clock()
    call, _ = _failing([_retry_after(3.0)])
    asyncio.run(call_with_retry(call, 60, sleep=clock.sleep, clock=clock, jitter=lambda: 1.0))
    assert clock.sleeps == [3.0]


def test_retry_after_past_the_budget_gives_up_at_once() -> None:
    clock = _Clock()
    call, calls = _failing([_retry_after(30.0)])
    with pytest.raises(api_exceptions.TooManyRequests):
        asyncio.run(call_with_retry(call, 10, sleep=clock.sleep, clock=clock))
    assert len(calls) == 1 and clock.sleeps == []


def test_the_budget_bounds_the_total_wait() -> None:
    clock = _Clock()
    call, calls = _failing([_api(503)] * 100)
    with pytest.raises(api_exceptions.ServiceUnavailable):
        asyncio.run(call_with_retry(call, 20, sleep=clock.sleep, clock=clock, jitter=lambda: 1.0))
    assert sum(clock.sleeps) <= 20
    assert max(clock.sleeps) == 8.0  # the backoff is capped
    assert len(calls) == len(clock.sleeps) + 1


def test_a_zero_budget_makes_one_try() -> None:
    clock = _Clock()
    call, calls = _failing([_api(503)])
    with pytest.raises(api_exceptions.ServiceUnavailable):
        asyncio.run(call_with_retry(call, 0, sleep=clock.sleep, clock=clock, jitter=lambda: 1.0))
    assert len(calls) == 1
