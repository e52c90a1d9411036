"""A loopback stand-in for IAM Credentials' ``generateAccessToken``, for offline impersonation (stdlib only).

google-auth's impersonated credentials post ``{"delegates", "scope", "lifetime"}`` to
``{endpoint}/v1/projects/-/serviceAccounts/{principal}:generateAccessToken`` with the source identity's bearer
token, and read ``{"accessToken", "expireTime"}`` back. This server answers the same way, on 127.0.0.1, with a
fresh token per exchange — or, for a principal in :attr:`IamStandIn.denied`, with the 403 IAM gives an identity
that lacks ``roles/iam.serviceAccountTokenCreator`` (``PERMISSION_DENIED``), or with :attr:`IamStandIn.status`
for every exchange (a 503, say). Point ``FLYTEKITPLUGINS_BIGQUERY_IAM_ENDPOINT`` at :attr:`IamStandIn.url`; the
local BigQuery accepts any bearer token, so the tokens issued here are what its requests carry.

:attr:`IamStandIn.exchanges` records each exchange (principal, delegates, whether a bearer token came with it,
the status answered); :attr:`IamStandIn.issued` maps each token issued to its principal, so a test can tell
which principal a BigQuery request ran as from its ``Authorization`` header. Use it as a context manager.
"""

from __future__ import annotations

import datetime
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from flyte_bigquery_core.testing._lifecycle import Harness
from flyte_bigquery_core.testing._loopback_server import serve, shut

__all__ = ["IamExchange", "IamStandIn"]

_PATH = re.compile(r"^/v1/projects/-/serviceAccounts/(?P<principal>[^/:]+):generateAccessToken$")
_DENIED_BODY: dict[str, object] = {
    "error": {
        "code": 403,
        "message": "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
        "status": "PERMISSION_DENIED",
    }
}


@dataclass(frozen=True)
class IamExchange:
    """One ``generateAccessToken`` call as the stand-in saw it."""

    principal: str
    delegates: tuple[str, ...]
    bearer: bool
    status: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    stand_in: IamStandIn


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        match = _PATH.match(self.path.split("?", 1)[0])
        if match is None:
            self._answer(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})
            return
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = {}
        principal = unquote(match.group("principal"))
        bearer = (self.headers.get("Authorization") or "").startswith("Bearer ")
        status, answer = self.server.stand_in._exchange(principal, tuple(request.get("delegates") or ()), bearer)
        self._answer(status, answer)

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class IamStandIn(Harness):
    """``generateAccessToken`` on ``http://127.0.0.1:<port>``. Thread-safe; ``latency`` seconds before each
    answer (a token exchange is a network round trip)."""

    def __init__(self, denied: set[str] | None = None, latency: float = 0.0, lifetime: float = 3600.0) -> None:
        #: Principals whose tokens are refused with IAM's 403.
        self.denied: set[str] = set(denied or ())
        #: When set, every exchange is answered with this status (e.g. 503).
        self.status: int | None = None
        self.latency = latency
        self.lifetime = lifetime
        self.exchanges: list[IamExchange] = []
        #: token → principal, for every token issued.
        self.issued: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> IamStandIn:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.stand_in = self
        self._server = server
        self._thread = serve(server, "iam-stand-in")
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        shut(server, self._thread)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the IAM stand-in is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def exchanges_for(self, principal: str) -> list[IamExchange]:
        with self._lock:
            return [e for e in self.exchanges if e.principal == principal]

    def _exchange(self, principal: str, delegates: tuple[str, ...], bearer: bool) -> tuple[int, dict[str, object]]:
        if self.latency:
            time.sleep(self.latency)
        answer: dict[str, object]
        if self.status is not None:
            status = self.status
            answer = {"error": {"code": status, "message": "scripted", "status": "UNAVAILABLE"}}
        elif principal in self.denied:
            status, answer = 403, _DENIED_BODY
        else:
            token = "ya29.stand-in-" + uuid.uuid4().hex
            expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=self.lifetime)
            status, answer = 200, {"accessToken": token, "expireTime": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}
            with self._lock:
                self.issued[token] = principal
        with self._lock:
            self.exchanges.append(IamExchange(principal, delegates, bearer, status))
        return status, answer
