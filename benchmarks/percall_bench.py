"""CPU cost of one CreateTask and one GetTask in the connector process, ours versus upstream.

The gRPC transport is left out (the service benchmark includes it); everything else a call costs is in:
a child process of each side's interpreter calls flytekit's own ``AsyncConnectorService.CreateTask`` /
``GetTask`` in-process, one call at a time, with the same serialized request the service benchmark sends
(a BigQueryTask with one ``int`` input and a ``results`` output, each Create for a new execution), and
reports process CPU time (all threads) per call. BigQuery is :mod:`benchmarks.auth_stand_in` at 0 ms
latency, reached through ``BIGQUERY_EMULATOR_HOST``, with a generated service-account key whose token
endpoint is the stand-in.

Credential paths measured:

* ``upstream / key``: ADC from ``GOOGLE_APPLICATION_CREDENTIALS``; upstream builds a ``bigquery.Client``,
  loading the key file and exchanging a token, in every call;
* ``ours / key``: the same key, through :func:`benchmarks.sa_service.use_adc_with_emulator` (ours would
  otherwise go anonymous because ``BIGQUERY_EMULATOR_HOST`` is set); loaded once, token cached;
* ``ours / anonymous``: ours as it runs against an emulator by default (no token at all).

Every answer is checked (no error set on the gRPC context, a job id from Create, SUCCEEDED with a ``bq://``
result from Get) and the stand-in's counts must match (one ``jobs.insert`` per Create, no duplicates).

    python -m benchmarks.percall_bench [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VARIANTS = (("ours", "key"), ("ours", "anonymous"), ("upstream", "key"))


# --- child: runs under either interpreter, needs flytekit only -------------------------------------------


class _Context:
    """Stands in for grpc.ServicerContext: flytekit's servicers only call these on errors."""

    def __init__(self) -> None:
        self.code: Any = None
        self.details = ""

    def set_code(self, code: Any) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details


def _stand_in_stats() -> dict[str, int]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(os.environ["BIGQUERY_EMULATOR_HOST"] + "/_stats", timeout=10) as response:
        return dict(json.loads(response.read())["requests"])


