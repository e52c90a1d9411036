"""The fault proxy's HTTP server and request handler: forward each request, or misbehave as its rule says."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flyte_bigquery_core.testing._bigquery_endpoints import endpoint_of
from flyte_bigquery_core.testing._exchange import Exchange
from flyte_bigquery_core.testing._fault_rules import Rule

if TYPE_CHECKING:
    from flyte_bigquery_core.testing._fault_proxy import FaultProxy

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
)
_STATUS_REASONS = {
    429: "rateLimitExceeded",
    500: "backendError",
    502: "badGateway",
    503: "backendError",
    504: "backendError",
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    proxy: FaultProxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API: connection reuse is part of the test
    timeout = 10  # an idle kept-alive connection must not pin a thread forever
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet: the Exchange log says it all
        pass

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        proxy = self.server.proxy
        method = self.command
        path = urlsplit(self.path).path
        body = self._body()
        rule = proxy._take_rule(method, path)
        action = rule.action if rule is not None else None
        endpoint = endpoint_of(method, path)

        def record(status: int | None, upstream: int | None = None) -> None:
            # Before the client can see anything, so a client that got its answer finds the exchange logged.
            fault = rule.kind if rule else None
            proxy._record(Exchange(method, path, endpoint, fault, status, upstream, tuple(self.headers.items())))

        if rule is not None and action == "delay" and not rule.after:
            time.sleep(rule.seconds)
        if rule is not None and action == "status":
            record(rule.status)
            self._answer_error(rule)
            return
        if action == "reset":
            record(None)
            self._reset()
            return
        try:
            upstream, headers, payload = proxy._forward(method, self.path, self.headers.items(), body)
        except OSError as e:  # the emulator is gone: say so, as a gateway would
            record(502)
            self.send_error(502, f"upstream unreachable: {e}")
            return
        if action == "drop":
            record(None, upstream)
            self._reset()
            return
        if rule is not None and action == "delay" and rule.after:
            time.sleep(rule.seconds)
        if rule is not None and action == "rewrite" and rule.transform is not None:
            payload = json.dumps(rule.transform(json.loads(payload))).encode()
            upstream = rule.rewrite_status or upstream
        self.send_response(upstream)
        for key, value in headers:
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        record(upstream, upstream)
        if rule is not None and action == "truncate":
            keep = len(payload) // 2 if rule.keep is None else min(rule.keep, max(len(payload) - 1, 0))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload[:keep])
            # An orderly close (FIN, not RST), so the partial body arrives before the end of stream.
            self.close_connection = True
            return
        self.end_headers()
        self.wfile.write(payload)

    def _answer_error(self, rule: Rule) -> None:
        reason = rule.reason or _STATUS_REASONS.get(rule.status, "injectedFault")
        message = rule.message or f"fault injected by test proxy: HTTP {rule.status}"
        payload = json.dumps(
            {
                "error": {
                    "code": rule.status,
                    "message": message,
                    "errors": [{"reason": reason, "message": message, "domain": "global"}],
                    "status": HTTPStatus(rule.status).phrase.upper().replace(" ", "_"),
                }
            }
        ).encode()
        self.send_response(rule.status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        if rule.retry_after is not None:
            self.send_header("Retry-After", f"{rule.retry_after:g}")
        self.end_headers()
        self.wfile.write(payload)

    def _reset(self) -> None:
        """Abort the connection with a TCP RST and no response: the client sees a connection error."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
        sock = self.connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.close()

    def setup(self) -> None:
        super().setup()
        self.server.proxy._track(self.connection)

    def finish(self) -> None:
        self.server.proxy._untrack(self.connection)
        super().finish()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle
