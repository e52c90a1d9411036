"""End to end: ``pyflyte run examples/demo_workflow.py wf`` against the local BigQuery, ours versus upstream.

One emulator, seeded with ``samples.daily_downloads`` (as ``make demo``), serves every run. Ours runs the
demo ``--runs`` times with each side's own ``pyflyte`` (wall time and peak RSS of the whole ``pyflyte run``,
median), and a run counts only if it printed exactly the rows the query must return (computed from
:data:`flyte_bigquery_core.testing.emulator.DEMO_ROWS`).

Upstream cannot be pointed at the emulator the way ours is (it builds every BigQuery client from
Application Default Credentials and has no anonymous mode), so it is given what it needs to try: a generated
service-account key whose token endpoint is :mod:`benchmarks.auth_stand_in` (the emulator ignores the
bearer token). Its attempts are run once each and reported with the error they end with (and its cause, where known:
:data:`KNOWN_CAUSES`):

* ``wf`` without credentials (what a user of the emulator would first see);
* ``wf`` with the key;
* ``full_bigquery_wf --version 1.16.0`` with the key (the demo without its first, output-less task).

Past those, upstream would still not finish: its downstream read goes through flytekit's built-in ``bq://``
handler, whose Storage Read client is built from ADC for Google's endpoint with no way to name an emulator
(here it fails on the closed loopback proxy, retrying until its deadline).

Nothing here may leave the machine: google-auth's metadata-server probe is pointed at a closed loopback port
(:data:`benchmarks.peer.NO_METADATA_SERVER`), and so is gRPC's proxy (``grpc_proxy``), so a Storage Read
client aimed at Google's endpoint fails on loopback instead of resolving a public name; loopback addresses are
exempt (``NO_PROXY``), so the emulator and the stand-in are reached directly.

    python -m benchmarks.e2e_bench [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from flyte_bigquery_core.testing.emulator import DEMO_ROWS, Emulator

from benchmarks.auth_stand_in import AuthStandInProcess, write_service_account_key
from benchmarks.peer import OURS, PEER_VENV, UPSTREAM, clean_env
from benchmarks.service_bench import ROOT

DEMO = "examples/demo_workflow.py"
VERSION = "1.16.0"
_ROW = re.compile(r"^\s*\d+\s+(\S+)\s+(\S+)\s+(\d+)\s*$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


#: Causes of upstream's failures, established by running its connector by hand against the emulator.
KNOWN_CAUSES = (
    (
        "DefaultCredentialsError",
        "upstream builds every bigquery.Client from Application Default Credentials; it has no anonymous mode "
        "for an emulator",
    ),
    (
        "Length difference 0 1",
        "upstream's get returns a `results` output for every query with a destination table, also for a task "
        "that declares no outputs (bigquery_task_no_io), and flytekit rejects the extra output",
    ),
    (
        "outputs.pb",
        "flytekit's SQLTask puts the query on one line, so the demo's leading `-- comment` comments out the whole "
        "query; the job runs an empty script with no result table, upstream returns no output and flytekit then "
        "looks for outputs.pb (real BigQuery would reject the empty query instead)",
    ),
)


def expected_rows(version: str = VERSION) -> list[tuple[str, str, int]]:
    """What the demo's query returns: the version's rows by downloads descending, then package, at most 10."""
    rows = [(r["package"], r["version"], int(r["downloads"])) for r in DEMO_ROWS if r["version"] == version]
    return sorted(rows, key=lambda r: (-r[2], r[0]))[:10]


def printed_rows(stdout: str) -> list[tuple[str, str, int]]:
    return [(m[1], m[2], int(m[3])) for m in (_ROW.match(line) for line in stdout.splitlines()) if m]


def _pyflyte(side: str) -> str:
    return str((ROOT / ".venv" if side == OURS else PEER_VENV) / "bin" / "pyflyte")


def _hwm_kib(pid: int) -> int:
    """``VmHWM`` of a live process in KiB (0 once it has exited)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _run(side: str, args: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """One ``pyflyte run``: wall time, and the peak RSS of the pyflyte process (its ``VmHWM``, polled).

    Not ``ru_maxrss`` from wait4: that keeps the peak of the image ``exec`` replaced, i.e. of this parent.
    """
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [_pyflyte(side), "run", DEMO, *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = started + timeout
        pid, status, peak_kib = 0, 0, 0
        while time.perf_counter() < deadline:
            peak_kib = max(peak_kib, _hwm_kib(proc.pid))
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.02)
        wall = time.perf_counter() - started
        timed_out = not pid
        if timed_out:
            os.killpg(proc.pid, 9)
            _, status, _ = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = _ANSI.sub("", out.read().decode(errors="replace"))
    return {
        "wall_s": wall,
        "peak_rss_mb": peak_kib / 1024,
        "exit_code": None if timed_out else proc.returncode,
        "timed_out": timed_out,
        "output": text,
    }


def _error_summary(text: str) -> str:
    """The final exception lines of a rich traceback (box drawing and source excerpts dropped)."""
    lines = [line.rstrip() for line in text.splitlines()]
    lines = [line for line in lines if line.strip() and not line.lstrip().startswith(("│", "╭", "╰"))]
    tail = lines[-6:]
    for i, line in enumerate(lines):
        if re.match(r"^[A-Za-z_.]*(Error|Exception|Expired)\b", line):
            tail = lines[i : i + 6]
    return " ".join(" ".join(tail).split())[:400]


def run(runs: int = 3, upstream_timeout: float = 120.0, log: Any = print) -> dict[str, Any]:
    want = expected_rows()
    results: dict[str, Any] = {"expected_rows": want, OURS: {}, UPSTREAM: {"attempts": []}}
    problems: list[str] = []
    stand_in = AuthStandInProcess(0.0)
    try:
        with Emulator() as emulator, tempfile.TemporaryDirectory(prefix="bq-e2e-") as tmp:
            emulator.seed_demo()
            key = write_service_account_key(Path(tmp), stand_in.url + "/token", emulator.project)
            base = {**emulator.env(), "grpc_proxy": "http://127.0.0.1:9"}
            ours_runs = []
            for i in range(runs):
                result = _run(OURS, ["wf"], clean_env(OURS, base), timeout=300)
                got = printed_rows(result.pop("output")) if result["exit_code"] == 0 else []
                if result["exit_code"] != 0 or got != want:
                    problems.append(f"ours run {i}: exit {result['exit_code']}, rows {got} (expected {want})")
                ours_runs.append(result)
                log(
                    f"  e2e ours     run {i}: {result['wall_s']:.2f} s, {result['peak_rss_mb']:.0f} MB, "
                    f"rows ok: {got == want}"
                )
            results[OURS] = {
                "command": f"pyflyte run {DEMO} wf",
                "credentials": "anonymous (BIGQUERY_EMULATOR_HOST set; the plugin's emulator path)",
                "wall_s": statistics.median(r["wall_s"] for r in ours_runs),
                "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in ours_runs),
                "runs": ours_runs,
                "rows_ok": not problems,
            }
            keyed = {"GOOGLE_APPLICATION_CREDENTIALS": str(key)}
            attempts = [
                ("wf, no credentials", ["wf"], {}),
                ("wf, generated service-account key", ["wf"], keyed),
                ("full_bigquery_wf, generated service-account key", ["full_bigquery_wf", "--version", VERSION], keyed),
            ]
            for label, args, extra in attempts:
                env = clean_env(UPSTREAM, {**base, **extra})
                if not extra:
                    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
                result = _run(UPSTREAM, args, env, timeout=upstream_timeout)
                text = result.pop("output")
                got = printed_rows(text) if result["exit_code"] == 0 else []
                result.update(
                    attempt=label,
                    command=f"pyflyte run {DEMO} {' '.join(args)}",
                    rows_ok=got == want,
                    error=None if result["exit_code"] == 0 else _error_summary(text),
                )
                result["cause"] = next((why for mark, why in KNOWN_CAUSES if mark in text), None)
                results[UPSTREAM]["attempts"].append(result)
                outcome = "rows ok" if result["rows_ok"] else f"failed: {result['error']}"
                log(f"  e2e upstream {label}: {result['wall_s']:.2f} s, {outcome}")
    finally:
        stand_in.stop()
    succeeded = [a for a in results[UPSTREAM]["attempts"] if a["rows_ok"]]
    results[UPSTREAM]["ran"] = bool(succeeded)
    if succeeded:
        results[UPSTREAM]["wall_s"] = min(a["wall_s"] for a in succeeded)
        results[UPSTREAM]["peak_rss_mb"] = min(a["peak_rss_mb"] for a in succeeded)
    results["problems"] = problems
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    result = run(args.runs)
    print(json.dumps(result, indent=2, default=str))
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