def _child(request_file: str, seconds: float, max_calls: int, warmup: int) -> dict[str, Any]:
    import asyncio
    import warnings

    warnings.simplefilter("ignore")
    from flyteidl.admin import agent_pb2
    from flyteidl.core.execution_pb2 import TaskExecution
    from flytekit.extend.backend.connector_service import AsyncConnectorService

    base = agent_pb2.CreateTaskRequest.FromString(Path(request_file).read_bytes())
    category = agent_pb2.TaskCategory(name=base.template.type, version=0)
    service = AsyncConnectorService()
    run_id = uuid.uuid4().hex[:8]
    counter = iter(range(10**9))
    problems: list[str] = []

    def create_request() -> Any:
        request = agent_pb2.CreateTaskRequest()
        request.CopyFrom(base)
        request.task_execution_metadata.task_execution_id.node_execution_id.execution_id.name = (
            f"percall{run_id}n{next(counter)}"
        )
        return request

    async def create() -> bytes | None:
        context = _Context()
        response = await service.CreateTask(create_request(), context)
        if context.code is not None or response is None:
            problems.append(f"CreateTask: {context.code}: {context.details[:300]}")
            return None
        meta = json.loads(response.resource_meta)
        if not meta.get("job_id"):
            problems.append(f"CreateTask returned no job: {meta}")
            return None
        return bytes(response.resource_meta)

    async def get(meta: bytes) -> None:
        context = _Context()
        response = await service.GetTask(agent_pb2.GetTaskRequest(task_category=category, resource_meta=meta), context)
        if context.code is not None or response is None:
            problems.append(f"GetTask: {context.code}: {context.details[:300]}")
            return
        resource = response.resource
        uri = resource.outputs.literals["results"].scalar.structured_dataset.uri
        if resource.phase != TaskExecution.SUCCEEDED or not uri.startswith("bq://"):
            problems.append(f"GetTask: phase {resource.phase}, results {uri!r}: {resource.message}")

    async def measure(call: Any, args: list[Any]) -> dict[str, Any]:
        before = _stand_in_stats()
        outputs = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        deadline = wall0 + seconds
        while len(outputs) < max_calls and (len(outputs) < 10 or time.perf_counter() < deadline):
            outputs.append(await call(*(a[len(outputs) % len(a)] for a in args)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        after = _stand_in_stats()
        calls = {k: after.get(k, 0) - before.get(k, 0) for k in sorted(set(after) | set(before))}
        return {
            "calls": len(outputs),
            "cpu_ms_per_call": 1000 * cpu / len(outputs),
            "wall_ms_per_call": 1000 * wall / len(outputs),
            "stand_in_calls": calls,
            "outputs": outputs,
        }

    async def main() -> dict[str, Any]:
        metas = [await create() for _ in range(warmup)]
        for meta in metas:
            if meta:
                await get(meta)
        created = await measure(create, [])
        fresh = [m for m in created.pop("outputs") if m]
        got = await measure(get, [fresh or [b"{}"]])
        got.pop("outputs")
        return {"create": created, "get": got, "warmup_creates": warmup, "creates_answered": warmup + len(fresh)}

    result = asyncio.run(main())
    result["problems"] = problems[:5]
    result["error_count"] = len(problems)
    return result


# --- parent ----------------------------------------------------------------------------------------------


def run(seconds: float = 3.0, max_calls: int = 2000, warmup: int = 5, log: Any = print) -> dict[str, Any]:
    from benchmarks.auth_stand_in import AuthStandInProcess, write_service_account_key
    from benchmarks.peer import clean_env, python_for
    from benchmarks.service_bench import PROJECT, _base_request

    stand_in = AuthStandInProcess(0.0)
    results: list[dict[str, Any]] = []
    problems: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bq-percall-") as tmp:
            key = write_service_account_key(Path(tmp), stand_in.url + "/token", PROJECT)
            request_file = Path(tmp) / "create.pb"
            request_file.write_bytes(_base_request().SerializeToString())
            for side, credentials in VARIANTS:
                env = clean_env(
                    side,
                    {
                        "BIGQUERY_EMULATOR_HOST": stand_in.url,
                        "GOOGLE_APPLICATION_CREDENTIALS": str(key),
                        "GOOGLE_CLOUD_PROJECT": PROJECT,
                        "NO_PROXY": "127.0.0.1,localhost",
                        "no_proxy": "127.0.0.1,localhost",
                    },
                )
                command = [python_for(side), str(HERE / "percall_bench.py"), "--child", str(request_file)]
                command += ["--seconds", str(seconds), "--max-calls", str(max_calls), "--warmup", str(warmup)]
                if side == "ours" and credentials == "key":
                    command.append("--adc")
                stand_in.reset()
                proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd="/")
                if proc.returncode != 0:
                    problems.append(f"{side}/{credentials}: child failed: {proc.stderr[-2000:]}")
                    continue
                child = json.loads(proc.stdout.strip().splitlines()[-1])
                stats = stand_in.stats()
                inserts = stats["requests"].get("jobs.insert", 0)
                if child["error_count"]:
                    problems.append(f"{side}/{credentials}: {child['error_count']} bad answers: {child['problems']}")
                if stats["conflicts"] or inserts != stats["jobs"] or inserts != child["creates_answered"]:
                    problems.append(
                        f"{side}/{credentials}: {child['creates_answered']} Creates answered, {inserts} inserts, "
                        f"{stats['jobs']} jobs, {stats['conflicts']} duplicates"
                    )
                row = {"side": side, "credentials": credentials, **child}
                results.append(row)
                log(
                    f"  per call {side:<8} {credentials:<9} create {child['create']['cpu_ms_per_call']:>7.2f} CPU ms "
                    f"({child['create']['calls']} calls)  get {child['get']['cpu_ms_per_call']:>7.2f} CPU ms "
                    f"({child['get']['calls']} calls)  stand-in calls per create {child['create']['stand_in_calls']}"
                )
    finally:
        stand_in.stop()
    return {
        "setup": "flytekit's AsyncConnectorService.CreateTask/GetTask called in-process, one at a time, in each side's "
        "interpreter; stand-in latency 0 ms; process CPU time (all threads) per call",
        "seconds_per_phase": seconds,
        "results": results,
        "problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measure each call kind for about this long")
    parser.add_argument("--max-calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=5, help="create+get pairs before measuring")
    parser.add_argument("--child", metavar="REQUEST_FILE", help=argparse.SUPPRESS)
    parser.add_argument("--adc", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        if args.adc:
            from benchmarks.sa_service import use_adc_with_emulator

            use_adc_with_emulator()
        print(json.dumps(_child(args.child, args.seconds, args.max_calls, args.warmup)))
        return 0
    result = run(args.seconds, args.max_calls, args.warmup)
    for problem in result["problems"]:
        print("PROBLEM:", problem)
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    # Run as a script by either side's interpreter: nothing of this folder may shadow the side's packages
    # (ours finds `benchmarks` through PYTHONPATH; the peer must not see our source tree at all).
    if sys.path and Path(sys.path[0]).resolve() == HERE:
        sys.path.pop(0)
    raise SystemExit(main())
