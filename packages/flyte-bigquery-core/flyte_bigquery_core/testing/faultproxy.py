"""A scriptable fault-injecting HTTP proxy for the BigQuery REST API (stdlib only).

Why: the connector's promises under failure (retry 5xx/429, survive a lost ``jobs.insert`` response by
reattaching on 409, never start a second job) can only be tested honestly with the real client talking
HTTP to a real server. This proxy sits between the client (``BIGQUERY_EMULATOR_HOST=proxy.url``) and the
emulator and misbehaves on cue:

* :meth:`FaultProxy.add_rule` matches requests by method and a regex searched in the path (query string
  excluded) and applies an action to the next ``count`` matches (``count=None``: all of them);
* actions: answer an HTTP ``status`` without forwarding (with ``Retry-After`` for 429), ``reset`` the
  connection before forwarding, ``drop`` (forward, then close the connection without answering: a lost
  response), ``delay`` seconds before or after forwarding, ``truncate`` the forwarded body;
* :meth:`FaultProxy.chaos` injects faults into a fraction of the other requests with a seeded RNG, so
  a failing run can be replayed;
* :attr:`FaultProxy.seen` / :attr:`FaultProxy.injected` count requests by endpoint and faults by kind,
  :attr:`FaultProxy.injected_at` faults by endpoint and kind, and :attr:`FaultProxy.log` records every
  exchange with the status the client got (and the request headers it sent).

It listens on 127.0.0.1 only. Use it as a context manager or call :meth:`start`/:meth:`stop`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from flyte_bigquery_core.testing._lifecycle import Harness

__all__ = ["ACTIONS", "Exchange", "FaultProxy", "Rule", "endpoint_of"]

#: ``status``: answer without forwarding; ``reset``: RST before forwarding; ``drop``: forward, then close
#: without answering; ``delay``: wait, then behave normally; ``truncate``: forward, send part of the body;
#: ``rewrite``: forward, then pass the JSON response through ``transform`` (a job BigQuery would report
#: differently than the emulator does, e.g. cancelled, or a dry run with a real byte estimate).
ACTIONS = ("status", "reset", "drop", "delay", "truncate", "rewrite")

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

# BigQuery REST endpoints by (method, path regex): names for counters and for readable rules.
_ENDPOINTS = (
    ("POST", re.compile(r"/projects/[^/]+/jobs/[^/]+/cancel$"), "jobs.cancel"),
    ("POST", re.compile(r"/projects/[^/]+/jobs$"), "jobs.insert"),
    ("GET", re.compile(r"/projects/[^/]+/jobs/[^/]+$"), "jobs.get"),
    ("GET", re.compile(r"/projects/[^/]+/jobs$"), "jobs.list"),
    ("GET", re.compile(r"/projects/[^/]+/queries/[^/]+$"), "jobs.getQueryResults"),
    ("POST", re.compile(r"/projects/[^/]+/queries$"), "jobs.query"),
    ("GET", re.compile(r"/tables/[^/]+/data$"), "tabledata.list"),
    ("GET", re.compile(r"/tables/[^/]+$"), "tables.get"),
)


def endpoint_of(method: str, path: str) -> str:
    """The BigQuery API method a request calls (``jobs.insert``...), or ``METHOD path`` when unknown."""
    for want, pattern, name in _ENDPOINTS:
        if method == want and pattern.search(path):
            return name
    return f"{method} {path}"


@dataclass
class Rule:
    """Apply ``action`` to the next ``count`` requests matching ``method`` and ``path`` (a regex, searched).

    ``count=None`` applies to every match. ``status``/``retry_after`` configure the ``status`` action;
    ``seconds``/``after`` the ``delay`` action (``after``: forward first, then wait before answering);
    ``keep`` is how many body bytes ``truncate`` sends (default: half); ``transform`` is what ``rewrite``
    applies to the decoded JSON response body. ``reason``/``message`` set the BigQuery error the ``status``
    action answers with (default: the usual reason for the status, e.g. ``backendError`` for 503), so a
    rejection BigQuery makes and the emulator does not (``invalid`` labels, say) can be played.
    """

    action: str
    method: str | None = None
    path: str = ""
    count: int | None = 1
    status: int = 503
    retry_after: float | None = None
    seconds: float = 0.0
    after: bool = False
    keep: int | None = None
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    reason: str | None = None
    message: str | None = None
    applied: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; expected one of {', '.join(ACTIONS)}")
        self._pattern = re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and bool(self._pattern.search(path))

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.applied >= self.count

    @property
    def kind(self) -> str:
        """The counter key of the fault: ``status:503``, ``reset``, ``drop``, ``delay``, ``truncate``."""
        return f"status:{self.status}" if self.action == "status" else self.action


@dataclass(frozen=True)
class Exchange:
    """One request as the proxy handled it: what was asked, which fault (if any), what the client got.

    ``status`` is the HTTP status sent to the client, ``None`` when it got no response at all.
    ``upstream_status`` is the emulator's answer when the request was forwarded; ``headers`` are the
    request headers the client sent.
    """

    method: str
    path: str
    endpoint: str
    fault: str | None
    status: int | None
    upstream_status: int | None
    headers: tuple[tuple[str, str], ...] = ()


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


class FaultProxy(Harness):
    """An HTTP proxy to ``upstream`` (``http://host:port``) that injects faults on cue. Thread-safe."""

    def __init__(self, upstream: str, *, host: str = "127.0.0.1") -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http://host:port URL, got {upstream!r}")
        self._upstream = (parts.hostname, parts.port or 80)
        self._host = host
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._random: tuple[random.Random, float, tuple[Rule, ...]] | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        #: Requests seen, by endpoint (``jobs.insert``...) and in total (key ``"*"``).
        self.seen: Counter[str] = Counter()
        #: Faults injected, by kind (``status:503``, ``reset``, ``drop``, ``delay``, ``truncate``) and ``"*"``.
        self.injected: Counter[str] = Counter()
        #: Faults injected, by (endpoint, kind): ``("jobs.insert", "drop")``...
        self.injected_at: Counter[tuple[str, str]] = Counter()
        #: Every exchange, in completion order.
        self.log: list[Exchange] = []

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        server = _Server((self._host, 0), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="faultproxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, abort open connections, and join the accept loop. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL for ``BIGQUERY_EMULATOR_HOST``."""
        return f"http://{self._host}:{self.port}"

    # --- scripting ----------------------------------------------------------------------------------

    def add_rule(
        self, action: str, method: str | None = None, path: str = "", count: int | None = 1, **options: object
    ) -> Rule:
        """Add a rule (see :class:`Rule`); earlier rules win when several match. Returns it (see ``applied``)."""
        rule = Rule(action, method, path, count, **options)  # type: ignore[arg-type]
        with self._lock:
            self._rules.append(rule)
        return rule

    def chaos(self, rate: float, seed: int, faults: tuple[Rule, ...] | None = None) -> None:
        """Inject a fault into each request no rule matched with probability ``rate``, choosing among
        ``faults`` (default: 500, 503, 429, reset) with ``random.Random(seed)``; ``rate=0`` turns it off."""
        faults = faults or (
            Rule("status", status=500),
            Rule("status", status=503),
            Rule("status", status=429),
            Rule("reset"),
        )
        with self._lock:
            self._random = (random.Random(seed), rate, faults) if rate > 0 else None

    def clear(self) -> None:
        """Forget rules, chaos and counters (between tests sharing a proxy)."""
        with self._lock:
            self._rules.clear()
            self._random = None
            self.seen.clear()
            self.injected.clear()
            self.injected_at.clear()
            self.log.clear()

    # --- inspection ---------------------------------------------------------------------------------

    def exchanges(self, endpoint: str) -> list[Exchange]:
        with self._lock:
            return [e for e in self.log if e.endpoint == endpoint]

    # --- internals (called from handler threads) ----------------------------------------------------

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.discard(sock)

    def _take_rule(self, method: str, path: str) -> Rule | None:
        endpoint = endpoint_of(method, path)
        with self._lock:
            self.seen[endpoint] += 1
            self.seen["*"] += 1
            chosen: Rule | None = None
            for rule in self._rules:
                if not rule.exhausted and rule.matches(method, path):
                    rule.applied += 1
                    chosen = rule
                    break
            if chosen is None and self._random is not None:
                rng, rate, faults = self._random
                if rng.random() < rate:
                    chosen = rng.choice(faults)
            if chosen is not None:
                self.injected[chosen.kind] += 1
                self.injected["*"] += 1
                self.injected_at[(endpoint, chosen.kind)] += 1
            return chosen

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.log.append(exchange)

    def _forward(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request upstream on a fresh connection and return the whole response."""
        conn = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            out = {k: v for k, v in headers if k.lower() not in _HOP_BY_HOP and k.lower() != "host"}
            out["Host"] = f"{self._upstream[0]}:{self._upstream[1]}"
            out["Content-Length"] = str(len(body))
            conn.request(method, target, body=body, headers=out)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()
