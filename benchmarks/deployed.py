"""The deployed path: upstream's request shape at 100 ms and C=64, ours vs upstream, under both servers, in one run.

Flyte deployments serve connectors with ``pyflyte serve connector``; our image runs our launcher. Both count,
so this section (``make bench``'s ``deployed``) measures, one right after the other:

* ``launcher``: both sides served by ``flytekitplugins/bigquery/service.py`` (:func:`benchmarks.service_compare.run`
  in this process);
* ``pyflyte``: each side's own ``pyflyte serve connector``, in a child ``python -m benchmarks.service_compare
  --server pyflyte``, which re-runs itself in a network namespace with loopback alone (pyflyte binds every
  interface), and hands back its JSON.

The request is the one the maintainers send (:data:`benchmarks.service_bench.SHAPES` ``upstream``): upstream's
serialized template (``custom`` = ProjectID/Location/Domain, an output ``results``, no ``InputTypes``), a new
execution for every create, and gets of finished jobs with an output (``jobs.get`` and ``tables.get``).

Targets, per server: create and get each at least :data:`MIN_RATIO` times upstream's req/s, with our p99 at
most :data:`MAX_P99_MS`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import service_compare
from benchmarks.service_bench import ROOT

__all__ = ["MAX_P99_MS", "MIN_RATIO", "SERVERS", "run", "table", "targets"]

LATENCY_S = 0.1
CONCURRENCY = 64
SHAPE = "upstream"
SERVERS = ("launcher", "pyflyte")
#: The phases the targets hold (``mixed`` is reported too).
TARGET_PHASES = ("create", "get")
MIN_RATIO = 10.0
MAX_P99_MS = 300.0


def _pyflyte(duration: float, warmup: float, log: Any) -> dict[str, Any]:
    """``service_compare --server pyflyte`` in a child (it must re-exec itself under ``unshare -n``)."""
    with tempfile.TemporaryDirectory(prefix="bq-bench-deployed-") as tmp:
        output = Path(tmp) / "pyflyte.json"
        command = [sys.executable, "-m", "benchmarks.service_compare", "--server", "pyflyte", "--shape", SHAPE]
        command += ["--latency", str(LATENCY_S), "--concurrency", str(CONCURRENCY)]
        command += ["--duration", str(duration), "--warmup", str(warmup), "--output", str(output)]
        child = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        for line in child.stdout.splitlines():
            log(line)
        if not output.exists():
            tail = (child.stderr or child.stdout).strip().splitlines()[-5:]
            return {"phases": [], "problems": [f"pyflyte run failed (exit {child.returncode}): {' | '.join(tail)}"]}
        result: dict[str, Any] = json.loads(output.read_text())
        return result


def run(duration: float, warmup: float, log: Any = print) -> dict[str, Any]:
    """``{"launcher": <service_compare result>, "pyflyte": <the same>, "problems": [...]}``."""
    report: dict[str, Any] = {
        "launcher": service_compare.run([LATENCY_S], [CONCURRENCY], duration, warmup, log, SHAPE, "launcher"),
        "pyflyte": _pyflyte(duration, warmup, log),
    }
    report["problems"] = [f"{server}: {p}" for server in SERVERS for p in report[server].get("problems", [])]
    return report


def _pairs(report: dict[str, Any], server: str) -> list[dict[str, Any]]:
    return service_compare.service_pairs(report[server]) if report[server].get("phases") else []


def table(report: dict[str, Any]) -> list[list[str]]:
    """Rows: server, phase, ours req/s, upstream req/s, ratio, ours p50/p99 ms, ours CPU ms/req."""
    rows = []
    for server in SERVERS:
        for p in _pairs(report, server):
            o, u = p["ours"], p["upstream"]
            rows.append(
                [
                    server,
                    p["phase"],
                    f"{o['req_per_s']:.1f}",
                    f"{u['req_per_s']:.1f}",
                    f"{p['throughput_ratio']:.1f}x",
                    f"{o['p50_ms']:.0f}/{o['p99_ms']:.0f}",
                    f"{o['service_cpu_ms_per_req']:.2f}",
                ]
            )
    return rows


TABLE_HEADER = ["server", "phase", "ours req/s", "upstream req/s", "ratio", "ours p50/p99 ms", "ours CPU ms/req"]


def targets(report: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    """``(target, met, detail)`` per server and phase; ``met`` is None when that server could not be measured."""
    out: list[tuple[str, bool | None, str]] = []
    for server in SERVERS:
        pairs = {p["phase"]: p for p in _pairs(report, server)}
        for phase in TARGET_PHASES:
            name = (
                f"deployed ({server}), upstream's request, 100 ms, C=64, {phase}: "
                f">= {MIN_RATIO:.0f}x upstream, p99 <= {MAX_P99_MS:.0f} ms"
            )
            p = pairs.get(phase)
            if p is None:
                out.append((name, None, "not measured (see problems)"))
                continue
            met = p["throughput_ratio"] >= MIN_RATIO and p["ours"]["p99_ms"] <= MAX_P99_MS
            detail = f"{p['throughput_ratio']:.1f}x ({p['ours']['req_per_s']:.0f} vs {p['upstream']['req_per_s']:.1f} "
            detail += f"req/s), p99 {p['ours']['p99_ms']:.0f} ms"
            out.append((name, met, detail))
    return out
