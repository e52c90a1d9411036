"""The fault-injecting proxy itself: forwarding, each action, rule matching and counts, seeded chaos.

Against a tiny stdlib upstream that echoes what it received (fast, no emulator). What the real
google-cloud-bigquery client sees through the proxy to the emulator is in tests/test_faultproxy.py.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flyte_bigquery_core.testing.faultproxy import FaultProxy, Rule, endpoint_of

_JOBS = "/bigquery/v2/projects/p/jobs"


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with JSON describing it; counts requests in ``server.hits``."""

    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _echo(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.hits.append((self.command, self.path))
        payload = json.dumps({"method": self.command, "path": self.path, "body": body.decode()}).encode() * 4
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", "echo")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _echo


@pytest.fixture
def upstream() -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    server.hits = []  # type: ignore[attr-defined]
    server.lock = threading.Lock()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def proxy(upstream: Any) -> Iterator[FaultProxy]:
    with FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}") as p:
        yield p


def _call(proxy: FaultProxy, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_forwards_requests_unchanged_and_counts_them(proxy: FaultProxy, upstream: Any) -> None:
    status, headers, body = _call(proxy, "POST", _JOBS + "?prettyPrint=false", b'{"a": 1}')
    assert status == 200 and headers["X-Upstream"] == "echo"
    echoed = json.loads(body[: len(body) // 4])
    assert echoed == {"method": "POST", "path": _JOBS + "?prettyPrint=false", "body": '{"a": 1}'}
    _call(proxy, "GET", _JOBS + "/j1?location=US")
    assert proxy.seen == {"jobs.insert": 1, "jobs.get": 1, "*": 2}
    assert proxy.injected == {}
    assert [(e.endpoint, e.fault, e.status, e.upstream_status) for e in proxy.log] == [
        ("jobs.insert", None, 200, 200),
        ("jobs.get", None, 200, 200),
    ]


def test_keeps_connections_alive(proxy: FaultProxy) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        for _ in range(3):
            conn.request("GET", _JOBS + "/j1")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
    finally:
        conn.close()
    assert proxy.seen["jobs.get"] == 3


def test_status_rule_applies_to_the_next_n_matches_only(proxy: FaultProxy, upstream: Any) -> None:
    rule = proxy.add_rule("status", "POST", r"/jobs$", count=2, status=503)
    answers = [_call(proxy, "POST", _JOBS) for _ in range(3)]
    assert [a[0] for a in answers] == [503, 503, 200]
    error = json.loads(answers[0][2])["error"]
    assert error["code"] == 503 and error["errors"][0]["reason"] == "backendError"
    assert rule.applied == 2 and rule.exhausted
    assert proxy.injected == {"status:503": 2, "*": 2}
    assert len(upstream.hits) == 1  # faults answered by the proxy never reach upstream


def test_429_carries_retry_after(proxy: FaultProxy) -> None:
    proxy.add_rule("status", status=429, retry_after=2)
    status, headers, body = _call(proxy, "GET", _JOBS + "/j1")
    assert status == 429 and headers["Retry-After"] == "2"
    assert json.loads(body)["error"]["errors"][0]["reason"] == "rateLimitExceeded"


def test_rules_match_on_method_and_path(proxy: FaultProxy) -> None:
    proxy.add_rule("status", "POST", r"/jobs$", count=None, status=500)
    proxy.add_rule("status", "GET", r"/queries/", count=None, status=502)
    assert _call(proxy, "GET", _JOBS + "/j1")[0] == 200  # GET jobs.get: neither rule
    assert _call(proxy, "POST", _JOBS + "/j1/cancel")[0] == 200  # POST, but not .../jobs
    assert _call(proxy, "POST", _JOBS + "?prettyPrint=false")[0] == 500  # query string is not part of the path
    assert _call(proxy, "GET", "/bigquery/v2/projects/p/queries/j1")[0] == 502
    assert _call(proxy, "POST", _JOBS)[0] == 500  # count=None: every time


def test_earlier_rules_win(proxy: FaultProxy) -> None:
    proxy.add_rule("status", path="jobs", status=500)
    proxy.add_rule("status", path="jobs", status=503)
    assert [_call(proxy, "GET", _JOBS)[0] for _ in range(3)] == [500, 503, 200]


def test_reset_closes_the_connection_before_forwarding(proxy: FaultProxy, upstream: Any) -> None:
    proxy.add_rule("reset", "POST")
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        _call(proxy, "POST", _JOBS)
    assert upstream.hits == []
    assert proxy.log[0].status is None and proxy.log[0].upstream_status is None
    assert _call(proxy, "POST", _JOBS)[0] == 200


def test_drop_forwards_then_loses_the_response(proxy: FaultProxy, upstream: Any) -> None:
    proxy.add_rule("drop", "POST", r"/jobs$")
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        _call(proxy, "POST", _JOBS, b"{}")
    assert upstream.hits == [("POST", _JOBS)]  # upstream did the work
    assert (proxy.log[0].upstream_status, proxy.log[0].status) == (200, None)
    assert proxy.injected["drop"] == 1


def test_delay_before_or_after_forwarding(proxy: FaultProxy, upstream: Any) -> None:
    proxy.add_rule("delay", seconds=0.3)
    started = time.monotonic()
    assert _call(proxy, "GET", _JOBS)[0] == 200
    assert time.monotonic() - started >= 0.3

    proxy.add_rule("delay", seconds=0.4, after=True)
    result: list[int] = []
    caller = threading.Thread(target=lambda: result.append(_call(proxy, "GET", _JOBS + "/late")[0]))
    caller.start()
    time.sleep(0.2)
    assert ("GET", _JOBS + "/late") in upstream.hits and not result  # forwarded, answer still held back
    caller.join(5)
    assert result == [200]


def test_truncate_sends_part_of_the_body(proxy: FaultProxy) -> None:
    proxy.add_rule("truncate", keep=10)
    with pytest.raises(http.client.IncompleteRead) as info:
        _call(proxy, "GET", _JOBS)
    assert len(info.value.partial) == 10


def test_chaos_is_deterministic_for_a_seed(upstream: Any) -> None:
    def run(seed: int) -> list[str | None]:
        with FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}") as p:
            p.chaos(0.5, seed, faults=(Rule("status", status=500), Rule("status", status=503)))
            for _ in range(20):
                _call(p, "GET", _JOBS)
            return [e.fault for e in p.log]

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert 3 <= sum(f is not None for f in first) <= 17


def test_chaos_off_and_clear(proxy: FaultProxy, upstream: Any) -> None:
    proxy.chaos(1.0, 1)  # rate 1: every request gets one of the default faults (500, 503, 429, reset)
    got: Counter[str] = Counter()
    for _ in range(12):
        try:
            got[f"status:{_call(proxy, 'GET', _JOBS)[0]}"] += 1
        except (ConnectionError, http.client.HTTPException):
            got["reset"] += 1
    assert set(got) <= {"status:500", "status:503", "status:429", "reset"} and len(got) > 1, got
    assert dict(got) == {kind: n for kind, n in proxy.injected.items() if kind != "*"}
    assert proxy.injected["*"] == 12
    assert upstream.hits == []  # every one of these faults answers without forwarding
    proxy.clear()
    assert proxy.seen == {} and proxy.log == []
    assert all(_call(proxy, "GET", _JOBS)[0] == 200 for _ in range(5))


def test_unknown_action_is_refused(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="unknown action"):
        proxy.add_rule("explode")


def test_listens_on_loopback(proxy: FaultProxy) -> None:
    assert proxy.url == f"http://127.0.0.1:{proxy.port}"


@pytest.mark.parametrize(
    ("method", "path", "endpoint"),
    [
        ("POST", "/bigquery/v2/projects/p/jobs", "jobs.insert"),
        ("GET", "/bigquery/v2/projects/p/jobs/j", "jobs.get"),
        ("POST", "/bigquery/v2/projects/p/jobs/j/cancel", "jobs.cancel"),
        ("GET", "/bigquery/v2/projects/p/queries/j", "jobs.getQueryResults"),
        ("GET", "/bigquery/v2/projects/p/datasets/d/tables/t", "tables.get"),
        ("GET", "/bigquery/v2/projects/p/datasets/d/tables/t/data", "tabledata.list"),
        ("GET", "/other", "GET /other"),
    ],
)
def test_endpoint_names(method: str, path: str, endpoint: str) -> None:
    assert endpoint_of(method, path) == endpoint
