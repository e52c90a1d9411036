"""The fault proxy: :class:`FaultProxy` runs the server, holds the rules, chaos and counters, and forwards."""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import threading
from collections import Counter
from urllib.parse import urlsplit

from flyte_bigquery_core.testing._bigquery_endpoints import endpoint_of
from flyte_bigquery_core.testing._exchange import Exchange
from flyte_bigquery_core.testing._fault_rules import Rule
from flyte_bigquery_core.testing._lifecycle import Harness
from flyte_bigquery_core.testing._loopback_server import serve, shut
from flyte_bigquery_core.testing._proxy_handler import _HOP_BY_HOP, _Handler, _Server

__all__ = ["FaultProxy"]


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
        self._thread = serve(server, "faultproxy")
        return self

    def stop(self) -> None:
        """Stop accepting, abort open connections, and join the accept loop. Idempotent."""
        server, self._server = self._server, None
        shut(server, self._thread, self._abort_connections)

    def _abort_connections(self) -> None:
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

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
