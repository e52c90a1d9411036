"""Throughput and latency of the connector gRPC service under closed-loop load.

Setup, all on loopback: :mod:`benchmarks.stand_in` plays BigQuery with a fixed latency (100 ms by
default), the service runs as ``python -m flytekitplugins.bigquery.service`` pointed at it through
``BIGQUERY_EMULATOR_HOST`` (so the connector's real HTTP path, :mod:`flyte_bigquery_core.jobs_api` over
:mod:`flyte_bigquery_core.transport`, is measured), and this process drives it with flyteidl's stubs over
grpc.aio: ``C`` workers each send a request, wait for the answer and send the next (closed loop), for a
fixed duration per phase:

* Create: ``CreateTask`` of a parameterized query with a declared output, each for a new execution (so
  each inserts one job);
* Get: ``GetTask`` cycling over the jobs the Create phase made: each is a succeeded job whose task declares
  an output, so each makes two BigQuery calls in sequence (``jobs.get``, then ``tables.get`` for the result's
  row count) and a closed loop of C workers cannot exceed C / 0.2 s;
* Poll: ``GetTask`` of the same jobs as tasks without a declared output: one ``jobs.get`` each, which is what
  most ``GetTask`` calls are in production (polls of a running job; only the last one finds it done).

Before reporting, every answer is checked (no gRPC error; Create returns job metadata, Get reports
SUCCEEDED with the ``results`` dataset, Poll SUCCEEDED without outputs) and the stand-in's job count must
equal the number of Creates.
Reported per phase: requests/s, p50/p99 latency, the service's CPU seconds (``/proc/<pid>/stat``) and
peak RSS (``VmHWM``). A table goes to stdout and JSON to ``benchmarks/results/service.json``.

``--shape upstream`` sends the template upstream serializes, as the maintainers do (``custom`` without
``InputTypes``).

    python -m benchmarks.service_bench [--duration 10] [--concurrency 16 64] [--latency 0.1] [--shape upstream]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
from flyteidl.admin import agent_pb2
from flyteidl.core import identifier_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service.agent_pb2_grpc import AsyncAgentServiceStub

from flytekitplugins.bigquery.testing.service_process import GRPC_OPTIONS, ServiceProcess

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "service.json"
PROJECT = "bench-project"
TASK_TYPE = "bigquery_query_job_task"
CATEGORY = agent_pb2.TaskCategory(name=TASK_TYPE, version=0)
_CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the processes --------------------------------------------------------------------------------------


class StandInProcess:
    """``python -m benchmarks.stand_in`` (or :attr:`module`) as a subprocess; the URL is read from its first line."""

    module = "benchmarks.stand_in"

    def __init__(self, latency: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "--port", "0", "--latency", str(latency)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"(http://\S+)", line)
        if not match:
            self.stop()
            raise RuntimeError(f"{self.module} did not start: {line!r}")
        self.url = match.group(1)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with self._opener.open(request, timeout=10) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "/_stats"))

    def reset(self) -> None:
        self._call("POST", "/_reset")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:9]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / _CLK_TCK, sum(ticks) / _CLK_TCK


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- requests -------------------------------------------------------------------------------------------


#: Request shapes: ``ours`` is the template this plugin serializes (its ``custom`` adds ``InputTypes``);
#: ``upstream`` is the one upstream 1.16.31 serializes and the maintainers send (``custom`` = ProjectID, Location,
#: Domain only; the same ``sql.statement``, input and ``results`` StructuredDataset output).
SHAPES = ("ours", "upstream")


def _template(shape: str = "ours") -> Any:
    """A real serialized BigQueryTask (as ``pyflyte register`` writes it), with one input and an output; with
    ``shape="upstream"`` its ``custom`` holds only the keys upstream writes (no ``InputTypes``)."""
    from flytekit import StructuredDataset

    from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask
    from flytekitplugins.bigquery.testing.requests import template_of

    task = BigQueryTask(
        name="bench.query",
        query_template=(
            "SELECT day, SUM(downloads) AS total FROM samples.daily_downloads WHERE downloads > @min GROUP BY day"
        ),
        task_config=BigQueryConfig(ProjectID=PROJECT, Location="US"),
        inputs={"min": int},
        output_structured_dataset_type=StructuredDataset,
    )
    template = template_of(task).to_flyte_idl()
    if shape == "upstream":
        for key in set(template.custom.fields) - {"ProjectID", "Location", "Domain"}:
            del template.custom.fields[key]
    return template


def _base_request(shape: str = "ours") -> agent_pb2.CreateTaskRequest:
    from flyteidl.core import literals_pb2

    inputs = literals_pb2.LiteralMap(
        literals={
            "min": literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=1000)))
        }
    )
    metadata = agent_pb2.TaskExecutionMetadata(
        task_execution_id=identifier_pb2.TaskExecutionIdentifier(
            task_id=identifier_pb2.Identifier(
                resource_type=identifier_pb2.TASK, project="flytesnacks", domain="development", name="bench.query"
            ),
            node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                node_id="n0",
                execution_id=identifier_pb2.WorkflowExecutionIdentifier(project="flytesnacks", domain="development"),
            ),
            retry_attempt=0,
        ),
        namespace="flytesnacks-development",
    )
    return agent_pb2.CreateTaskRequest(
        template=_template(shape), inputs=inputs, output_prefix="s3://bench/out", task_execution_metadata=metadata
    )


# --- load -----------------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    concurrency: int
    duration_s: float
    requests: int = 0
    errors: int = 0
    req_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    service_cpu_s: float = 0.0
    service_cpu_ms_per_req: float = 0.0
    service_cpu_util: float = 0.0
    service_peak_rss_mb: float = 0.0
    loadgen_cpu_s: float = 0.0
    stand_in_cpu_s: float = 0.0
    #: Busy CPUs of the whole machine (/proc/stat), to see load from processes outside the benchmark.
    machine_busy_cpus: float = 0.0
    first_error: str | None = None
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def row(self) -> dict[str, Any]:
        """The phase as reported (JSON-safe), without the individual latencies."""
        return {k: v for k, v in asdict(self).items() if k != "latencies_ms"}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def _closed_loop(
    phase: Phase, call: Any, make_request: Any, check: Any, deadline: float, results: list[Any]
) -> None:
    while time.perf_counter() < deadline:
        request = make_request()
        started = time.perf_counter()
        try:
            response = await call(request, timeout=30)
        except grpc.aio.AioRpcError as e:
            phase.errors += 1
            phase.first_error = phase.first_error or f"{e.code().name}: {e.details()[:300]}"
            continue
        phase.latencies_ms.append((time.perf_counter() - started) * 1000)
        problem = check(response)
        if problem:
            phase.errors += 1
            phase.first_error = phase.first_error or problem
        else:
            results.append(response)


async def run_phase(
    name: str,
    concurrency: int,
    duration: float,
    call: Any,
    make_request: Any,
    check: Any,
    pid: int,
    stand_in_pid: int | None = None,
    profile: Path | None = None,
) -> tuple[Phase, list[Any]]:
    phase = Phase(name, concurrency, duration)
    results: list[Any] = []
    spy = _py_spy(pid, duration, profile) if profile is not None else None
    stand0 = cpu_seconds(stand_in_pid) if stand_in_pid else 0.0
    busy0, _ = machine_busy_seconds()
    cpu0, own0, t0 = cpu_seconds(pid), time.process_time(), time.perf_counter()
    deadline = t0 + duration
    await asyncio.gather(
        *(_closed_loop(phase, call, make_request, check, deadline, results) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - t0
    phase.service_cpu_s = cpu_seconds(pid) - cpu0
    phase.loadgen_cpu_s = time.process_time() - own0
    phase.stand_in_cpu_s = cpu_seconds(stand_in_pid) - stand0 if stand_in_pid else float("nan")
    phase.machine_busy_cpus = (machine_busy_seconds()[0] - busy0) / elapsed
    if spy is not None:
        spy.wait()
    phase.requests = len(phase.latencies_ms)
    phase.req_per_s = phase.requests / elapsed
    phase.p50_ms = statistics.median(phase.latencies_ms) if phase.latencies_ms else float("nan")
    phase.p99_ms = _percentile(phase.latencies_ms, 0.99)
    phase.max_ms = max(phase.latencies_ms, default=float("nan"))
    phase.service_cpu_ms_per_req = 1000 * phase.service_cpu_s / max(phase.requests, 1)
    phase.service_cpu_util = phase.service_cpu_s / elapsed
    phase.service_peak_rss_mb = peak_rss_mb(pid)
    return phase, results


def _py_spy(pid: int, duration: float, output: Path) -> subprocess.Popen[bytes] | None:
    """Sample the service's GIL-holding stacks during a phase (collapsed-stack text), if py-spy is installed."""
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        print("py-spy is not installed in this venv (pip install py-spy); not profiling", file=sys.stderr)
        return None
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [str(exe), "record", "--pid", str(pid), "--duration", str(max(1, int(duration) - 1))]
    command += ["--format", "raw", "--gil", "--nonblocking", "--rate", "200", "-o", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _check_create(response: agent_pb2.CreateTaskResponse) -> str | None:
    meta = json.loads(response.resource_meta)
    if meta.get("error") or not meta.get("job_id"):
        return f"CreateTask returned no job: {meta}"
    return None


def _without_output(resource_meta: bytes) -> bytes:
    """The metadata of the same job for a task that declares no output (``GetTask`` then makes one call)."""
    meta = json.loads(resource_meta)
    meta.pop("output_name", None)
    return json.dumps(meta, separators=(",", ":")).encode()


def _check_poll(response: agent_pb2.GetTaskResponse) -> str | None:
    resource = response.resource
    if resource.phase != TaskExecution.SUCCEEDED:
        return f"GetTask phase {resource.phase}: {resource.message}"
    if resource.outputs.literals:
        return "GetTask of a task without output returned outputs"
    return None


def _check_get(response: agent_pb2.GetTaskResponse) -> str | None:
    resource = response.resource
    if resource.phase != TaskExecution.SUCCEEDED:
        return f"GetTask phase {resource.phase}: {resource.message}"
    if not resource.outputs.literals["results"].scalar.structured_dataset.uri.startswith("bq://"):
        return "GetTask: no results dataset"
    return None


async def bench_level(
    target: str,
    concurrency: int,
    duration: float,
    warmup: float,
    pid: int,
    stand_in_pid: int | None = None,
    profile_dir: Path | None = None,
    shape: str = "ours",
    base: agent_pb2.CreateTaskRequest | None = None,
) -> list[Phase]:
    """Create, get and poll phases at ``concurrency``; ``base`` (default: the ``shape``'s) is the create request."""
    base = base if base is not None else _base_request(shape)
    counter = iter(range(10**9))
    run_id = uuid.uuid4().hex[:8]

    def make_create() -> agent_pb2.CreateTaskRequest:
        request = agent_pb2.CreateTaskRequest()
        request.CopyFrom(base)
        request.task_execution_metadata.task_execution_id.node_execution_id.execution_id.name = (
            f"bench{run_id}c{concurrency}n{next(counter)}"
        )
        return request

    async with grpc.aio.insecure_channel(target, options=GRPC_OPTIONS) as channel:
        stub = AsyncAgentServiceStub(channel)

        async def measure(name: str, call: Any, make_request: Any, check: Any) -> tuple[Phase, list[Any]]:
            profile = profile_dir / f"{name}-c{concurrency}.txt" if profile_dir else None
            return await run_phase(name, concurrency, duration, call, make_request, check, pid, stand_in_pid, profile)

        if warmup > 0:
            await run_phase("warmup", concurrency, warmup, stub.CreateTask, make_create, _check_create, pid)
        create, created = await measure("create", stub.CreateTask, make_create, _check_create)
        metas = [r.resource_meta for r in created]
        cycle = iter(range(10**9))

        def cycling(resource_metas: list[bytes]) -> Any:
            """``GetTask`` requests over ``resource_metas``, round and round."""
            return lambda: agent_pb2.GetTaskRequest(
                task_category=CATEGORY, resource_meta=resource_metas[next(cycle) % len(resource_metas)]
            )

        get, _ = await measure("get", stub.GetTask, cycling(metas), _check_get)
        poll, _ = await measure("poll", stub.GetTask, cycling([_without_output(m) for m in metas]), _check_poll)
    return [create, get, poll]


def _table(phases: list[Phase]) -> str:
    header = (
        f"{'phase':<7} {'C':>3} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'errors':>6} {'svc CPU s':>9} {'CPU ms/req':>10} {'svc util':>8} {'peak RSS MB':>11} "
        f"{'stand-in CPU s':>14} {'loadgen CPU s':>13} {'machine busy':>12}"
    )
    rows = [header, "-" * len(header)]
    for p in phases:
        rows.append(
            f"{p.name:<7} {p.concurrency:>3} {p.requests:>8} {p.req_per_s:>7.1f} {p.p50_ms:>7.1f} {p.p99_ms:>7.1f} "
            f"{p.max_ms:>7.1f} {p.errors:>6} {p.service_cpu_s:>9.2f} {p.service_cpu_ms_per_req:>10.2f} "
            f"{p.service_cpu_util:>8.0%} {p.service_peak_rss_mb:>11.1f} {p.stand_in_cpu_s:>14.2f} "
            f"{p.loadgen_cpu_s:>13.2f} {p.machine_busy_cpus:>8.2f} CPU"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.service_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of Creates before measuring")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--latency", type=float, default=0.1, help="stand-in latency per BigQuery call (s)")
    parser.add_argument("--workers", type=int, default=None, help="service --workers (gRPC sync-handler threads)")
    parser.add_argument(
        "--max-workers",
        type=int,
        default=None,
        help="connector ClientPool threads (FLYTEKITPLUGINS_BIGQUERY_MAX_WORKERS)",
    )
    parser.add_argument(
        "--shape",
        choices=SHAPES,
        default="ours",
        help="the template sent: ours (custom with InputTypes) or upstream's (ProjectID/Location/Domain only)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--profile", type=Path, default=None, metavar="DIR", help="py-spy GIL profiles of each phase into DIR"
    )
    args = parser.parse_args(argv)

    stand_in = StandInProcess(args.latency)
    env = {
        "BIGQUERY_EMULATOR_HOST": stand_in.url,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    if args.max_workers:
        env["FLYTEKITPLUGINS_BIGQUERY_MAX_WORKERS"] = str(args.max_workers)
    service = ServiceProcess(env, workers=args.workers)
    phases: list[Phase] = []
    problems: list[str] = []
    try:
        service.start()
        for concurrency in args.concurrency:
            stand_in.reset()
            level = asyncio.run(
                bench_level(
                    service.target,
                    concurrency,
                    args.duration,
                    args.warmup,
                    service.pid,
                    stand_in.proc.pid,
                    args.profile,
                    args.shape,
                )
            )
            stats = stand_in.stats()
            # Every successful Create (warmup included) inserted exactly one job, and nothing else did.
            creates = stats["requests"].get("jobs.insert", 0)
            if stats["jobs"] != creates or stats["conflicts"]:
                problems.append(f"C={concurrency}: stand-in has {stats['jobs']} jobs for {creates} inserts")
            measured = level[0].requests
            if measured > stats["jobs"]:
                problems.append(f"C={concurrency}: {measured} creates answered but only {stats['jobs']} jobs exist")
            for phase in level:
                if phase.errors:
                    problems.append(
                        f"{phase.name} C={concurrency}: {phase.errors} bad answers, first: {phase.first_error}"
                    )
            phases.extend(level)
            print(_table(level), flush=True)
    finally:
        service.cleanup()
        stand_in.stop()

    print("\n" + _table(phases))
    report = {
        "benchmark": "connector gRPC service, closed loop",
        "stand_in_latency_s": args.latency,
        "shape": args.shape,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "service_workers": args.workers,
        "connector_max_workers": args.max_workers,
        "machine": machine(),
        "note": "machine_busy_cpus counts every process on the machine; more than service + stand-in + loadgen "
        "means other load shared the CPUs during the run",
        "phases": [p.row() for p in phases],
        "problems": problems,
    }
    return write_report(args.output, report, problems)


def machine() -> dict[str, Any]:
    """What a benchmark ran on, for its JSON report."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def write_report(path: Path, report: dict[str, Any], problems: list[str]) -> int:
    """Write a benchmark's JSON report to ``path``; the exit status for its ``problems`` (:func:`exit_status`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    return exit_status(problems)


def exit_status(problems: list[str], heading: str = "CORRECTNESS PROBLEMS") -> int:
    """A command's exit status: 1, with the problems on stderr, when the run found any."""
    if problems:
        print(f"{heading}:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
