"""Two connector service replicas behind one client: a replica killed mid-load, and the graceful drain.

The connector is stateless (everything about a job travels in its metadata) and job ids are deterministic,
so any replica can answer any call of any task. Here two ``python -m flytekitplugins.bigquery.service``
processes serve the same local BigQuery (through the fault proxy, which only adds latency, so that calls are
in flight when a replica dies), and :class:`SpreadClient` alternates calls between them as a load balancer
does: a task's ``CreateTask`` and its ``GetTask``s land on different replicas. A call that fails on one
replica is re-sent to the other, as Flyte's propeller re-sends a failed call.

* **SIGKILL mid-load**: 40 tasks (succeeding and failing queries), 8 in flight; one replica is killed while
  it has calls in flight. Every task must reach its right phase (SUCCEEDED with its own row, or FAILED),
  nothing may be lost or stuck, and each execution must hold exactly one job (counted by its
  ``flyte_execution`` label in the local BigQuery): a ``CreateTask`` that died with its replica after
  inserting the job is adopted (409) by its re-send, not doubled.
* **SIGTERM drain**: with ``GetTask`` and ``CreateTask`` calls in flight, SIGTERM stops the replica within its
  grace period, every call in flight completes normally, a new call is refused, and the exit status is 0.

Both print their figures (run with ``-s`` to see them).
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import grpc
import pytest
from flyte_bigquery_core.testing.faultproxy import FaultProxy
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service.agent_pb2_grpc import AsyncAgentServiceStub
from google.cloud import bigquery

from flytekitplugins.bigquery.metadata import BigQueryMetadata
from flytekitplugins.bigquery.testing.service_process import GRPC_OPTIONS, ServiceProcess

from . import helpers as h

pytestmark = pytest.mark.integration

TASKS = 40
#: Every fourth task queries a missing dataset: BigQuery fails its job, so the task must end FAILED.
FAILING_EVERY = 4
IN_FLIGHT = 8
#: The replica is killed once this many tasks are created and it has calls in flight.
KILL_AFTER_CREATES = 12
#: Latency the proxy adds to BigQuery calls, so that calls are in flight when a replica dies. On
#: ``jobs.insert`` it is added *after* forwarding: the job exists while its CreateTask is still unanswered.
LATENCY = 0.2
#: Tries of one call over the replicas (alternating) before the client gives up, and the pause between them.
CALL_TRIES = 6
RETRY_PAUSE = 0.1
#: What a dead or stopping replica answers; other errors are the connector's and fail the test.
RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE})
#: A task not terminal after this long is stuck; the whole load must end well within the test's budget.
TASK_DEADLINE = 40.0
LOAD_BUDGET = 60.0
#: The drain test: calls in flight at SIGTERM, the latency that keeps them there, and the launcher's grace.
DRAIN_GETS = 6
DRAIN_CREATES = 4
DRAIN_LATENCY = 1.5
GRACE = 5.0


@dataclass
class Failover:
    """One call that failed on a replica and was re-sent."""

    method: str
    replica: int
    code: str
    at: float
    recovered_after: float | None = None


@dataclass
class SpreadClient:
    """Round-robin over the replicas' stubs, one per call (a task's create and gets alternate between them);
    a call failing with :data:`RETRIED` is re-sent to the next replica, up to :data:`CALL_TRIES` times."""

    stubs: list[AsyncAgentServiceStub]
    failovers: list[Failover] = field(default_factory=list)
    calls: Counter[int] = field(default_factory=Counter)
    in_flight: Counter[int] = field(default_factory=Counter)
    _turn: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, method: str, request: Any, timeout: float = 30) -> Any:
        with self._lock:
            first = next(self._turn)
        failed: list[Failover] = []
        for n in range(CALL_TRIES):
            replica = (first + n) % len(self.stubs)
            with self._lock:
                self.in_flight[replica] += 1
                self.calls[replica] += 1
            try:
                answer = getattr(self.stubs[replica], method)(request, timeout=timeout)
            except grpc.RpcError as e:
                if e.code() not in RETRIED:
                    raise
                failed.append(Failover(method, replica, e.code().name, time.monotonic()))
                time.sleep(RETRY_PAUSE * n)
                continue
            finally:
                with self._lock:
                    self.in_flight[replica] -= 1
            done = time.monotonic()
            for f in failed:
                f.recovered_after = done - f.at
            with self._lock:
                self.failovers += failed
            return answer
        with self._lock:
            self.failovers += failed
        raise AssertionError(f"{method} failed on every replica: {[f.code for f in failed]}")


@dataclass
class Task:
    index: int
    execution: str
    failing: bool
    job_id: str = ""
    phase: int | None = None
    message: str = ""
    rows: Any = None


def _replicas(env: dict[str, str], count: int) -> list[ServiceProcess]:
    """``count`` services started side by side (each takes a couple of seconds)."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: ServiceProcess(env).start(), range(count)))


@pytest.fixture
def slow_bigquery(faults: FaultProxy) -> FaultProxy:
    """The proxy adding :data:`LATENCY` to ``jobs.insert`` (after forwarding) and ``jobs.get``."""
    faults.add_rule("delay", "POST", h.INSERT_PATH, count=None, seconds=LATENCY, after=True)
    faults.add_rule("delay", "GET", h.GET_JOB_PATH, count=None, seconds=LATENCY)
    return faults


