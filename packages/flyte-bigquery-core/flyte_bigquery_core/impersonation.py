"""Impersonated credentials for a :class:`~.access.Caller`, with IAM's refusals turned into our verdicts.

google-auth's :class:`google.auth.impersonated_credentials.Credentials` exchanges the connector's own token for
one of the target service account (IAM Credentials ``generateAccessToken``, through ``delegates`` when given).
:func:`impersonated` makes one per caller; :class:`~.clients.ClientPool` keeps it, so the token is fetched once
per principal and refreshed (on a worker thread, never on the event loop: :mod:`.transport`) shortly before it
expires. ``FLYTEKITPLUGINS_BIGQUERY_IAM_ENDPOINT`` points the exchange elsewhere (a regional endpoint, or the
loopback stand-in of :mod:`.testing.iam_stand_in`).

What IAM answers decides the verdict (:func:`token_error`): 403 — the connector's identity lacks
``roles/iam.serviceAccountTokenCreator`` on the account (or the account does not exist) — and other 4xx are
permanent (:class:`TokenCreatorMissing`, :class:`~.errors.PermanentError`), naming the principal and the role;
429 and 5xx are transport failures retried within the call's budget. Neither tokens nor IAM's response body ever
reach a message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from google.auth import exceptions as auth_exceptions
from google.auth import impersonated_credentials
from google.auth.credentials import Credentials

from .access import Caller
from .errors import PermanentError

__all__ = ["GOOGLE_IAM_ENDPOINT", "TOKEN_CREATOR_ROLE", "TokenCreatorMissing", "impersonated", "token_error"]

#: The role whose ``iam.serviceAccounts.getAccessToken`` permission impersonation needs.
TOKEN_CREATOR_ROLE = "roles/iam.serviceAccountTokenCreator"
GOOGLE_IAM_ENDPOINT = "https://iamcredentials.googleapis.com"
#: Seconds an impersonated token lives (google-auth's default and IAM's maximum without an org policy).
TOKEN_LIFETIME = 3600
#: IAM statuses that another try may cure.
_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class TokenCreatorMissing(PermanentError):
    """IAM refused to issue a token for the principal: the connector's identity may not impersonate it."""

    def __init__(self, message: str, principal: str, status: int | None) -> None:
        super().__init__(message)
        self.principal = principal
        self.status = status


def _status(error: auth_exceptions.RefreshError) -> int | None:
    """The HTTP status in IAM's error body (``{"error": {"code": 403, ...}}``), which google-auth passes on."""
    for arg in error.args[1:]:
        try:
            body = json.loads(arg) if isinstance(arg, str | bytes) else arg
        except ValueError:
            continue
        code = (
            body.get("error", {}).get("code")
            if isinstance(body, dict) and isinstance(body.get("error"), dict)
            else None
        )
        if isinstance(code, int):
            return code
    return None


def token_error(error: auth_exceptions.RefreshError, principal: str) -> Exception:
    """Our verdict on a failed token exchange for ``principal``: a retryable transport error, or
    :class:`TokenCreatorMissing` naming the role. IAM's body (and anything token-like) is left out."""
    status = _status(error)
    if status in _TRANSIENT_STATUSES:
        return auth_exceptions.TransportError(f"IAM answered {status} while issuing a token for {principal}")
    shown = f" ({status})" if status is not None else ""
    return TokenCreatorMissing(
        f"cannot run as {principal!r}: IAM refused to issue its token{shown}. Grant the connector's service account "
        f"{TOKEN_CREATOR_ROLE} on {principal} (and on each delegate), and check that the account exists",
        principal,
        status,
    )


class _Impersonated(impersonated_credentials.Credentials):
    """google-auth's impersonated credentials whose refresh failures are :func:`token_error` verdicts."""

    def refresh(self, request: object) -> None:
        try:
            super().refresh(request)
        except auth_exceptions.RefreshError as error:
            raise token_error(error, self._target_principal) from None


def impersonated(
    source: Credentials, caller: Caller, scopes: Sequence[str], iam_endpoint: str | None = None
) -> Credentials:
    """Credentials that act as ``caller.principal`` (through its delegates), obtained with ``source`` from
    ``iam_endpoint`` (default: Google's). One token per principal: the quota project is the caller's business
    (a header per request), not the credentials'."""
    assert caller.principal is not None
    endpoint = (iam_endpoint or GOOGLE_IAM_ENDPOINT).rstrip("/")
    return _Impersonated(
        source_credentials=source,
        target_principal=caller.principal,
        target_scopes=list(scopes),
        delegates=[f"projects/-/serviceAccounts/{d}" for d in caller.delegates] or None,
        lifetime=TOKEN_LIFETIME,
        iam_endpoint_override=f"{endpoint}/v1/projects/-/serviceAccounts/{caller.principal}:generateAccessToken",
    )
