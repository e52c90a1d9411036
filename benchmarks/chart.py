"""Draw ``benchmarks/results/compare.png`` from the side-by-side report (:mod:`benchmarks.compare`).

Six panels, ours against upstream (or flytekit's built-in reader) in each: service throughput at 100 ms
and at 0 ms stand-in latency (log scale, one group per concurrency and phase), CPU per call, read time and
peak RSS by table size, and import time. Ratios are printed over the bars.

    python -m benchmarks.chart [benchmarks/results/compare.json] [-o benchmarks/results/compare.png]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

OURS_COLOR = "#1f77b4"
THEIRS_COLOR = "#bbbbbb"


def _bars(ax: Any, labels: list[str], ours: list[float], theirs: list[float], names: tuple[str, str]) -> None:
    import numpy as np

    x = np.arange(len(labels))
    width = 0.4
    ax.bar(x - width / 2, ours, width, label=names[0], color=OURS_COLOR)
    ax.bar(x + width / 2, theirs, width, label=names[1], color=THEIRS_COLOR, edgecolor="#888888")
    ax.set_xticks(x, labels, fontsize=8)
    ax.legend(fontsize=8, loc="best")
    ax.grid(axis="y", alpha=0.3)


def _annotate(ax: Any, xs: list[int], tops: list[float], texts: list[str]) -> None:
    for x, top, text in zip(xs, tops, texts, strict=True):
        ax.annotate(text, (x, top), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=7)


def _compared(
    ax: Any,
    labels: list[str],
    ours: list[float],
    theirs: list[float],
    names: tuple[str, str],
    ratio: Callable[[float, float], str],
    *,
    ylabel: str,
    title: str,
    headroom: float = 3,
    log: bool = True,
    xlabel: str | None = None,
) -> None:
    """One panel: paired bars, each pair labelled with ``ratio(ours, theirs)`` over the taller bar."""
    _bars(ax, labels, ours, theirs, names)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    _annotate(
        ax,
        list(range(len(labels))),
        [max(o, t) for o, t in zip(ours, theirs, strict=True)],
        [ratio(o, t) for o, t in zip(ours, theirs, strict=True)],
    )
    ax.set_ylim(top=max(ours + theirs) * headroom)


def _times(ratio: float) -> str:
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def _service_panel(ax: Any, report: dict[str, Any], latency_ms: int) -> None:
    from benchmarks.service_compare import ratio, service_pairs

    pairs = [p for p in service_pairs(report["service"]) if p["latency_ms"] == latency_ms]
    pairs.sort(key=lambda p: (p["concurrency"], ("create", "get", "mixed").index(p["phase"])))
    _compared(
        ax,
        [f"C={p['concurrency']}\n{p['phase']}" for p in pairs],
        [p["ours"]["req_per_s"] for p in pairs],
        [p["upstream"]["req_per_s"] for p in pairs],
        ("ours", "upstream 1.16.31"),
        lambda o, t: _times(ratio(o, t)),  # the pair's throughput_ratio
        ylabel="requests/s (log)",
        title=f"Connector service, stand-in latency {latency_ms} ms",
    )


def _percall_panel(ax: Any, report: dict[str, Any]) -> None:
    rows = {(r["side"], r["credentials"]): r for r in report["percall"]["results"]}
    ours, theirs = rows.get(("ours", "key")), rows.get(("upstream", "key"))
    if not ours or not theirs:
        ax.set_visible(False)
        return
    kinds = ["create", "get"]
    _compared(
        ax,
        kinds,
        [ours[k]["cpu_ms_per_call"] for k in kinds],
        [theirs[k]["cpu_ms_per_call"] for k in kinds],
        ("ours", "upstream 1.16.31"),
        lambda o, t: f"1/{t / o:.0f}",
        ylabel="CPU ms per call (log)",
        title="CPU per call, service-account key",
    )


def _read_panels(ax_time: Any, ax_rss: Any, report: dict[str, Any]) -> None:
    by = {(m["rows"], m["impl"]): m for m in report["read"]["measurements"]}
    sizes = sorted({m["rows"] for m in report["read"]["measurements"]})
    labels = [f"{n:,}" for n in sizes]
    names = ("ours", "flytekit built-in")
    for ax, metric, ratio, ylabel, title, log, headroom in (
        (ax_time, "seconds", lambda o, f: f"{f / o:.1f}x", "seconds (log)", "read time", True, 3.0),
        (
            ax_rss,
            "peak_rss_mb",
            lambda o, f: f"{o / f:.2f}x",
            "peak RSS MB",
            "peak RSS of the reading process",
            False,
            1.2,
        ),
    ):
        _compared(
            ax,
            labels,
            [by[(n, "ours")][metric] for n in sizes],
            [by[(n, "flytekit")][metric] for n in sizes],
            names,
            ratio,
            ylabel=ylabel,
            title=f"bq:// -> pandas: {title}",
            headroom=headroom,
            log=log,
            xlabel="rows x 10 columns",
        )


def _import_panel(ax: Any, report: dict[str, Any]) -> None:
    rows = report["import"]["results"]
    labels = [r["variant"] for r in rows]
    colors = [OURS_COLOR if r["side"] == "ours" else THEIRS_COLOR for r in rows]
    walls = [r["wall_s"] for r in rows]
    ax.bar(labels, walls, color=colors, edgecolor="#888888")
    for i, r in enumerate(rows):
        ax.annotate(
            f"{r['wall_s']:.2f} s\n{r['peak_rss_mb']:.0f} MB",
            (i, r["wall_s"]),
            textcoords="offset points",
            xytext=(0, 3),
            ha="center",
            fontsize=7,
        )
    ax.set_ylim(top=max(walls) * 1.35)
    ax.set_ylabel("seconds (median)")
    ax.set_title("import flytekitplugins.bigquery", fontsize=10)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="y", alpha=0.3)


def draw(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    panels = [
        ("service", lambda: _service_panel(axes[0][0], report, 100)),
        ("service", lambda: _service_panel(axes[0][1], report, 0)),
        ("percall", lambda: _percall_panel(axes[0][2], report)),
        ("read", lambda: _read_panels(axes[1][0], axes[1][1], report)),
        ("import", lambda: _import_panel(axes[1][2], report)),
    ]
    for section, paint in panels:
        if report.get(section):
            paint()
    for ax in axes.flat:
        if not ax.has_data():
            ax.set_visible(False)
    machine = report.get("machine", {})
    fig.suptitle(
        f"flytekitplugins-bigquery: ours vs upstream {report.get('upstream_version', '')} — same run, same machine "
        f"({machine.get('cpus', '?')} CPUs, Python {machine.get('python', '?')}); labels are ratios",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.compare import RESULTS

    parser = argparse.ArgumentParser(prog="python -m benchmarks.chart", description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, nargs="?", default=RESULTS / "compare.json")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "compare.png")
    args = parser.parse_args(argv)
    draw(json.loads(args.report.read_text()), args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
