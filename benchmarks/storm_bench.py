"""A burst of task creates into a storm of throttled ``jobs.insert`` calls: the figures behind the promise that
a burst never fails a task nor duplicates a job.

Setup, all on loopback: the local BigQuery, the fault proxy in front of it, and the connector service
(``python -m flytekitplugins.bigquery.service``) whose BigQuery traffic goes through the proxy. For each
scenario (refusal kind x the service's retry budget x the per-project cap), ``--tasks`` creates are sent at once
while the proxy refuses the next ``--per-task`` x tasks ``jobs.insert`` calls (429 ``rateLimitExceeded``, or 403
``quotaExceeded`` for concurrent queries), and every task is polled to its end
(:func:`flytekitplugins.bigquery.testing.storm.run_storm`). Reported per scenario: tasks, refusals injected,
tasks succeeded and failed, duplicate jobs, tasks without a job, creates whose submission waited for a later
``get`` (past the create's budget), the time to send every create and the time to drain (first create to last
task ended). Exits non-zero on any failure, duplicate or missing job. JSON to ``benchmarks/results/storm.json``.

    python -m benchmarks.storm_bench [--tasks 100] [--per-task 5]
"""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path
from typing import Any

import grpc
from flyte_bigquery_core.testing.emulator import Emulator
from flyte_bigquery_core.testing.faultproxy import FaultProxy
from flyteidl.service.agent_pb2_grpc import AsyncAgentServiceStub
from flytekit import FlyteContextManager, StructuredDataset
from flytekit.core.type_engine import TypeEngine

from benchmarks.service_bench import machine, write_report
from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask
from flytekitplugins.bigquery.testing.requests import template_of
from flytekitplugins.bigquery.testing.service_process import GRPC_OPTIONS, ServiceProcess
from flytekitplugins.bigquery.testing.storm import run_storm

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "storm.json"
#: (refusal, retry budget in seconds, per-project cap): the default budget absorbs the storm inside the creates;
#: a short one leaves the rest to get; the cap spreads the creates.
SCENARIOS = (("429", "60", "0"), ("429", "3", "0"), ("concurrent-queries", "3", "0"), ("429", "3", "8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.storm_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100, help="creates sent at once (default 100)")
    parser.add_argument("--per-task", type=int, default=5, help="refusals in the storm per task (default 5)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    with Emulator() as emulator, FaultProxy(emulator.rest_url) as proxy:
        task = BigQueryTask(
            name="storm.query",
            query_template="SELECT @n AS n",
            task_config=BigQueryConfig(ProjectID=emulator.project, Location="US"),
            inputs={"n": int},
            output_structured_dataset_type=StructuredDataset,
        )
        template = template_of(task).to_flyte_idl()
        context = FlyteContextManager.current_context()
        inputs = TypeEngine.dict_to_literal_map(context, {"n": 3}, task.get_input_types()).to_flyte_idl()
        client = emulator.client()
        for refusal, budget, cap in SCENARIOS:
            env = {
                **emulator.env(),
                "BIGQUERY_EMULATOR_HOST": proxy.url,
                "FLYTEKITPLUGINS_BIGQUERY_RETRY_SECONDS": budget,
                "FLYTEKITPLUGINS_BIGQUERY_MAX_INFLIGHT_PER_PROJECT": cap,
            }
            with ServiceProcess(env) as service, grpc.insecure_channel(service.target, options=GRPC_OPTIONS) as channel:
                proxy.clear()
                report = run_storm(
                    AsyncAgentServiceStub(channel),
                    proxy,
                    template,
                    inputs,
                    client,
                    args.tasks,
                    args.tasks * args.per_task,
                    refusal,
                    execution_prefix=f"storm{uuid.uuid4().hex[:8]}",
                )
            row = {**report.row(), "retry_seconds": float(budget), "max_inflight_per_project": int(cap)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            name = f"{refusal}, budget {budget}s, cap {cap}"
            if report.failures:
                problems.append(f"{name}: {len(report.failures)} failed, first: {report.failures[0]}")
            if report.duplicates or report.without_job:
                problems.append(f"{name}: {report.duplicates} duplicate jobs, {report.without_job} tasks without one")
        client.close()
    report_json = {
        "benchmark": "a burst of creates into a storm of throttled jobs.insert calls",
        "tasks": args.tasks,
        "refusals_per_task": args.per_task,
        "machine": machine(),
        "scenarios": rows,
        "problems": problems,
    }
    return write_report(args.output, report_json, problems)


if __name__ == "__main__":
    raise SystemExit(main())
