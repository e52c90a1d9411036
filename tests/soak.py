"""Mixed create/get/delete load through the connector service with network faults on, and its verdict.

The workload is what Flyte's propeller does to the connector, many times over and concurrently: each
*cycle* is one task node of one execution that goes through Flyte attempts until a non-retryable end:

* ``ok``: ``SELECT @n AS n`` with a ``results`` output; must end SUCCEEDED with its row in the result
  table. One in ten re-sends its ``CreateTask`` (a lost response, as propeller retries it);
* ``delete``: the same query, aborted with ``DeleteTask`` right after ``CreateTask``; must end SUCCEEDED or
  ABORTED (the local BigQuery ignores ``jobs.cancel``, so its jobs finish anyway);
* ``failing``: a query of a missing dataset; BigQuery fails the job, so the task must end FAILED;
* ``bad_input``: an undeclared ``@param`` or a string literal for an ``int`` input; refused before anything
  is submitted, so it must end FAILED at once, without a job.

``RETRYABLE_FAILED`` sends the node to its next attempt (as Flyte does, up to :data:`MAX_ATTEMPTS`), so
is a failed ``CreateTask`` RPC (Flyte >= 1.11 turns it into a retryable failure). ``RUNNING`` with "will
check again" is a poll that could not reach BigQuery: the cycle keeps polling.

Afterwards :func:`verify` counts the jobs the local BigQuery holds for the run's execution, by their
``flyte_node``/``flyte_attempt`` labels, and reads every result table, to judge the promises: no duplicate
job (at most one per attempt, exactly one per ``ok``/``delete`` node, none for bad input), every cycle
reached its end, no transient fault became a permanent failure, no permanent error became retryable, no
result was lost. :func:`process_stats` reads a process's RSS, open descriptors and threads from /proc.

``make soak`` runs :func:`main`: a local BigQuery, the fault proxy with seeded chaos in front of it, the
service pointed at the proxy, a warm-up, then ``SOAK_SECONDS`` (default 600) of load at ``SOAK_CONCURRENCY``
(16) with ``SOAK_FAULT_RATE`` (0.2) of BigQuery requests faulted, and a report: throughput, outcomes and
errors by kind, faults by endpoint and kind, duplicates, and the service's RSS/descriptors at start and end.
It exits non-zero if a promise was broken or RSS grew by more than 10 %.

    python -m tests.soak [--seconds 600] [--concurrency 16] [--fault-rate 0.2] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from flyte_bigquery_core.testing.faultproxy import FaultProxy, Rule
from flyteidl.admin import agent_pb2
from flyteidl.core import literals_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service.agent_pb2_grpc import AsyncAgentServiceStub

from flytekitplugins.bigquery.testing.requests import create_task_request
from flytekitplugins.bigquery.testing.service_process import GRPC_OPTIONS, ServiceProcess

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `tests` (tests.helpers) importable
    sys.path.insert(0, str(ROOT))

__all__ = [
    "CHAOS_FAULTS",
    "KINDS",
    "PROMISES",
    "Cycle",
    "Verdict",
    "Workload",
    "process_stats",
    "run_cycles",
    "run_for",
    "verify",
]

TASK_TYPE = "bigquery_query_job_task"
CATEGORY = agent_pb2.TaskCategory(name=TASK_TYPE, version=0)
TERMINAL = frozenset(
    {TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.RETRYABLE_FAILED, TaskExecution.ABORTED}
)
PHASE = TaskExecution.Phase.Name
#: Attempts per node, as a task with ``retries=3`` gets from Flyte.
MAX_ATTEMPTS = 4
#: How long one attempt may stay non-terminal before the cycle counts as lost.
POLL_LIMIT_SECONDS = 90.0
POLL_INTERVAL = 0.1

#: Cycle kinds and their share of the load.
KINDS: dict[str, float] = {"ok": 0.7, "delete": 0.1, "failing": 0.1, "bad_input": 0.1}

#: Every fault the proxy can play, with short delays (a delay longer than the connector's per-request
#: timeout would be a different test).
CHAOS_FAULTS: tuple[Rule, ...] = (
    Rule("status", status=500),
    Rule("status", status=502),
    Rule("status", status=503),
    Rule("status", status=429, retry_after=0.5),
    Rule("reset"),
    Rule("drop"),
    Rule("truncate"),
    Rule("delay", seconds=0.3),
    Rule("delay", seconds=0.3, after=True),
)


# --- one cycle ----------------------------------------------------------------------------------------


@dataclass
class Attempt:
    """One Flyte attempt of a node: what ``CreateTask`` returned and where polling ended."""

    number: int
    job_id: str = ""
    reused: bool = False
    phase: int | None = None
    message: str = ""
    #: gRPC status names of failed RPCs (``CreateTask:INTERNAL``...).
    rpc_errors: list[str] = field(default_factory=list)
    #: Polls answered RUNNING "... will check again" (BigQuery unreachable for that poll).
    unreachable_polls: int = 0
    notes: list[str] = field(default_factory=list)
    #: CreateTask was re-sent (a lost response), and its second answer differed (see :func:`_judge_resend`).
    resent: bool = False
    resend_differed: bool = False


@dataclass
class Cycle:
    index: int
    kind: str
    node: str
    n: int
    attempts: list[Attempt] = field(default_factory=list)
    results_uri: str = ""
    duplicate_create: bool = False

    @property
    def final(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def final_phase(self) -> int | None:
        return self.final.phase if self.final else None


def _literal_int(value: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value)))


def _literal_str(value: str) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(string_value=value)))


def _templates(project: str) -> dict[str, Any]:
    """The serialized task templates of each kind (as ``pyflyte register`` writes them)."""
    from flytekit import StructuredDataset

    from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask
    from tests.helpers import template_of

    def task(name: str, sql: str, inputs: dict[str, type] | None) -> Any:
        config = BigQueryConfig(ProjectID=project, Location="US")
        return BigQueryTask(
            name=name,
            query_template=sql,
            task_config=config,
            inputs=inputs,
            output_structured_dataset_type=StructuredDataset,
        )

    return {
        "ok": template_of(task("soak.ok", "SELECT @n AS n", {"n": int})).to_flyte_idl(),
        "failing": template_of(task("soak.failing", "SELECT * FROM soak_missing_dataset.t", None)).to_flyte_idl(),
        "undeclared": template_of(task("soak.undeclared", "SELECT @n + @missing AS y", {"n": int})).to_flyte_idl(),
    }


class Workload:
    """Builds and runs cycles against one service; thread-safe (one stub, shared)."""

    def __init__(self, stub: AsyncAgentServiceStub, project: str, execution: str, seed: int = 0) -> None:
        self.stub = stub
        self.project = project
        self.execution = execution
        self.seed = seed
        self.templates = _templates(project)
        self._kinds = list(KINDS)
        self._weights = [KINDS[k] for k in self._kinds]

    def plan(self, index: int) -> Cycle:
        """The cycle with this index; deterministic for a seed."""
        rng = random.Random(f"{self.seed}-{index}")
        kind = rng.choices(self._kinds, self._weights)[0]
        cycle = Cycle(index=index, kind=kind, node=f"n{index}", n=index)
        cycle.duplicate_create = kind == "ok" and rng.random() < 0.1
        return cycle

    def _request(self, cycle: Cycle, attempt: int) -> agent_pb2.CreateTaskRequest:
        if cycle.kind in ("ok", "delete"):
            template, inputs = self.templates["ok"], {"n": _literal_int(cycle.n)}
        elif cycle.kind == "failing":
            template, inputs = self.templates["failing"], {}
        elif cycle.n % 2:
            template, inputs = self.templates["undeclared"], {"n": _literal_int(cycle.n)}
        else:  # a string literal where the template declares int
            template, inputs = self.templates["ok"], {"n": _literal_str(f"not-a-number-{cycle.n}")}
        return create_task_request(
            template,
            literals_pb2.LiteralMap(literals=inputs),
            self.execution,
            attempt,
            node=cycle.node,
            output_prefix="s3://bucket/soak",
        )

    def predicted_job_ids(self, cycle: Cycle) -> dict[int, str]:
        """The job id each attempt of the cycle would have (``{}`` for bad input, which is never planned).

        Job ids are deterministic (:func:`flyte_bigquery_core.identity.job_id` over the execution, node, task
        and the query's fingerprint, with the attempt in the id), so the jobs a node could have started are
        known without asking BigQuery: :func:`verify` looks exactly these up. The plan is made as the
        connector makes it, from the same template and values.
        """
        if cycle.kind == "bad_input":
            return {}
        from flyte_bigquery_core.identity import ExecutionIdentity
        from flyte_bigquery_core.planning import plan_query
        from flyte_bigquery_core.settings import current_settings
        from flytekit.models.task import TaskTemplate

        from flytekitplugins.bigquery.connector import query_task

        key = "ok" if cycle.kind in ("ok", "delete") else "failing"
        values: dict[str, Any] = {"n": cycle.n} if key == "ok" else {}
        task = query_task(TaskTemplate.from_flyte_idl(self.templates[key]))
        ids = {}
        for number in range(len(cycle.attempts)):
            who = ExecutionIdentity("flytesnacks", "development", self.execution, cycle.node, task.name, number)
            ids[number] = plan_query(task, values, who, current_settings(), time.time()).job_id
        return ids

    def run(self, cycle: Cycle) -> Cycle:
        """Drive the node through attempts until a non-retryable end (or :data:`MAX_ATTEMPTS`)."""
        for number in range(MAX_ATTEMPTS):
            attempt = Attempt(number)
            cycle.attempts.append(attempt)
            self._attempt(cycle, attempt)
            if attempt.phase != TaskExecution.RETRYABLE_FAILED:
                break
        return cycle

    def _attempt(self, cycle: Cycle, attempt: Attempt) -> None:
        request = self._request(cycle, attempt.number)
        try:
            meta = self.stub.CreateTask(request, timeout=60).resource_meta
            if cycle.duplicate_create:
                # The first answer is "lost": propeller re-sends the same attempt and keeps the second answer.
                again = self.stub.CreateTask(request, timeout=60).resource_meta
                attempt.resent = True
                _judge_resend(meta, again, attempt)
                meta = again
        except grpc.RpcError as e:
            attempt.rpc_errors.append(f"CreateTask:{e.code().name}")
            attempt.phase = TaskExecution.RETRYABLE_FAILED  # Flyte retries a failed CreateTask as a new attempt
            attempt.message = f"CreateTask failed: {e.code().name}"
            return
        decoded = _decode(meta)
        attempt.job_id = str(decoded.get("job_id") or "")
        attempt.reused = decoded.get("reused_from_attempt") is not None
        if cycle.kind == "delete":
            self._delete(meta, attempt)
        deadline = time.monotonic() + POLL_LIMIT_SECONDS
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                resource = self.stub.GetTask(
                    agent_pb2.GetTaskRequest(task_category=CATEGORY, resource_meta=meta), timeout=60
                ).resource
            except grpc.RpcError as e:
                attempt.rpc_errors.append(f"GetTask:{e.code().name}")
                time.sleep(POLL_INTERVAL)
                continue
            if resource.phase in TERMINAL:
                attempt.phase = resource.phase
                attempt.message = resource.message
                if resource.phase == TaskExecution.SUCCEEDED and "results" in resource.outputs.literals:
                    cycle.results_uri = resource.outputs.literals["results"].scalar.structured_dataset.uri
                return
            last = PHASE(resource.phase)
            if "will check again" in resource.message:
                attempt.unreachable_polls += 1
            time.sleep(POLL_INTERVAL)
        attempt.message = f"still {last} after {POLL_LIMIT_SECONDS:.0f}s"

    def _delete(self, meta: bytes, attempt: Attempt) -> None:
        """``DeleteTask``, retried a few times as propeller does when it fails."""
        request = agent_pb2.DeleteTaskRequest(task_category=CATEGORY, resource_meta=meta)
        for _ in range(5):
            try:
                self.stub.DeleteTask(request, timeout=60)
                return
            except grpc.RpcError as e:
                attempt.rpc_errors.append(f"DeleteTask:{e.code().name}")
                time.sleep(0.5)


def _judge_resend(first: bytes, second: bytes, attempt: Attempt) -> None:
    """Judge the two answers to one CreateTask sent twice (a lost response re-sent).

    They may differ, harmlessly, in two ways only: one of them is the metadata of a create that spent its retry
    budget (``error`` + ``retryable``: BigQuery stayed unreachable, nothing is known to have started), or of a
    create BigQuery throttled past its budget (``pending_insert``: the same job, submitted again by ``get``),
    the other names the job. Nothing is lost or doubled by that: whichever answer the platform keeps, the job
    id is the attempt's deterministic one, so the other answer's create either adopted it (409) or started
    it, and a retryable answer's next attempt reuses it. Two different job ids, or two different answers
    neither of which is retryable or pending, are violations (recorded as ``CreateTask:`` errors). The
    ``destination`` recorded at create is left out of the comparison: it is there only when the job had
    finished by then (a loaded local BigQuery answers a fresh insert RUNNING, the adopting re-send DONE), and
    ``get`` reads the job's own destination either way.
    """
    if first == second:
        return
    attempt.resend_differed = True
    one, two = _decode(first), _decode(second)
    if {k: v for k, v in one.items() if k != "destination"} == {k: v for k, v in two.items() if k != "destination"}:
        attempt.notes.append(f"re-sent CreateTask answered {second!r} after {first!r} (destination known later)")
        return
    if one.get("job_id") and two.get("job_id") and one["job_id"] != two["job_id"]:
        attempt.rpc_errors.append("CreateTask:ANOTHER_JOB_ON_RESEND")
    elif not any((m.get("error") and m.get("retryable")) or m.get("pending_insert") for m in (one, two)):
        attempt.rpc_errors.append("CreateTask:RESEND_ANSWERED_DIFFERENTLY")
    attempt.notes.append(f"re-sent CreateTask answered {second!r} after {first!r}")


def _decode(meta: bytes) -> dict[str, Any]:
    try:
        value = json.loads(meta)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def run_cycles(workload: Workload, indexes: Iterable[int], concurrency: int) -> list[Cycle]:
    """Run the given cycles with ``concurrency`` in flight; returns them in index order."""
    with ThreadPoolExecutor(concurrency, thread_name_prefix="cycle") as pool:
        return list(pool.map(lambda i: workload.run(workload.plan(i)), indexes))


def run_for(
    workload: Workload,
    seconds: float,
    concurrency: int,
    first_index: int = 0,
    on_cycle: Callable[[Cycle], None] | None = None,
) -> list[Cycle]:
    """Closed loop: ``concurrency`` workers start cycle after cycle until ``seconds`` have passed."""
    lock = threading.Lock()
    counter = iter(range(first_index, sys.maxsize))
    done: list[Cycle] = []
    stop_at = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < stop_at:
            with lock:
                index = next(counter)
            cycle = workload.run(workload.plan(index))
            with lock:
                done.append(cycle)
            if on_cycle is not None:
                on_cycle(cycle)

    threads = [threading.Thread(target=worker, name=f"soak-{i}") for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(done, key=lambda c: c.index)


# --- the verdict --------------------------------------------------------------------------------------


#: The promises a run is judged on; each maps to the violations found (all must be empty).
PROMISES = (
    "no_duplicate_jobs",
    "every_attempt_terminal",
    "transient_never_permanent",
    "permanent_never_retryable",
    "no_result_lost",
    "no_service_errors",
)


@dataclass
class Verdict:
    """What a run did and, per promise, the violations found (every list must be empty)."""

    cycles: int = 0
    attempts: int = 0
    jobs: int = 0
    duplicates: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    #: Retryable failures seen on the way (a CreateTask RPC error, BigQuery unreachable past the budget).
    retryable: Counter[str] = field(default_factory=Counter)
    rpc_errors: Counter[str] = field(default_factory=Counter)
    unreachable_polls: int = 0
    reused: int = 0
    results_checked: int = 0
    #: CreateTasks re-sent (a lost response), and those whose second answer differed from the first.
    resends: int = 0
    resends_differing: int = 0
    #: ``jobs.get`` lookups of predicted job ids, and the seconds the whole verification took.
    lookups: int = 0
    verify_seconds: float = 0.0
    #: Jobs carrying the run's ``flyte_execution`` label, counted by a full listing (``None``: not swept).
    swept: int | None = None
    sweep_seconds: float = 0.0
    #: Seconds of the job lookups and of reading the result tables back.
    lookup_seconds: float = 0.0
    results_seconds: float = 0.0
    broken: dict[str, list[str]] = field(default_factory=lambda: {p: [] for p in PROMISES})

    @property
    def violations(self) -> list[str]:
        return [f"{promise}: {v}" for promise, found in self.broken.items() for v in found]

    def summary(self) -> str:
        lines = [
            f"cycles {self.cycles}, attempts {self.attempts}, jobs {self.jobs}, duplicates {self.duplicates}",
            f"verified in {self.verify_seconds:.1f}s: {self.lookups} jobs.get of predicted ids in "
            f"{self.lookup_seconds:.1f}s, result tables read in {self.results_seconds:.1f}s"
            + ("" if self.swept is None else f"; label sweep: {self.swept} labelled jobs in {self.sweep_seconds:.1f}s"),
            f"re-sent CreateTasks: {self.resends}, answered differently: {self.resends_differing} "
            "(one answer retryable after the retry budget; same job)",
            f"final outcomes: {dict(sorted(self.outcomes.items()))}",
            f"retryable failures on the way: {dict(sorted(self.retryable.items())) or 'none'}",
            f"gRPC errors: {dict(sorted(self.rpc_errors.items())) or 'none'}",
            f"polls with BigQuery unreachable: {self.unreachable_polls}; jobs reused by a later attempt: "
            f"{self.reused}; result tables read back: {self.results_checked}",
            f"violations: {len(self.violations)}",
        ]
        lines += [f"  - {v}" for v in self.violations[:20]]
        return "\n".join(lines)


_UNAVAILABLE = "unavailable"  # the connector's message when BigQuery stayed unreachable past the budget


def _expected_final(kind: str) -> set[int]:
    if kind == "ok":
        return {TaskExecution.SUCCEEDED}
    if kind == "delete":
        return {TaskExecution.SUCCEEDED, TaskExecution.ABORTED}
    return {TaskExecution.FAILED}


def verify(
    cycles: list[Cycle],
    client: Any,
    workload: Workload,
    read_results: bool = True,
    sweep: bool = False,
    results_sample: int | None = None,
) -> Verdict:
    """Judge a run against the local BigQuery's own record of jobs and result tables.

    Jobs are found by id, not by listing: every attempt's job id is predicted
    (:meth:`Workload.predicted_job_ids`) and looked up with ``jobs.get``, so verifying costs a few calls per
    cycle however many jobs the emulator holds (its ``jobs.list`` has no label filter and answers all jobs
    every time; after a 10-minute soak that took longer than the soak). Every job id the service reported
    must be a predicted one, else the lookup would be blind and that is a violation. ``sweep`` also lists
    every job once and checks that the jobs labelled with the run's execution are exactly those found by id
    (nothing started under another id, no bad input submitted): affordable for a test-sized run.
    ``results_sample`` reads back at most that many result tables (a seeded sample; ``None``: all). Reading
    them is what dominates the verification on the local BigQuery (tens of milliseconds each).
    """
    from tests.helpers import jobs_by_id

    began = time.monotonic()
    verdict = Verdict(cycles=len(cycles))
    broken = verdict.broken
    predicted = {cycle.index: workload.predicted_job_ids(cycle) for cycle in cycles}
    wanted = [job_id for ids in predicted.values() for job_id in ids.values()]
    verdict.lookups = len(wanted)
    found = jobs_by_id(client, wanted)
    verdict.lookup_seconds = time.monotonic() - began
    jobs_by_node: dict[str, list[Any]] = defaultdict(list)
    for cycle in cycles:
        jobs_by_node[cycle.node] = [found[i] for i in predicted[cycle.index].values() if i in found]
        reported = {a.job_id for a in cycle.attempts if a.job_id}
        stray = reported - set(predicted[cycle.index].values())
        if stray:
            broken["no_duplicate_jobs"].append(f"cycle {cycle.index}: reported job ids not predicted: {sorted(stray)}")
    verdict.jobs = len(found)
    if sweep:
        swept_at = time.monotonic()
        labelled = [
            j for j in client.list_jobs(all_users=True) if (j.labels or {}).get("flyte_execution") == workload.execution
        ]
        verdict.swept = len(labelled)
        verdict.sweep_seconds = time.monotonic() - swept_at
        unexpected = sorted({j.job_id for j in labelled} - set(found))
        if unexpected:
            broken["no_duplicate_jobs"].append(
                f"{len(unexpected)} labelled job(s) at no predicted id: {unexpected[:10]}"
            )

    for cycle in cycles:
        final = cycle.final
        verdict.attempts += len(cycle.attempts)
        verdict.outcomes[f"{cycle.kind}:{PHASE(final.phase) if final and final.phase is not None else 'LOST'}"] += 1
        where = f"cycle {cycle.index} ({cycle.kind}, node {cycle.node})"
        for attempt in cycle.attempts:
            verdict.resends += attempt.resent
            verdict.resends_differing += attempt.resend_differed
            verdict.rpc_errors.update(attempt.rpc_errors)
            verdict.unreachable_polls += attempt.unreachable_polls
            verdict.reused += attempt.reused
            if attempt.phase == TaskExecution.RETRYABLE_FAILED:
                kind = "rpc" if attempt.rpc_errors else ("unavailable" if _UNAVAILABLE in attempt.message else "job")
                verdict.retryable[f"{cycle.kind}:{kind}"] += 1
                if cycle.kind == "bad_input" or kind == "job":
                    broken["permanent_never_retryable"].append(f"{where}: retryable: {attempt.message[:200]}")
            for error in attempt.rpc_errors:
                if not error.startswith("DeleteTask:"):  # propeller retries a failed delete; so do we
                    broken["no_service_errors"].append(f"{where}: attempt {attempt.number}: {error}")
        if final is None or final.phase is None:
            reason = final.message if final else "no attempt"
            broken["every_attempt_terminal"].append(f"{where}: never reached a terminal phase ({reason})")
        elif final.phase == TaskExecution.RETRYABLE_FAILED:
            pass  # every attempt was retryable: Flyte gives up after its retries; allowed, counted above
        elif final.phase not in _expected_final(cycle.kind):
            promise = "transient_never_permanent" if cycle.kind in ("ok", "delete") else "permanent_never_retryable"
            broken[promise].append(f"{where}: ended {PHASE(final.phase)}: {final.message[:200]}")

        jobs = jobs_by_node.get(cycle.node, [])
        ids = sorted(j.job_id for j in jobs)
        for job in jobs:
            labels = job.labels or {}
            if (labels.get("flyte_execution"), labels.get("flyte_node")) != (workload.execution, cycle.node):
                broken["no_duplicate_jobs"].append(f"{where}: job {job.job_id} carries labels {labels}")
        # A node of a succeeding query never needs a second job: attempt N reuses an earlier attempt's job.
        duplicated = max(0, len(jobs) - 1) if cycle.kind in ("ok", "delete") else 0
        verdict.duplicates += duplicated
        if duplicated:
            broken["no_duplicate_jobs"].append(f"{where}: {duplicated} duplicate job(s): {ids}")
        if cycle.kind in ("ok", "delete") and final is not None and final.phase != TaskExecution.RETRYABLE_FAILED:
            if len(jobs) != 1:
                broken["no_duplicate_jobs"].append(f"{where}: {len(jobs)} jobs, expected exactly 1: {ids}")
            elif final.job_id and jobs[0].job_id != final.job_id:
                broken["no_result_lost"].append(f"{where}: reported job {final.job_id}, BigQuery holds {ids}")
        if cycle.kind == "bad_input" and jobs:
            broken["no_duplicate_jobs"].append(f"{where}: bad input was submitted anyway: {ids}")
        if cycle.kind == "failing" and len(jobs) > len(cycle.attempts):
            broken["no_duplicate_jobs"].append(f"{where}: {len(jobs)} jobs for {len(cycle.attempts)} attempts")

    if read_results:
        reading = time.monotonic()
        _check_results(cycles, client, verdict, results_sample, workload.seed)
        verdict.results_seconds = time.monotonic() - reading
    verdict.verify_seconds = time.monotonic() - began
    return verdict


def _check_results(cycles: list[Cycle], client: Any, verdict: Verdict, sample: int | None, seed: int) -> None:
    """Every successful ``ok`` cycle's result table (or a seeded sample of ``sample``) holds its own row:
    nothing lost, nothing swapped."""
    wanted = [c for c in cycles if c.kind == "ok" and c.final_phase == TaskExecution.SUCCEEDED]
    if sample is not None and len(wanted) > sample:
        wanted = random.Random(seed).sample(wanted, sample)

    def rows(cycle: Cycle) -> tuple[Cycle, Any]:
        if not cycle.results_uri:
            return cycle, "no results output"
        table = cycle.results_uri.removeprefix("bq://").replace(":", ".")
        try:
            return cycle, [dict(r) for r in client.list_rows(table)]
        except Exception as e:  # reported as a violation below
            return cycle, f"{type(e).__name__}: {e}"

    with ThreadPoolExecutor(8) as pool:
        for cycle, found in pool.map(rows, wanted):
            verdict.results_checked += 1
            if found != [{"n": cycle.n}]:
                verdict.broken["no_result_lost"].append(f"cycle {cycle.index}: {cycle.results_uri} holds {found!r}")


# --- the service process ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessStats:
    rss_kb: int
    fds: int
    threads: int

    def __str__(self) -> str:
        return f"RSS {self.rss_kb / 1024:.1f} MiB, {self.fds} open fds, {self.threads} threads"


def process_stats(pid: int) -> ProcessStats:
    """RSS (``VmRSS``), open file descriptors and threads of a live process, from /proc."""
    fields: dict[str, str] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return ProcessStats(
        rss_kb=int(fields["VmRSS"].split()[0]),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=int(fields["Threads"]),
    )


# --- make soak ----------------------------------------------------------------------------------------


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=_env_number("SOAK_SECONDS", 600))
    parser.add_argument("--concurrency", type=int, default=int(_env_number("SOAK_CONCURRENCY", 16)))
    parser.add_argument("--fault-rate", type=float, default=_env_number("SOAK_FAULT_RATE", 0.2))
    parser.add_argument("--seed", type=int, default=int(_env_number("SOAK_SEED", 7)))
    parser.add_argument("--retry-seconds", type=float, default=_env_number("SOAK_RETRY_SECONDS", 4))
    parser.add_argument("--warmup", type=int, default=int(_env_number("SOAK_WARMUP_CYCLES", 200)))
    parser.add_argument(
        "--results-sample",
        type=int,
        default=int(_env_number("SOAK_RESULTS_SAMPLE", 500)),
        help="result tables read back after the run, a seeded sample (0: all)",
    )
    parser.add_argument(
        "--sweep",
        action=argparse.BooleanOptionalAction,
        default=bool(_env_number("SOAK_SWEEP", 0)),
        help="also list every job once to check that none carries the run's label at an unpredicted id",
    )
    args = parser.parse_args(argv)
    # A SIGTERM (``timeout``, CI) unwinds like Ctrl-C, so the service, proxy and emulator are stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    from flytekitplugins.bigquery.testing import Emulator

    print(
        f"soak: {args.seconds:.0f}s at concurrency {args.concurrency}, fault rate {args.fault_rate:.0%} "
        f"(seed {args.seed}), retry budget {args.retry_seconds:g}s",
        flush=True,
    )
    with Emulator() as emulator:
        os.environ.update(emulator.env())
        with FaultProxy(emulator.rest_url) as proxy:
            env = {
                "BIGQUERY_EMULATOR_HOST": proxy.url,
                "FLYTEKITPLUGINS_BIGQUERY_RETRY_SECONDS": f"{args.retry_seconds:g}",
            }
            with ServiceProcess(env) as service, grpc.insecure_channel(service.target, options=GRPC_OPTIONS) as ch:
                execution = f"soak{uuid.uuid4().hex[:12]}"
                workload = Workload(AsyncAgentServiceStub(ch), emulator.project, execution, seed=args.seed)
                proxy.chaos(args.fault_rate, seed=args.seed, faults=CHAOS_FAULTS)
                warm = run_cycles(workload, range(args.warmup), args.concurrency)
                time.sleep(1)
                start = process_stats(service.pid)
                print(f"after {len(warm)} warm-up cycles: service {start}", flush=True)

                progress = {"done": 0, "at": time.monotonic()}

                def tick(cycle: Cycle) -> None:
                    progress["done"] += 1
                    if time.monotonic() - progress["at"] >= 30:
                        progress["at"] = time.monotonic()
                        print(f"  {progress['done']} cycles, service {process_stats(service.pid)}", flush=True)

                began = time.monotonic()
                cycles = run_for(workload, args.seconds, args.concurrency, first_index=args.warmup, on_cycle=tick)
                elapsed = time.monotonic() - began
                time.sleep(1)
                end = process_stats(service.pid)
                alive = service._proc is not None and service._proc.poll() is None
                proxy.chaos(0, seed=0)
                client = emulator.client()
                try:
                    sample = args.results_sample or None
                    verdict = verify(warm + cycles, client, workload, sweep=args.sweep, results_sample=sample)
                finally:
                    client.close()
                injected = dict(sorted((f"{e} {k}", n) for (e, k), n in proxy.injected_at.items()))
                seen = dict(sorted(proxy.seen.items()))
                code = service.stop()

    growth = (end.rss_kb - start.rss_kb) / start.rss_kb
    print()
    print(f"throughput: {len(cycles)} cycles in {elapsed:.0f}s = {len(cycles) / elapsed:.1f} cycles/s")
    print(verdict.summary())
    print(f"BigQuery requests: {seen}")
    print(f"faults injected ({sum(injected.values())}): {injected}")
    print(f"service at start: {start}")
    print(f"service at end:   {end}  (RSS {growth:+.1%})")
    print(f"service alive until stopped: {alive}; exit code on SIGTERM: {code}")
    crashes = (not alive) + sum(n for e, n in verdict.rpc_errors.items() if e.endswith((":UNAVAILABLE", ":UNKNOWN")))
    print(
        f"figures: {verdict.cycles} cycles ({len(cycles)} timed), {sum(injected.values())} faults, "
        f"{verdict.duplicates} duplicates, {crashes} crashes, RSS {start.rss_kb / 1024:.1f} -> "
        f"{end.rss_kb / 1024:.1f} MiB ({growth:+.1%}), fds {start.fds} -> {end.fds}, "
        f"verified in {verdict.verify_seconds:.1f}s"
    )
    ok = not verdict.violations and verdict.duplicates == 0 and alive and code == 0 and abs(growth) <= 0.10
    print("SOAK PASSED" if ok else "SOAK FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
