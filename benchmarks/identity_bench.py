"""Throughput of the connector service with and without impersonation, in one run.

Setup, all on loopback: :mod:`benchmarks.stand_in` plays BigQuery (100 ms per call by default), the loopback
``generateAccessToken`` stand-in (:mod:`flyte_bigquery_core.testing.iam_stand_in`, same latency) plays IAM, and
one service (``python -m flytekitplugins.bigquery.service``) runs with an allow-list that lets
``flytesnacks/development`` run as the benchmark's principal. The same closed-loop phases as
:mod:`benchmarks.service_bench` (create, get, poll) run with the serialized task as is ("direct") and with
``ImpersonateServiceAccount`` set ("impersonated"), alternating rounds so drift on a shared machine hits both
alike. Reported: requests/s per phase and mode, the impersonated/direct ratio (target: within 10 %), the token
exchanges IAM saw (one per principal is the promise, not one per call) and every correctness problem (a
wrong answer, a job count that is not the creates). JSON to ``benchmarks/results/identity.json``.

    python -m benchmarks.identity_bench [--duration 8] [--rounds 2] [--concurrency 16] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from pathlib import Path
from typing import Any

from flyte_bigquery_core.testing.iam_stand_in import IamStandIn
from google.protobuf import struct_pb2

from benchmarks.service_bench import PROJECT, Phase, StandInProcess, _base_request, bench_level, machine, write_report
from flytekitplugins.bigquery.testing.service_process import ServiceProcess

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "identity.json"
PRINCIPAL = "bench-etl@bench-project.iam.gserviceaccount.com"
MODES = ("direct", "impersonated")


def _request(mode: str) -> Any:
    request = _base_request()
    if mode == "impersonated":
        request.template.custom.fields["ImpersonateServiceAccount"].CopyFrom(struct_pb2.Value(string_value=PRINCIPAL))
    return request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.identity_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per phase (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of Creates before each round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per mode (default 2)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.1, help="stand-ins' latency per call (s)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    stand_in = StandInProcess(args.latency)
    iam = IamStandIn(latency=args.latency).start()
    rules = {"rules": [{"name": "bench", "project": "flytesnacks", "domain": "development", "principals": [PRINCIPAL]}]}
    env = {
        "BIGQUERY_EMULATOR_HOST": stand_in.url,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "FLYTEKITPLUGINS_BIGQUERY_IMPERSONATION_RULES": json.dumps(rules),
        "FLYTEKITPLUGINS_BIGQUERY_IAM_ENDPOINT": iam.url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    service = ServiceProcess(env)
    phases: dict[str, list[Phase]] = {mode: [] for mode in MODES}
    problems: list[str] = []
    try:
        service.start()
        for round_number in range(args.rounds):
            for mode in MODES if round_number % 2 == 0 else MODES[::-1]:
                stand_in.reset()
                level = asyncio.run(
                    bench_level(
                        service.target,
                        args.concurrency,
                        args.duration,
                        args.warmup,
                        service.pid,
                        stand_in.proc.pid,
                        base=_request(mode),
                    )
                )
                stats = stand_in.stats()
                if stats["jobs"] != stats["requests"].get("jobs.insert", 0) or stats["conflicts"]:
                    problems.append(f"{mode} round {round_number}: {stats['jobs']} jobs for the inserts")
                for phase in level:
                    if phase.errors:
                        problems.append(f"{mode} {phase.name}: {phase.errors} bad answers, first: {phase.first_error}")
                    print(f"round {round_number} {mode:<12} {phase.name:<6} {phase.req_per_s:8.1f} req/s", flush=True)
                phases[mode].extend(level)
    finally:
        service.cleanup()
        stand_in.stop()
        iam.stop()

    summary: dict[str, Any] = {}
    for name in ("create", "get", "poll"):
        rates = {mode: statistics.mean(p.req_per_s for p in phases[mode] if p.name == name) for mode in MODES}
        summary[name] = {**{f"{m}_req_per_s": round(r, 1) for m, r in rates.items()}}
        summary[name]["ratio"] = round(rates["impersonated"] / rates["direct"], 3) if rates["direct"] else None
        print(
            f"{name:<6} direct {rates['direct']:8.1f} req/s  impersonated {rates['impersonated']:8.1f} req/s  "
            f"ratio {summary[name]['ratio']}"
        )
    exchanges = len(iam.exchanges_for(PRINCIPAL))
    print(f"token exchanges for {PRINCIPAL}: {exchanges}")
    if exchanges != 1:
        problems.append(f"{exchanges} token exchanges for one principal; expected 1 (tokens are cached)")
    report = {
        "benchmark": "connector service with and without impersonation, closed loop",
        "latency_s": args.latency,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "machine": machine(),
        "summary": summary,
        "token_exchanges": exchanges,
        "phases": {mode: [p.row() for p in phases[mode]] for mode in MODES},
        "problems": problems,
    }
    return write_report(args.output, report, problems)


if __name__ == "__main__":
    raise SystemExit(main())
