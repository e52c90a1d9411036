"""Side-by-side benchmarks: our plugin versus the upstream ``flytekitplugins-bigquery==1.16.31`` (``make bench``).

These machines are noisy, so every figure is compared with its counterpart measured in the same run, close
in time (the two sides alternate wherever they can), and the result is a ratio. Sections:

1. ``service``  connector gRPC service throughput and latency (:mod:`benchmarks.service_compare`);
   ``deployed`` the same with upstream's request shape at 100 ms, C=64, under our launcher and under
   ``pyflyte serve connector`` (:mod:`benchmarks.deployed`);
2. ``percall``  CPU per CreateTask / GetTask in the connector process (:mod:`benchmarks.percall_bench`);
3. ``read``     ``bq://`` into pandas from the local BigQuery, ours vs flytekit's built-in handler
   (:mod:`benchmarks.read_bench`'s tables, child processes and checks);
4. ``import``   ``import flytekitplugins.bigquery`` in each venv (:mod:`benchmarks.import_bench`);
5. ``e2e``      ``pyflyte run examples/demo_workflow.py wf`` against the local BigQuery (:mod:`benchmarks.e2e_bench`).

Every section checks its answers (row counts, job counts, phases) before it reports a time; a failed check
makes the run exit 1. Prints the tables and the targets, writes ``benchmarks/results/compare.json`` and
draws ``benchmarks/results/compare.png`` (:mod:`benchmarks.chart`).

    python -m benchmarks.compare [--only service percall read import e2e] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import deployed
from benchmarks.peer import NO_METADATA_SERVER, OURS, SIDES, UPSTREAM, UPSTREAM_VERSION, require_peer, versions
from benchmarks.service_bench import ROOT, exit_status, machine_busy_seconds
from benchmarks.service_compare import ratio, service_pairs

RESULTS = ROOT / "benchmarks" / "results"
SECTIONS = ("service", "deployed", "percall", "read", "import", "e2e")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- sections ---------------------------------------------------------------------------------------------


def read_section(rows: list[int], repeats: int, log: Any = _log) -> dict[str, Any]:
    """Item 3 with read_bench's own pieces: same tables, same child processes, same row-count checks."""
    from benchmarks import read_bench
    from flytekitplugins.bigquery.testing import Emulator

    results = []
    with Emulator() as emulator:
        uris = read_bench._create_tables(emulator, rows)
        env = {**os.environ, **emulator.env(), **NO_METADATA_SERVER, "PYTHONPATH": str(ROOT)}
        for n, uri in uris.items():
            read_bench._run_child(env, "ours", "pandas", uri)  # warm the server's caches for this table
            for measured in read_bench._measure_pair(env, n, uri, "pandas", repeats):  # exits on a wrong count
                results.append(measured)
                log(f"  read {n:>9,} rows pandas {measured.impl:<8}: {measured.runs_seconds} s")
    from dataclasses import asdict

    return {
        "setup": "benchmarks/read_bench.py: 10-column tables in a fresh local BigQuery, one fresh process per read, "
        "the two implementations alternating, median of repeats; time is the decode call, RSS the child's peak",
        "repeats": repeats,
        "measurements": [asdict(m) for m in results],
        "ratios": read_bench._ratios(results),
    }


