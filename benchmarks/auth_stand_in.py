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

import argparse
import asyncio
import contextlib
import json
import uuid
from pathlib import Path

from aiohttp import web

from benchmarks.service_bench import StandInProcess
from benchmarks.stand_in import HOST, StandIn

__all__ = ["AuthStandIn", "AuthStandInProcess", "write_service_account_key"]


class AuthStandIn(StandIn):
    """:class:`StandIn` with ``POST /token`` (an OAuth 2.0 JWT-bearer grant that accepts any assertion)."""

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


async def _serve(port: int, latency: float) -> None:
    runner = web.AppRunner(AuthStandIn(latency).app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port, backlog=1024)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"auth stand-in listening on http://{HOST}:{bound} (latency {latency * 1000:.0f} ms)", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.auth_stand_in", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 = any free port (printed on stdout)")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds before each answer (token included)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.latency))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