@pytest.fixture
def replica_env(proxy: FaultProxy) -> dict[str, str]:
    return {"BIGQUERY_EMULATOR_HOST": proxy.url, "FLYTEKITPLUGINS_BIGQUERY_RETRY_SECONDS": h.SERVICE_RETRY_SECONDS}


def _run_task(client: SpreadClient, task: Task, ok_task: Any, failing_task: Any, bq: bigquery.Client) -> Task:
    """Create, poll to a terminal phase, then delete (a no-op on a finished job) and poll once more."""
    if task.failing:
        request = h.create_request(failing_task, task.execution)
    else:
        request = h.create_request(ok_task, task.execution, n=task.index)
    meta = client.call("CreateTask", request).resource_meta
    task.job_id = BigQueryMetadata.decode(meta).job_id
    get = agent_pb2.GetTaskRequest(task_category=h.CATEGORY, resource_meta=meta)
    deadline = time.monotonic() + TASK_DEADLINE
    resource = client.call("GetTask", get).resource
    while resource.phase not in h.TERMINAL and time.monotonic() < deadline:
        time.sleep(0.1)
        resource = client.call("GetTask", get).resource
    client.call("DeleteTask", agent_pb2.DeleteTaskRequest(task_category=h.CATEGORY, resource_meta=meta))
    after = client.call("GetTask", get).resource
    task.phase, task.message = after.phase, after.message
    if after.phase != resource.phase:
        task.message = f"phase changed after delete: {resource.phase} -> {after.phase}"
        task.phase = None
    if task.phase == TaskExecution.SUCCEEDED:
        task.rows = h.rows_of(bq, h.results_uri(after))
    return task


def test_replica_killed_mid_load_loses_no_task_and_doubles_no_job(
    emulator: Any, bq_client: bigquery.Client, slow_bigquery: FaultProxy, replica_env: dict[str, str]
) -> None:
    ok_task = h.query_task("SELECT @n AS n", emulator.project, inputs={"n": int})
    failing_task = h.query_task("SELECT * FROM replicas_missing_dataset.t", emulator.project)
    tasks = [Task(i, h.new_execution(), failing=i % FAILING_EVERY == FAILING_EVERY - 1) for i in range(TASKS)]
    replicas = _replicas(replica_env, 2)
    channels = [grpc.insecure_channel(r.target, options=GRPC_OPTIONS) for r in replicas]
    client = SpreadClient([AsyncAgentServiceStub(c) for c in channels])
    victim = replicas[0]
    killed: dict[str, Any] = {}
    load_done = threading.Event()

    def killer() -> None:
        """SIGKILL replica 0 once the load is under way and it has calls in flight."""
        while not load_done.is_set():
            created = sum(1 for t in tasks if t.job_id)
            with client._lock:
                busy = client.in_flight[0]
            if created >= KILL_AFTER_CREATES and busy >= 2:
                killed.update(at=time.monotonic(), in_flight=busy, created=created)
                os.kill(victim.pid, signal.SIGKILL)
                return
            time.sleep(0.005)

    began = time.monotonic()
    try:
        kill_thread = threading.Thread(target=killer, name="killer")
        kill_thread.start()
        try:
            with ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="task") as pool:
                done = list(pool.map(lambda t: _run_task(client, t, ok_task, failing_task, bq_client), tasks))
        finally:
            load_done.set()
            kill_thread.join()
        elapsed = time.monotonic() - began
        survivor_alive = replicas[1]._proc is not None and replicas[1]._proc.poll() is None
    finally:
        for channel in channels:
            channel.close()
        codes = [r.stop() for r in replicas]
        for r in replicas:
            r.cleanup()

    jobs = h.jobs_by_execution(bq_client, [t.execution for t in tasks])
    phases = Counter(("failing" if t.failing else "ok", TaskExecution.Phase.Name(t.phase or 0)) for t in done)
    duplicates = sum(max(0, len(j) - 1) for j in jobs.values())
    after_kill = [f for f in client.failovers if "at" in killed and f.at >= killed["at"]]
    recovery = max((f.recovered_after or 0.0 for f in after_kill), default=0.0)
    # jobs.insert answered 409: a create re-sent after its job was started (by the victim) adopted it.
    adopted = sum(1 for e in slow_bigquery.exchanges("jobs.insert") if e.upstream_status == 409)
    print(
        f"\nreplicas: {TASKS} tasks in {elapsed:.1f}s, calls per replica {dict(client.calls)}; phases "
        f"{dict(sorted(Counter({f'{k}:{p}': n for (k, p), n in phases.items()}).items()))}; jobs "
        f"{sum(len(j) for j in jobs.values())}, duplicates {duplicates}; SIGKILL after {killed.get('created')} "
        f"creates with {killed.get('in_flight')} calls in flight on the victim; {len(after_kill)} calls failed "
        f"over ({dict(Counter(f'{f.method}:{f.code}' for f in after_kill))}), each answered by the other replica "
        f"within {recovery:.2f}s; {adopted} re-sent creates adopted their job (409); exit codes {codes}"
    )

    assert killed, "the victim was never busy enough to be killed mid-load"
    assert codes[0] == -signal.SIGKILL and codes[1] == 0 and survivor_alive
    assert after_kill, "no call was in flight on, or sent to, the killed replica"
    assert all(f.recovered_after is not None for f in after_kill)
    assert elapsed < LOAD_BUDGET
    for task in done:
        where = f"task {task.index} ({task.execution})"
        if task.failing:
            assert task.phase == TaskExecution.FAILED, (where, task.message)
            assert "replicas_missing_dataset" in task.message, (where, task.message)
        else:
            assert task.phase == TaskExecution.SUCCEEDED, (where, task.message)
            assert task.rows == [{"n": task.index}], where
        assert [j.job_id for j in jobs[task.execution]] == [task.job_id], where
    assert duplicates == 0