# --- summary ----------------------------------------------------------------------------------------------


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the figures that decide it."""
    out: list[dict[str, Any]] = []

    def add(name: str, met: bool | None, detail: str) -> None:
        out.append({"target": name, "met": met, "detail": detail})

    service = report.get("service")
    if service:
        pairs = service_pairs(service)
        slow = [p for p in pairs if p["latency_ms"] == 100 and p["concurrency"] == 64]
        if slow:
            worst = min(slow, key=lambda p: p["throughput_ratio"])
            add(
                "service, 100 ms latency, C=64: >= 10x upstream req/s",
                all(p["throughput_ratio"] >= 10 for p in slow),
                ", ".join(f"{p['phase']} {p['throughput_ratio']:.1f}x" for p in slow) + f" (worst: {worst['phase']})",
            )
            add(
                "service, 100 ms latency, C=64: our p99 <= 500 ms",
                all(p["ours"]["p99_ms"] <= 500 for p in slow),
                ", ".join(f"{p['phase']} {p['ours']['p99_ms']:.0f} ms" for p in slow),
            )
        fast = [p for p in pairs if p["latency_ms"] == 0]
        if fast:
            low = min(fast, key=lambda p: p["throughput_ratio"])
            add(
                "service, 0 ms latency: req/s >= upstream (every C and phase)",
                all(p["throughput_ratio"] >= 1 for p in fast),
                f"lowest {low['throughput_ratio']:.1f}x ({low['phase']} C={low['concurrency']})",
            )
    for name, met, detail in deployed.targets(report["deployed"]) if report.get("deployed") else []:
        add(name, met, detail)
    percall = report.get("percall")
    if percall:
        rows = {(r["side"], r["credentials"]): r for r in percall["results"]}
        ours, theirs = rows.get((OURS, "key")), rows.get((UPSTREAM, "key"))
        if ours and theirs:
            ratios = {k: ratio(ours[k]["cpu_ms_per_call"], theirs[k]["cpu_ms_per_call"]) for k in ("create", "get")}
            add(
                "per call CPU (service-account key): <= 1/10 of upstream",
                all(r <= 0.1 for r in ratios.values()),
                ", ".join(f"{k} 1/{1 / r:.0f}" for k, r in ratios.items()),
            )
    read = report.get("read")
    if read:
        top = max(read["ratios"], key=lambda r: r["rows"])
        add(
            f"read {top['rows']:,} rows into pandas: >= 3x faster than flytekit's handler",
            top["speedup"] >= 3,
            f"{top['speedup']:.2f}x",
        )
        add(
            f"read {top['rows']:,} rows into pandas: <= 0.5x flytekit's peak RSS",
            top["peak_rss_ratio"] <= 0.5,
            f"{top['peak_rss_ratio']:.2f}x (growth during the read: {top['read_rss_ratio']:.2f}x)",
        )
    imports = report.get("import")
    if imports:
        rows_i = {r["variant"]: r for r in imports["results"]}
        ours_i, like = rows_i.get("ours"), rows_i.get("upstream")
        bare, lean = rows_i.get("upstream-bare"), rows_i.get("ours-no-polars")
        if ours_i and like:
            for key, unit, name, digits in (("wall_s", "s", "wall time", 2), ("peak_rss_mb", "MB", "peak RSS", 0)):
                others = [f"upstream-bare {ours_i[key] / bare[key]:.2f}x"] if bare else []
                if lean:
                    others.append(
                        f"ours without polars {lean[key]:.{digits}f} {unit} = {lean[key] / like[key]:.2f}x upstream"
                    )
                add(
                    f"import: {name} <= upstream",
                    ours_i[key] <= like[key],
                    f"{ours_i[key]:.{digits}f} {unit} vs {like[key]:.{digits}f} {unit} "
                    f"({ours_i[key] / like[key]:.2f}x; " + "; ".join(others) + ")",
                )
    e2e = report.get("e2e")
    if e2e:
        ran = e2e[UPSTREAM].get("ran")
        add(
            "end to end: the demo workflow runs and returns the right rows",
            bool(e2e[OURS].get("rows_ok")),
            f"ours {e2e[OURS].get('wall_s', float('nan')):.1f} s; upstream "
            + ("ran" if ran else "could not run it (see the e2e table)"),
        )
    return out


def _fmt_table(header: list[str], rows: list[list[str]], left: tuple[int, ...] = ()) -> str:
    """Columns right-aligned except those in ``left`` (text); trailing spaces dropped."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def tables(report: dict[str, Any]) -> str:
    """All sections as text tables (also pasted into README's Performance section)."""
    parts = []
    service = report.get("service")
    if service:
        rows = []
        for p in service_pairs(service):
            o, u = p["ours"], p["upstream"]
            rows.append(
                [
                    f"{p['latency_ms']}",
                    f"{p['concurrency']}",
                    p["phase"],
                    f"{o['req_per_s']:.1f}",
                    f"{u['req_per_s']:.1f}",
                    f"{p['throughput_ratio']:.1f}x",
                    f"{o['p50_ms']:.0f}/{o['p99_ms']:.0f}",
                    f"{u['p50_ms']:.0f}/{u['p99_ms']:.0f}",
                    f"{o['service_cpu_ms_per_req']:.2f}",
                    f"{u['service_cpu_ms_per_req']:.2f}",
                    f"{o['service_peak_rss_mb']:.0f}",
                    f"{u['service_peak_rss_mb']:.0f}",
                ]
            )
        header = ["lat ms", "C", "phase", "ours req/s", "upstream req/s", "ratio", "ours p50/p99 ms"]
        header += ["upstream p50/p99 ms", "ours CPU ms/req", "upstream CPU ms/req", "ours RSS MB", "upstream RSS MB"]
        parts.append(
            "1. Connector service (gRPC, closed loop, BigQuery stand-in)\n" + _fmt_table(header, rows, left=(2,))
        )
    if report.get("deployed"):
        parts.append(
            "1b. The deployed path: upstream's request, 100 ms, C=64, both servers\n"
            + _fmt_table(deployed.TABLE_HEADER, deployed.table(report["deployed"]), left=(0, 1))
        )
    percall = report.get("percall")
    if percall:
        by = {(r["side"], r["credentials"]): r for r in percall["results"]}
        up = by.get((UPSTREAM, "key"))
        rows = []
        for (side, credentials), r in by.items():
            c, g = r["create"]["cpu_ms_per_call"], r["get"]["cpu_ms_per_call"]
            rc = f"{c / up['create']['cpu_ms_per_call']:.3f}x" if up else "-"
            rg = f"{g / up['get']['cpu_ms_per_call']:.3f}x" if up else "-"
            tokens = r["create"]["stand_in_calls"].get("token", 0) + r["get"]["stand_in_calls"].get("token", 0)
            calls = r["create"]["calls"] + r["get"]["calls"]
            rows.append([side, credentials, f"{c:.2f}", rc, f"{g:.2f}", rg, f"{tokens}/{calls}"])
        header = ["side", "credentials", "CPU ms/create", "vs upstream", "CPU ms/get", "vs upstream", "token fetches"]
        parts.append(
            "2. CPU per call in the connector process (stand-in at 0 ms)\n" + _fmt_table(header, rows, left=(0, 1))
        )
    read = report.get("read")
    if read:
        by_m = {(m["rows"], m["impl"]): m for m in read["measurements"]}
        rows = []
        for r in read["ratios"]:
            o, f = by_m[(r["rows"], "ours")], by_m[(r["rows"], "flytekit")]
            rows.append(
                [
                    f"{r['rows']:,}",
                    f"{o['seconds']:.3f}",
                    f"{f['seconds']:.3f}",
                    f"{r['speedup']:.2f}x",
                    f"{o['peak_rss_mb']:.0f}",
                    f"{f['peak_rss_mb']:.0f}",
                    f"{r['peak_rss_ratio']:.2f}x",
                    f"{r['read_rss_ratio']:.2f}x",
                ]
            )
        header = ["rows", "ours s", "flytekit s", "speed-up", "ours MB", "flytekit MB", "RSS ratio", "read-RSS ratio"]
        parts.append("3. bq:// -> pandas, 10 columns, from the local BigQuery\n" + _fmt_table(header, rows))
    imports = report.get("import")
    if imports:
        by_v = {r["variant"]: r for r in imports["results"]}
        ours = by_v.get("ours")
        rows = [
            [
                r["variant"],
                f"{r['wall_s']:.3f}",
                f"{r['peak_rss_mb']:.0f}",
                f"{ours['wall_s'] / r['wall_s']:.2f}x" if ours else "-",
                f"{ours['peak_rss_mb'] / r['peak_rss_mb']:.2f}x" if ours else "-",
            ]
            for r in imports["results"]
        ]
        header = ["variant", "wall s", "peak RSS MB", "ours / this (time)", "ours / this (RSS)"]
        parts.append('4. python -c "import flytekitplugins.bigquery" (median)\n' + _fmt_table(header, rows, left=(0,)))
    e2e = report.get("e2e")
    if e2e:
        rows = [
            [
                "ours",
                "wf",
                f"{e2e[OURS]['wall_s']:.2f}",
                f"{e2e[OURS]['peak_rss_mb']:.0f}",
                "ok, rows correct" if e2e[OURS]["rows_ok"] else "WRONG",
            ]
        ]
        for a in e2e[UPSTREAM]["attempts"]:
            outcome = "ok, rows correct" if a["rows_ok"] else ("timed out" if a["timed_out"] else a["error"])
            rows.append(["upstream", a["attempt"], f"{a['wall_s']:.2f}", f"{a['peak_rss_mb']:.0f}", outcome[:90]])
        header = ["side", "run", "wall s", "peak RSS MB", "outcome"]
        table = _fmt_table(header, rows, left=(0, 1, 4))
        parts.append("5. pyflyte run examples/demo_workflow.py against the local BigQuery\n" + table)
    return "\n\n".join(parts)


