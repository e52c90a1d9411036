"""The BigQuery stand-in plus an OAuth token endpoint, and a service-account key that trusts it.

Why: the upstream connector builds ``bigquery.Client()`` from Application Default Credentials on every
call, so a fair comparison needs credentials that work on loopback. :func:`write_service_account_key`
generates a fresh RSA key (``cryptography``) and writes a service-account JSON key file whose
``token_uri`` is this stand-in's ``/token``; point ``GOOGLE_APPLICATION_CREDENTIALS`` at it and
google-auth signs a JWT and exchanges it here for a bearer token, exactly as it would with Google.

``POST /token`` answers ``{"access_token", "expires_in": 3600, "token_type": "Bearer"}`` after the same
latency as the API calls (a token exchange is a network round trip too) and is counted under ``token``
in ``GET /_stats``. Everything else is :class:`benchmarks.stand_in.StandIn`. Listens on 127.0.0.1 only.

    python -m benchmarks.auth_stand_in --port 0 --latency 0.1
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from aiohttp import web

from benchmarks import stand_in
from benchmarks.service_bench import StandInProcess
from benchmarks.stand_in import StandIn

__all__ = ["AuthStandIn", "AuthStandInProcess", "write_service_account_key"]


class AuthStandIn(StandIn):
    """:class:`StandIn` with ``POST /token`` (an OAuth 2.0 JWT-bearer grant that accepts any assertion)."""

    label = "auth stand-in"

    async def token(self, request: web.Request) -> web.Response:
        await self._wait("token")
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or not form.get("assertion"):
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response(
            {"access_token": "standin-" + uuid.uuid4().hex, "expires_in": 3600, "token_type": "Bearer"}
        )

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_post("/token", self.token)
        return app


class AuthStandInProcess(StandInProcess):
    """``python -m benchmarks.auth_stand_in`` as a subprocess (``.url``, ``.stats()``, ``.reset()``, ``.stop()``)."""

    module = "benchmarks.auth_stand_in"


def write_service_account_key(directory: Path, token_uri: str, project: str) -> Path:
    """A freshly generated service-account key file (2048-bit RSA) whose tokens come from ``token_uri``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": f"bench@{project}.iam.gserviceaccount.com",
        "client_id": "100000000000000000000",
        "auth_uri": token_uri.rsplit("/", 1)[0] + "/auth",
        "token_uri": token_uri,
    }
    path = directory / "service-account.json"
    path.write_text(json.dumps(info, indent=2))
    path.chmod(0o600)
    return path


def main(argv: list[str] | None = None) -> int:
    return stand_in.main(
        argv,
        kind=AuthStandIn,
        prog="python -m benchmarks.auth_stand_in",
        doc=__doc__,
        latency_help="seconds before each answer (token included)",
    )


if __name__ == "__main__":
    raise SystemExit(main())