@dataclass
class InFlight:
    """A call started on a thread before SIGTERM: its answer or error, and when it ended."""

    answer: Any = None
    error: str | None = None
    ended: float = 0.0


def _in_background(call: Callable[[], Any]) -> tuple[threading.Thread, InFlight]:
    result = InFlight()

    def run() -> None:
        try:
            result.answer = call()
        except grpc.RpcError as e:
            result.error = f"{e.code().name}: {e.details()}"
        finally:
            result.ended = time.monotonic()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_sigterm_drains_the_calls_in_flight_then_exits_cleanly(
    emulator: Any, bq_client: bigquery.Client, faults: FaultProxy, replica_env: dict[str, str]
) -> None:
    task = h.query_task("SELECT @n AS n", emulator.project, inputs={"n": int})
    [replica] = _replicas(replica_env, 1)
    try:
        with grpc.insecure_channel(replica.target, options=GRPC_OPTIONS) as channel:
            stub = AsyncAgentServiceStub(channel)
            finished = []
            for n in range(DRAIN_GETS):
                meta = stub.CreateTask(h.create_request(task, h.new_execution(), n=n), timeout=30).resource_meta
                assert h.poll(stub, meta).phase == TaskExecution.SUCCEEDED
                finished.append(meta)
            # From now on every BigQuery call the replica makes takes DRAIN_LATENCY: its calls stay in flight.
            faults.add_rule("delay", "GET", h.GET_JOB_PATH, count=None, seconds=DRAIN_LATENCY)
            faults.add_rule("delay", "POST", h.INSERT_PATH, count=None, seconds=DRAIN_LATENCY, after=True)
            executions = [h.new_execution() for _ in range(DRAIN_CREATES)]
            creates = [h.create_request(task, e, n=n) for n, e in enumerate(executions)]
            baseline = faults.seen["jobs.get"] + faults.seen["jobs.insert"]
            calls = [_in_background(partial(h.get_resource, stub, meta)) for meta in finished] + [
                _in_background(partial(stub.CreateTask, request, timeout=30)) for request in creates
            ]
            deadline = time.monotonic() + 10
            # Every call has reached BigQuery (the proxy), where it waits DRAIN_LATENCY.
            while faults.seen["jobs.get"] + faults.seen["jobs.insert"] - baseline < len(calls):
                assert time.monotonic() < deadline, dict(faults.seen)
                time.sleep(0.01)
            sent_term = time.monotonic()
            os.kill(replica.pid, signal.SIGTERM)
            time.sleep(0.2)
            with pytest.raises(grpc.RpcError) as refused:  # a call arriving while the replica drains
                stub.GetTask(agent_pb2.GetTaskRequest(task_category=h.CATEGORY, resource_meta=finished[0]), timeout=5)
            assert replica._proc is not None
            code = replica._proc.wait(GRACE + 10)
            exited = time.monotonic()
            for thread, _ in calls:
                thread.join(30)
    finally:
        faults.clear()
        replica.cleanup()

    drain = exited - sent_term
    results = [r for _, r in calls]
    last_answer = max(r.ended for r in results) - sent_term
    print(
        f"\ndrain: SIGTERM with {len(calls)} calls in flight ({DRAIN_GETS} GetTask, {DRAIN_CREATES} CreateTask, "
        f"BigQuery latency {DRAIN_LATENCY}s): exited {code} after {drain:.2f}s, last call answered "
        f"{last_answer:.2f}s after SIGTERM; errors {[r.error for r in results if r.error]}; new call refused "
        f"with {refused.value.code().name}"
    )
    assert code == 0
    assert [r.error for r in results] == [None] * len(results)
    assert [r.answer.phase for r in results[:DRAIN_GETS]] == [TaskExecution.SUCCEEDED] * DRAIN_GETS
    created = [BigQueryMetadata.decode(r.answer.resource_meta) for r in results[DRAIN_GETS:]]
    assert all(m.job_id and m.error is None for m in created), created
    jobs = h.jobs_by_execution(bq_client, executions)
    assert sorted(j.job_id for e in executions for j in jobs[e]) == sorted(m.job_id for m in created)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert DRAIN_LATENCY * 0.5 < drain < GRACE + 1.0
