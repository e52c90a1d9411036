"""A burst of task creates into a storm of throttled ``jobs.insert`` calls, and what came of it.

Used by the rate-limit test (``tests/test_rate_limits.py``) and the benchmark that reports the figures
(``benchmarks/storm_bench.py``): the connector service's BigQuery traffic goes through the fault proxy in front
of the local BigQuery; the proxy answers the next ``storm`` ``jobs.insert`` calls with a throttling refusal
(:data:`REFUSALS`: 429 ``rateLimitExceeded``, or 403 ``quotaExceeded`` for concurrent queries), ``tasks``
creates are sent at once, and every task is polled until it ends. :class:`StormReport` holds the figures: tasks,
outcomes, duplicate jobs (an execution with more than one job), tasks with no job, creates that returned
before their job existed (the submission waited for a later ``get``), refusals injected, and the time to drain
(first create to last task ended).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from flyte_bigquery_core.testing.faultproxy import FaultProxy
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service.agent_pb2_grpc import AsyncAgentServiceStub

from ..metadata import BigQueryMetadata
from .requests import create_task_request

__all__ = ["REFUSALS", "StormReport", "jobs_by_execution", "run_storm"]

#: The throttling refusals a storm is made of, by name: the proxy rule's options.
REFUSALS: dict[str, dict[str, Any]] = {
    "429": {"status": 429, "reason": "rateLimitExceeded"},
    "concurrent-queries": {
        "status": 403,
        "reason": "quotaExceeded",
        "message": "Quota exceeded: Your project exceeded quota for concurrent queries for this project and region",
    },
}
_INSERT = r"/projects/[^/]+/jobs$"
_TERMINAL = {TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.RETRYABLE_FAILED, TaskExecution.ABORTED}
_CATEGORY = agent_pb2.TaskCategory(name="bigquery_query_job_task", version=0)


@dataclass
class StormReport:
    """What a storm did (see the module docstring)."""

    refusal: str
    tasks: int
    storm: int
    phases: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    duplicates: int = 0
    without_job: int = 0
    waited_for_get: int = 0
    injected: int = 0
    create_seconds: float = 0.0
    drain_seconds: float = 0.0

    def row(self) -> dict[str, Any]:
        return {
            "refusal": self.refusal,
            "tasks": self.tasks,
            "refusals_scripted": self.storm,
            "refusals_injected": self.injected,
            "succeeded": self.phases.get("SUCCEEDED", 0),
            "failed": len(self.failures),
            "duplicate_jobs": self.duplicates,
            "tasks_without_job": self.without_job,
            "creates_that_waited_for_get": self.waited_for_get,
            "create_seconds": round(self.create_seconds, 2),
            "drain_seconds": round(self.drain_seconds, 2),
        }


def jobs_by_execution(client: Any, executions: Iterable[str]) -> dict[str, list[Any]]:
    """The local BigQuery's jobs of several executions, by their ``flyte_execution`` label, in one listing
    (``client``: a google-cloud-bigquery client of the local BigQuery)."""
    wanted = set(executions)
    found: dict[str, list[Any]] = {execution: [] for execution in wanted}
    for job in client.list_jobs(all_users=True):
        execution = (job.labels or {}).get("flyte_execution")
        if execution in wanted:
            found[execution].append(job)
    return found


def run_storm(
    stub: AsyncAgentServiceStub,
    faults: FaultProxy,
    template: Any,
    inputs: Any,
    client: Any,
    tasks: int,
    storm: int,
    refusal: str = "429",
    execution_prefix: str = "storm",
    timeout: float = 300.0,
) -> StormReport:
    """Create ``tasks`` tasks of the serialized ``template`` at once while the proxy refuses the next ``storm``
    inserts with :data:`REFUSALS` ``[refusal]``; poll each until it ends. ``client`` (google-cloud-bigquery, of
    the local BigQuery) counts the jobs of each execution."""
    report = StormReport(refusal, tasks, storm)
    rule = faults.add_rule("status", "POST", _INSERT, count=storm, **REFUSALS[refusal])
    executions = [f"{execution_prefix}{n}" for n in range(tasks)]
    started = time.monotonic()
    with ThreadPoolExecutor(min(tasks, 64)) as pool:
        created = list(
            pool.map(
                lambda execution: stub.CreateTask(create_task_request(template, inputs, execution), timeout=120),
                executions,
            )
        )
    report.create_seconds = time.monotonic() - started
    metas = {execution: response.resource_meta for execution, response in zip(executions, created, strict=True)}
    report.waited_for_get = sum(BigQueryMetadata.decode(m).pending_insert is not None for m in metas.values())
    pending = dict(metas)
    while pending and time.monotonic() - started < timeout:
        for execution, meta in list(pending.items()):
            request = agent_pb2.GetTaskRequest(task_category=_CATEGORY, resource_meta=meta)
            resource = stub.GetTask(request, timeout=60).resource
            if resource.phase in _TERMINAL:
                del pending[execution]
                report.phases[TaskExecution.Phase.Name(resource.phase)] += 1
                if resource.phase != TaskExecution.SUCCEEDED:
                    report.failures.append(f"{execution}: {resource.message}")
        if pending:
            time.sleep(0.2)
    report.drain_seconds = time.monotonic() - started
    report.failures.extend(f"{execution}: still not finished after {timeout:.0f}s" for execution in pending)
    report.injected = rule.applied
    jobs = jobs_by_execution(client, executions)
    report.duplicates = sum(len(found) - 1 for found in jobs.values() if len(found) > 1)
    report.without_job = sum(1 for found in jobs.values() if not found)
    return report