def targets_text(items: list[dict[str, Any]]) -> str:
    marks = {True: "MET    ", False: "NOT MET", None: "n/a    "}
    return "\n".join(f"{marks[t['met']]}  {t['target']}: {t['detail']}" for t in items)


# --- main -------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="short phases and fewer repeats (a smoke run)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per service phase (default 4)")
    parser.add_argument("--read-rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--output", type=Path, default=RESULTS / "compare.json")
    parser.add_argument("--chart", type=Path, default=RESULTS / "compare.png")
    args = parser.parse_args(argv)
    duration = args.duration or (1.5 if args.quick else 4.0)
    repeats = 1 if args.quick else 3

    require_peer()
    started = time.perf_counter()
    busy0, _ = machine_busy_seconds()
    report: dict[str, Any] = {
        "benchmark": "ours vs upstream flytekitplugins-bigquery, side by side",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "versions": {side: versions(side) for side in SIDES},
        "upstream_version": UPSTREAM_VERSION,
    }
    problems: list[str] = []
    for section in args.only:
        t0 = time.perf_counter()
        _log(f"== {section}")
        if section == "service":
            from benchmarks import service_compare

            report["service"] = service_compare.run([0.0, 0.1], [1, 16, 64], duration, 0.5 if args.quick else 1.0, _log)
        elif section == "deployed":
            report["deployed"] = deployed.run(duration, 0.5 if args.quick else 1.0, _log)
        elif section == "percall":
            from benchmarks import percall_bench

            report["percall"] = percall_bench.run(1.0 if args.quick else 3.0, log=_log)
        elif section == "read":
            report["read"] = read_section(args.read_rows, repeats)
        elif section == "import":
            from benchmarks import import_bench

            report["import"] = import_bench.run(3 if args.quick else 7, log=_log)
        elif section == "e2e":
            from benchmarks import e2e_bench

            report["e2e"] = e2e_bench.run(1 if args.quick else 3, log=_log)
        problems += [f"{section}: {p}" for p in report[section].get("problems", [])]
        report[section]["seconds"] = time.perf_counter() - t0
    elapsed = time.perf_counter() - started
    report["seconds"] = elapsed
    report["machine"]["busy_cpus_during_run"] = (machine_busy_seconds()[0] - busy0) / elapsed
    report["targets"] = targets(report)
    report["problems"] = problems

    text = tables(report)
    print(text)
    print("\nTargets\n" + targets_text(report["targets"]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}", end="")
    try:
        from benchmarks.chart import draw

        draw(report, args.chart)
        print(f" and {args.chart.relative_to(ROOT) if args.chart.is_relative_to(ROOT) else args.chart}")
    except ImportError as e:
        print(f"\nno chart: {e} (pip install matplotlib, or `make venv` for the dev extra)")
    print(f"took {elapsed / 60:.1f} min; machine busy {report['machine']['busy_cpus_during_run']:.2f} CPUs on average")
    return exit_status(problems, "CORRECTNESS PROBLEMS (the figures above are not valid)")


if __name__ == "__main__":
    sys.exit(main())
