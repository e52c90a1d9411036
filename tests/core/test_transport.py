"""The transport: authorization, token refresh on 401, and errors as google-cloud-bigquery raises them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from flyte_bigquery_core.testing.scripted import Answer, ScriptedSend, error_body, scripted_transport
from flyte_bigquery_core.transport import MAX_REFRESH_ATTEMPTS
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import Credentials


class _CountingCredentials(Credentials):
    """Credentials whose token is ``token-N`` after N refreshes (google-auth's base class does the rest)."""

    def __init__(self) -> None:
        super().__init__()
        self.refreshes = 0

    def refresh(self, request: Any) -> None:
        self.refreshes += 1
        self.token = f"token-{self.refreshes}"


def _request(send: ScriptedSend, credentials: Credentials | None = None, **kwargs: Any) -> dict[str, Any]:
    transport = scripted_transport(send, credentials)
    return asyncio.run(transport.request("GET", "/projects/p/jobs/j", **kwargs))


def test_a_token_is_fetched_before_the_first_call() -> None:
    send = ScriptedSend([Answer(200, {"id": "j"})])
    credentials = _CountingCredentials()
    assert _request(send, credentials) == {"id": "j"}
    assert credentials.refreshes == 1
    assert send.requests[0].headers["authorization"] == "Bearer token-1"


def test_a_401_refreshes_the_token_and_tries_again() -> None:
    send = ScriptedSend([Answer(401, error_body(401, "authError")), Answer(200, {"id": "j"})])
    credentials = _CountingCredentials()
    assert _request(send, credentials) == {"id": "j"}
    assert [r.headers["authorization"] for r in send.requests] == ["Bearer token-1", "Bearer token-2"]


def test_401s_end_after_the_refresh_attempts() -> None:
    send = ScriptedSend([Answer(401, error_body(401, "authError"))] * (MAX_REFRESH_ATTEMPTS + 1))
    with pytest.raises(api_exceptions.Unauthorized):
        _request(send, _CountingCredentials())
    assert send.remaining == 0


def test_anonymous_credentials_are_not_refreshed_on_401() -> None:
    send = ScriptedSend([Answer(401, error_body(401, "authError"))])
    with pytest.raises(api_exceptions.Unauthorized):
        _request(send)
    assert len(send.requests) == 1 and "authorization" not in send.requests[0].headers


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, api_exceptions.BadRequest),
        (403, api_exceptions.Forbidden),
        (404, api_exceptions.NotFound),
        (409, api_exceptions.Conflict),
        (429, api_exceptions.TooManyRequests),
        (500, api_exceptions.InternalServerError),
        (503, api_exceptions.ServiceUnavailable),
    ],
)
def test_an_error_status_raises_the_client_librarys_exception(status: int, exception: type[Exception]) -> None:
    send = ScriptedSend([Answer(status, error_body(status, "someReason", "what went wrong"))])
    with pytest.raises(exception) as caught:
        _request(send)
    assert caught.value.errors == [{"reason": "someReason", "message": "what went wrong"}]  # type: ignore[attr-defined]
    assert "what went wrong" in str(caught.value)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_attached_on_429_and_503(status: int) -> None:
    send = ScriptedSend([Answer(status, error_body(status, "rateLimitExceeded"), {"retry-after": "7"})])
    with pytest.raises(api_exceptions.GoogleAPICallError) as caught:
        _request(send)
    assert caught.value.retry_after == 7.0  # type: ignore[attr-defined]


def test_an_error_message_does_not_carry_the_query_string() -> None:
    send = ScriptedSend([Answer(400, error_body(400, "invalid"))])
    with pytest.raises(api_exceptions.BadRequest) as caught:
        _request(send, params={"location": "secret-location"})
    assert "secret-location" not in str(caught.value)
    assert send.requests[0].params == {"location": "secret-location"}


def test_a_body_is_sent_as_json() -> None:
    send = ScriptedSend([Answer(200, {})])
    transport = scripted_transport(send)
    asyncio.run(transport.request("POST", "/projects/p/jobs", body={"a": [1, "x"]}))
    assert send.requests[0].body == {"a": [1, "x"]}
    assert send.requests[0].headers["Content-Type"] == "application/json"


def test_an_empty_answer_is_an_empty_dict() -> None:
    assert _request(ScriptedSend([Answer(204)])) == {}
