"""Connector service throughput, ours versus upstream, against the same loopback BigQuery stand-in.

For each stand-in latency (0 ms and 100 ms per BigQuery call, token exchange included) one stand-in
(:mod:`benchmarks.auth_stand_in`) and both services run at once: ours (``.venv``) and upstream
(``.venv-peer``), both launched from ``flytekitplugins/bigquery/service.py`` on 127.0.0.1 and both
authenticating with the same generated service-account key (``GOOGLE_APPLICATION_CREDENTIALS``; see
:mod:`benchmarks.sa_service` for how ours is made to use it against a stand-in). For each concurrency C the
two sides take turns (the order alternates), each with the stand-in reset, and run closed-loop gRPC phases
(:func:`benchmarks.service_bench.run_phase`): a short warm-up of Creates, then

* ``create``: ``CreateTask`` for a new execution each time (one new job each);
* ``get``: ``GetTask`` cycling over the jobs just created (each must report SUCCEEDED with ``results``);
* ``mixed``: Creates and Gets alternating on every client, as propeller does (create, then poll).

A level is only reported if every answer was right and the stand-in's books balance: jobs inserted = jobs
stored = Creates answered, no duplicate inserts. Per phase: req/s, p50/p99, the service's CPU seconds and
CPU ms per request, its peak RSS, and the stand-in calls (token exchanges included) per request.

    python -m benchmarks.service_compare [--latency 0 0.1] [--concurrency 1 16 64] [--duration 4] [--shape upstream]
        [--server {launcher,pyflyte}]

``--server pyflyte`` measures the deployed path instead: each side's own ``pyflyte serve connector`` (see
:func:`benchmarks.peer.service_for`; ours still with the key, through ``--modules benchmarks.sa_pyflyte``).
pyflyte binds every interface and starts Prometheus on 0.0.0.0, so this command then re-execs itself under
``unshare -n`` with only ``lo`` up (it needs root or user namespaces) and refuses to run pyflyte anywhere else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import grpc
from flyteidl.admin import agent_pb2
from flyteidl.service.agent_pb2_grpc import AsyncAgentServiceStub

from benchmarks.auth_stand_in import AuthStandInProcess, write_service_account_key
from benchmarks.peer import OURS, SERVERS, SIDES, UPSTREAM, only_loopback, service_for
from benchmarks.service_bench import (
    CATEGORY,
    GRPC_OPTIONS,
    PROJECT,
    SHAPES,
    Phase,
    _base_request,
    _check_create,
    _check_get,
    run_phase,
)

PHASES = ("create", "get", "mixed")
DEFAULT_LATENCIES = (0.0, 0.1)
DEFAULT_CONCURRENCY = (1, 16, 64)


#: Set in the re-exec'd process, so that a namespace which still is not private is refused, not re-entered.
_NETNS_ENV = "BENCH_SERVICE_COMPARE_NETNS"


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (for servers that cannot take port 0)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _reexec_in_private_netns(argv: list[str]) -> None:
    """Become ``unshare -n sh -c 'ip link set lo up && exec python -m benchmarks.service_compare ARGV'``."""
    if os.environ.get(_NETNS_ENV):
        raise SystemExit("--server pyflyte: still not in a network namespace with loopback only; refusing")
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if not unshare or not ip:
        raise SystemExit("--server pyflyte needs unshare(1) and ip(8) to run in a private network namespace")
    os.environ[_NETNS_ENV] = "1"
    script = f'{ip} link set lo up && exec "$@"'
    command = [unshare, "-n", "--", "sh", "-c", script, "sh", sys.executable, "-m", "benchmarks.service_compare"]
    sys.stdout.flush()
    os.execv(unshare, command + argv)


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def service_pairs(service: dict[str, Any]) -> list[dict[str, Any]]:
    """Ours beside upstream for every (latency, C, phase) of a :func:`run` result, with the two ratios."""
    by = {(p["side"], p["latency_s"], p["concurrency"], p["name"]): p for p in service["phases"]}
    pairs = []
    for (side, latency, concurrency, name), ours in by.items():
        theirs = by.get((UPSTREAM, latency, concurrency, name))
        if side != OURS or theirs is None:
            continue
        pairs.append(
            {
                "latency_ms": round(latency * 1000),
                "concurrency": concurrency,
                "phase": name,
                "ours": ours,
                "upstream": theirs,
                "throughput_ratio": ratio(ours["req_per_s"], theirs["req_per_s"]),
                "cpu_ratio": ratio(ours["service_cpu_ms_per_req"], theirs["service_cpu_ms_per_req"]),
            }
        )
    return sorted(pairs, key=lambda p: (p["latency_ms"], p["concurrency"], p["phase"]))


def _diff(after: dict[str, Any], before: dict[str, Any]) -> dict[str, int]:
    keys = set(after["requests"]) | set(before["requests"])
    return {k: after["requests"].get(k, 0) - before["requests"].get(k, 0) for k in sorted(keys)}


async def _level(
    side: str, service: Any, stand_in: AuthStandInProcess, base: Any, concurrency: int, duration: float, warmup: float
) -> tuple[list[dict[str, Any]], list[str]]:
    """Warm-up, create, get and mixed phases of one side at one concurrency; returns rows and problems."""
    run_id = uuid.uuid4().hex[:8]
    counter = iter(range(10**9))

    def make_create() -> agent_pb2.CreateTaskRequest:
        request = agent_pb2.CreateTaskRequest()
        request.CopyFrom(base)
        execution = request.task_execution_metadata.task_execution_id.node_execution_id.execution_id
        execution.name = f"cmp{run_id}{side[0]}c{concurrency}n{next(counter)}"
        return request

    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    creates_answered = 0
    pid = service.pid
    stand_pid = stand_in.proc.pid
    async with grpc.aio.insecure_channel(service.target, options=GRPC_OPTIONS) as channel:
        stub = AsyncAgentServiceStub(channel)

        async def mixed_call(request: Any, timeout: float) -> Any:
            if isinstance(request, agent_pb2.CreateTaskRequest):
                return await stub.CreateTask(request, timeout=timeout)
            return await stub.GetTask(request, timeout=timeout)

        def mixed_check(response: Any) -> str | None:
            if isinstance(response, agent_pb2.CreateTaskResponse):
                return _check_create(response)
            return _check_get(response)

        async def phase(name: str, *args: Any) -> tuple[Phase, list[Any]]:
            before = stand_in.stats()
            result, answers = await run_phase(name, concurrency, *args, pid, stand_pid)
            calls = _diff(stand_in.stats(), before)
            if result.errors:
                problems.append(f"{side} {name} C={concurrency}: {result.errors} bad answers: {result.first_error}")
            if name != "warmup":
                row = result.row()
                row.update(side=side, stand_in_calls=calls)
                row["stand_in_calls_per_req"] = {k: v / max(result.requests, 1) for k, v in calls.items()}
                rows.append(row)
            return result, answers

        if warmup > 0:
            _, answers = await phase("warmup", warmup, stub.CreateTask, make_create, _check_create)
            creates_answered += len(answers)
        _, created = await phase("create", duration, stub.CreateTask, make_create, _check_create)
        creates_answered += len(created)
        metas = [r.resource_meta for r in created]
        if not metas:
            return rows, [*problems, f"{side} C={concurrency}: no Create succeeded"]
        cycle = iter(range(10**9))

        def make_get() -> agent_pb2.GetTaskRequest:
            return agent_pb2.GetTaskRequest(task_category=CATEGORY, resource_meta=metas[next(cycle) % len(metas)])

        await phase("get", duration, stub.GetTask, make_get, _check_get)
        turn = iter(range(10**9))

        def make_mixed() -> Any:
            return make_create() if next(turn) % 2 == 0 else make_get()

        _, answers = await phase("mixed", duration, mixed_call, make_mixed, mixed_check)
        creates_answered += sum(isinstance(a, agent_pb2.CreateTaskResponse) for a in answers)

    stats = stand_in.stats()
    inserts = stats["requests"].get("jobs.insert", 0)
    if stats["conflicts"] or stats["jobs"] != inserts or inserts != creates_answered:
        problems.append(
            f"{side} C={concurrency}: {creates_answered} Creates answered, {inserts} jobs.insert, "
            f"{stats['jobs']} jobs stored, {stats['conflicts']} duplicate inserts"
        )
    return rows, problems


def run(
    latencies: list[float],
    concurrencies: list[int],
    duration: float,
    warmup: float,
    log: Any = print,
    shape: str = "ours",
    server: str = "launcher",
) -> dict[str, Any]:
    """All levels at all latencies; returns ``{"phases": [...], "problems": [...], ...}``. ``shape`` picks the
    template both sides get (:data:`benchmarks.service_bench.SHAPES`; ``upstream``: the maintainers' request).
    ``server``: :data:`benchmarks.peer.SERVERS` (``pyflyte`` only in a loopback-only network namespace)."""
    if server not in SERVERS:
        raise ValueError(f"server must be one of {SERVERS}")
    if server == "pyflyte" and not only_loopback():
        raise RuntimeError("--server pyflyte runs only in a network namespace with loopback alone (unshare -n)")
    base = _base_request(shape)
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for latency in latencies:
        stand_in = AuthStandInProcess(latency)
        services: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="bq-bench-key-") as tmp:
            key = write_service_account_key(Path(tmp), stand_in.url + "/token", PROJECT)
            env = {
                "BIGQUERY_EMULATOR_HOST": stand_in.url,
                "GOOGLE_APPLICATION_CREDENTIALS": str(key),
                "GOOGLE_CLOUD_PROJECT": PROJECT,
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
            try:
                ports = _free_ports(2 * len(SIDES)) if server == "pyflyte" else []
                for i, side in enumerate(SIDES):
                    side_ports = (ports[2 * i], ports[2 * i + 1]) if ports else None
                    services[side] = service_for(side, env, "key", server, side_ports).start()
                for i, concurrency in enumerate(concurrencies):
                    order = SIDES if i % 2 == 0 else SIDES[::-1]
                    for side in order:
                        stand_in.reset()
                        level_rows, level_problems = asyncio.run(
                            _level(side, services[side], stand_in, base, concurrency, duration, warmup)
                        )
                        for row in level_rows:
                            row["latency_s"] = latency
                        rows.extend(level_rows)
                        problems.extend(level_problems)
                        for row in level_rows:
                            log(
                                f"  service {side:<8} latency {latency * 1000:>3.0f} ms C={concurrency:<3} "
                                f"{row['name']:<6} {row['req_per_s']:>7.1f} req/s p50 {row['p50_ms']:>7.1f} ms "
                                f"p99 {row['p99_ms']:>7.1f} ms CPU {row['service_cpu_ms_per_req']:>6.2f} ms/req "
                                f"RSS {row['service_peak_rss_mb']:>5.0f} MB"
                            )
            finally:
                for service in services.values():
                    service.cleanup()
                stand_in.stop()
    launched = (
        "both services from flytekitplugins/bigquery/service.py on 127.0.0.1"
        if server == "launcher"
        else "each side's own `pyflyte serve connector` (its venv's), in a network namespace with only lo"
    )
    return {
        "server": server,
        "setup": f"{launched}, closed-loop grpc.aio clients, "
        "BigQuery replaced by benchmarks/auth_stand_in.py (BIGQUERY_EMULATOR_HOST) with the stated latency per call "
        "(token exchange included); both sides authenticate with one generated service-account key "
        "(GOOGLE_APPLICATION_CREDENTIALS, token_uri = the stand-in's /token)",
        "credentials": {
            OURS: "service-account key via ADC, loaded once (benchmarks/sa_service.py: ADC although "
            "BIGQUERY_EMULATOR_HOST is set"
            + ("; under pyflyte through --modules benchmarks.sa_pyflyte)" if server == "pyflyte" else ")"),
            UPSTREAM: "service-account key via ADC; a new bigquery.Client (and a token exchange) per call",
        },
        "duration_s": duration,
        "warmup_s": warmup,
        "shape": shape,
        "phases": rows,
        "problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.service_compare", description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, nargs="+", default=list(DEFAULT_LATENCIES))
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(DEFAULT_CONCURRENCY))
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of Creates before measuring")
    parser.add_argument("--shape", choices=SHAPES, default="ours", help="the template sent (see service_bench)")
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default="launcher",
        help="how both services are started: our launcher, or each side's `pyflyte serve connector` "
        "(re-runs this command under `unshare -n`)",
    )
    parser.add_argument("--output", type=Path, default=None, help="write the JSON here")
    args = parser.parse_args(argv)
    if args.server == "pyflyte" and not only_loopback():  # same arguments and working directory, private network
        _reexec_in_private_netns(sys.argv[1:] if argv is None else list(argv))
    result = run(args.latency, args.concurrency, args.duration, args.warmup, shape=args.shape, server=args.server)
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    for problem in result["problems"]:
        print("PROBLEM:", problem)
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
