"""Transient versus permanent: the verdict on client exceptions (pure logic)."""

import pytest
import requests
from flyte_bigquery_core.jobs import is_transient
from google.api_core import exceptions as api_exceptions


@pytest.mark.parametrize(
    "exc",
    [
        api_exceptions.InternalServerError("boom"),
        api_exceptions.BadGateway("bad gateway"),
        api_exceptions.ServiceUnavailable("unavailable"),
        api_exceptions.TooManyRequests("slow down"),
        api_exceptions.Forbidden("quota", errors=[{"reason": "rateLimitExceeded"}]),
        api_exceptions.BadRequest("shed", errors=[{"reason": "backendError"}]),
        requests.exceptions.ConnectionError("reset"),
        requests.exceptions.ReadTimeout("slow"),
        ConnectionResetError(),
    ],
)
def test_transient_failures_are_retried(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        api_exceptions.BadRequest("syntax", errors=[{"reason": "invalidQuery"}]),
        api_exceptions.Forbidden("denied", errors=[{"reason": "accessDenied"}]),
        api_exceptions.NotFound("gone"),
        api_exceptions.Conflict("exists"),
        ValueError("bug"),
    ],
)
def test_permanent_failures_are_not_retried(exc: BaseException) -> None:
    assert not is_transient(exc)
