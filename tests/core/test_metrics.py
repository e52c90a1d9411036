"""Our Prometheus metrics, as the default registry exports them, over scripted BigQuery answers.

Each scenario runs one engine call and compares *every* ``flyte_bigquery_*`` counter and histogram count
that moved against the expected deltas, so a metric recorded twice, under the wrong label, or not at all
fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from flyte_bigquery_core import metrics
from flyte_bigquery_core.engine import QueryEngine
from flyte_bigquery_core.errors import BigQueryPluginError
from flyte_bigquery_core.handle import JobHandle
from flyte_bigquery_core.identity import ExecutionIdentity
from flyte_bigquery_core.jobs_api import JobsApi
from flyte_bigquery_core.planning import QueryPlan, QueryTask, plan_query
from flyte_bigquery_core.retry import call_with_retry
from flyte_bigquery_core.settings import Settings
from flyte_bigquery_core.testing.scripted import Answer, ScriptedSend, error_body, scripted_transport
from google.api_core import exceptions as api_exceptions
from prometheus_client import REGISTRY

PREFIX = "flyte_bigquery_"
#: Samples that move with every recording and say nothing more than ``_count`` (or are timestamps).
SKIPPED_SUFFIXES = ("_bucket", "_sum", "_created")


def _samples() -> dict[str, float]:
    """Our samples in the default registry, as ``name{label=value,...}`` (prefix dropped) → value."""
    found = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name.startswith(PREFIX) and not sample.name.endswith(SKIPPED_SUFFIXES):
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                found[f"{sample.name.removeprefix(PREFIX)}{{{labels}}}"] = sample.value
    return found


def _deltas(action: Callable[[], Any]) -> dict[str, float]:
    before = _samples()
    action()
    return {key: value - before.get(key, 0.0) for key, value in _samples().items() if value != before.get(key, 0.0)}


def _plan(custom: dict[str, Any] | None = None, attempt: int = 0, output: str | None = None) -> QueryPlan:
    task = QueryTask("q", {"ProjectID": "proj", "Location": "EU", **(custom or {})}, "SELECT 1", output)
    identity = ExecutionIdentity("flytesnacks", "development", "exec1", "n0", "wf.q", attempt)
    return plan_query(task, {}, identity, Settings(), 1_700_000_000.0)


def _job(state: str, job_id: str = "j", **extra: Any) -> dict[str, Any]:
    reference = {"projectId": "proj", "jobId": job_id, "location": "EU"}
    return {"jobReference": reference, "status": {"state": state}, **extra}


def _billed(value: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
    job = _job("DONE", statistics={"query": {"totalBytesBilled": value}})
    if error:
        job["status"]["errorResult"] = error
    return job


def _handle(**fields: Any) -> JobHandle:
    return JobHandle(**{"job_id": "j", "project": "proj", "location": "EU", **fields})


Step = Callable[[QueryEngine[JobHandle]], Awaitable[Any]]


def _submit(plan: QueryPlan) -> Step:
    return lambda engine: engine.submit(plan)


def _observe(handle: JobHandle, times: int = 1) -> Step:
    async def run(engine: QueryEngine[JobHandle]) -> None:
        for _ in range(times):
            await engine.observe(handle)

    return run


def _api(method: str, status: int | str, count: int = 1) -> dict[str, float]:
    return {f"api_request_duration_seconds_count{{method={method},status={status}}}": count}


def _jobs(result: str) -> dict[str, float]:
    return {f"job_submissions_total{{result={result}}}": 1}


def _retries(method: str, reason: str) -> dict[str, float]:
    return {f"api_retries_total{{method={method},reason={reason}}}": 1}


EARLIER = _plan(attempt=0).job_id
DESTINATION = {"query": {"destinationTable": {"projectId": "proj", "datasetId": "d", "tableId": "t"}}}
CONFLICT = Answer(409, error_body(409, "duplicate"))
SCRIPT_JOB = _job("DONE", statistics={"query": {"statementType": "SCRIPT"}})

SCENARIOS: list[tuple[str, list[Answer | BaseException], Step, dict[str, float]]] = [
    (
        "created",
        [Answer(200, _job("RUNNING"))],
        _submit(_plan()),
        {**_jobs("created"), **_api("jobs.insert", 200)},
    ),
    (
        "adopted after a 409",
        [CONFLICT, Answer(200, _job("RUNNING"))],
        _submit(_plan()),
        {**_jobs("adopted"), **_api("jobs.insert", 409), **_api("jobs.get", 200)},
    ),
    (
        "adopted once visible: the 404 after the 409 is a retry",
        [CONFLICT, Answer(404, error_body(404, "notFound")), Answer(200, _job("RUNNING"))],
        _submit(_plan()),
        {
            **_jobs("adopted"),
            **_api("jobs.insert", 409),
            **_api("jobs.get", 404),
            **_api("jobs.get", 200),
            **_retries("jobs.get", "notFound"),
        },
    ),
    (
        "reused from an earlier attempt",
        [Answer(200, _job("RUNNING", EARLIER))],
        _submit(_plan(attempt=1)),
        {**_jobs("reused"), **_api("jobs.get", 200)},
    ),
    (
        "an earlier attempt's failed job is not reused",
        [Answer(200, _billed("0", {"reason": "invalidQuery"})), Answer(200, _job("RUNNING"))],
        _submit(_plan(attempt=1)),
        {**_jobs("created"), **_api("jobs.get", 200), **_api("jobs.insert", 200)},
    ),
    (
        "refused by the cost guard",
        [Answer(200, {"statistics": {"query": {"totalBytesProcessed": "4096"}}})],
        _submit(_plan({"MaximumBytes": "1 KiB"})),
        {"cost_guard_refusals_total{}": 1, **_api("jobs.insert.dryRun", 200)},
    ),
    (
        "under the cost guard's limit",
        [Answer(200, {"statistics": {"query": {"totalBytesProcessed": "10"}}}), Answer(200, _job("RUNNING"))],
        _submit(_plan({"MaximumBytes": "1 KiB"})),
        {**_jobs("created"), **_api("jobs.insert.dryRun", 200), **_api("jobs.insert", 200)},
    ),
    (
        "a dry-run task starts no job",
        [Answer(200, _job("DONE"))],
        _submit(_plan({"QueryJobConfig": {"dryRun": True, "query": {}}})),
        _api("jobs.insert.dryRun", 200),
    ),
    (
        "retried on BigQuery's reason",
        [Answer(403, error_body(403, "rateLimitExceeded")), Answer(200, _job("RUNNING"))],
        _submit(_plan()),
        {
            **_jobs("created"),
            **_api("jobs.insert", 403),
            **_api("jobs.insert", 200),
            **_retries("jobs.insert", "rateLimitExceeded"),
        },
    ),
    (
        "retried on the status when the reason is not an identifier",
        [Answer(503, error_body(503, "not a reason!")), Answer(200, _job("RUNNING"))],
        _submit(_plan()),
        {**_jobs("created"), **_api("jobs.insert", 503), **_api("jobs.insert", 200), **_retries("jobs.insert", "503")},
    ),
    (
        "retried on a transport error, timed by its class",
        [ConnectionResetError(), Answer(200, _job("RUNNING"))],
        _submit(_plan()),
        {
            **_jobs("created"),
            **_api("jobs.insert", "ConnectionResetError"),
            **_api("jobs.insert", 200),
            **_retries("jobs.insert", "ConnectionResetError"),
        },
    ),
    (
        "a permanent rejection is timed, not retried",
        [Answer(400, error_body(400, "invalidQuery"))],
        _submit(_plan()),
        _api("jobs.insert", 400),
    ),
    (
        "the managed results dataset: insert, then get after a 409",
        [CONFLICT, Answer(200, {"location": "EU"}), Answer(200, _job("RUNNING"))],
        _submit(_plan({"ResultsDataset": "res"}, output="results")),
        {**_jobs("created"), **_api("datasets.insert", 409), **_api("datasets.get", 200), **_api("jobs.insert", 200)},
    ),
    (
        "a running job bills nothing yet",
        [Answer(200, _job("RUNNING", statistics={"query": {"totalBytesBilled": "5"}}))],
        _observe(_handle()),
        _api("jobs.get", 200),
    ),
    (
        "a finished job's bytes billed",
        [Answer(200, _billed("1048576"))],
        _observe(_handle()),
        {"bytes_billed_total{}": 1048576, **_api("jobs.get", 200)},
    ),
    (
        "a failed job's bytes billed count too",
        [Answer(200, _billed("10", {"reason": "invalidQuery", "message": "x"}))],
        _observe(_handle()),
        {"bytes_billed_total{}": 10, **_api("jobs.get", 200)},
    ),
    (
        "a cache hit reports no bytes billed",
        [Answer(200, _job("DONE", statistics={"query": {"cacheHit": True}}))],
        _observe(_handle()),
        _api("jobs.get", 200),
    ),
    (
        "stateless: every get that finds the job finished counts it",
        [Answer(200, _billed("7")), Answer(200, _billed("7"))],
        _observe(_handle(), times=2),
        {"bytes_billed_total{}": 14, **_api("jobs.get", 200, 2)},
    ),
    (
        "the result table's row count is a tables.get",
        [Answer(200, {**_billed("3"), "configuration": DESTINATION}), Answer(200, {"numRows": "2"})],
        _observe(_handle(output_name="results")),
        {"bytes_billed_total{}": 3, **_api("jobs.get", 200), **_api("tables.get", 200)},
    ),
    (
        "cancel",
        [Answer(200, {})],
        lambda engine: engine.cancel(_handle()),
        _api("jobs.cancel", 200),
    ),
    (
        "a script's statements are a jobs.list",
        [Answer(200, SCRIPT_JOB), Answer(200, {"jobs": []})],
        lambda engine: engine.log_lines(_handle()),
        {**_api("jobs.get", 200), **_api("jobs.list", 200)},
    ),
]


@pytest.mark.parametrize(("script", "step", "expected"), [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_each_call_records_exactly_its_metrics(
    script: list[Answer | BaseException], step: Step, expected: dict[str, float]
) -> None:
    send = ScriptedSend(script)

    async def no_sleep(seconds: float) -> None:
        return None

    engine = QueryEngine(JobsApi(scripted_transport(send), 5.0, sleep=no_sleep), JobHandle)

    def act() -> None:
        # Refusals and rejections are some scenarios' point; the deltas say what was recorded.
        with contextlib.suppress(BigQueryPluginError):
            asyncio.run(step(engine))

    assert _deltas(act) == expected
    assert send.remaining == 0


def test_latency_is_observed_in_seconds() -> None:
    before = REGISTRY.get_sample_value(f"{PREFIX}api_request_duration_seconds_sum", {"method": "m", "status": "200"})
    metrics.api_call("m", 200, 0.125)
    after = REGISTRY.get_sample_value(f"{PREFIX}api_request_duration_seconds_sum", {"method": "m", "status": "200"})
    assert after == pytest.approx((before or 0.0) + 0.125)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (api_exceptions.from_http_status(403, "x", errors=[{"reason": "rateLimitExceeded"}]), "rateLimitExceeded"),
        (api_exceptions.from_http_status(500, "x", errors=[{"reason": "backendError"}, {}]), "backendError"),
        (api_exceptions.from_http_status(503, "x"), "503"),
        (api_exceptions.from_http_status(503, "x", errors=[{"reason": "SELECT * FROM secret"}]), "503"),
        (api_exceptions.from_http_status(429, "x", errors=[{"reason": "r" * 41}]), "429"),
        (api_exceptions.from_http_status(429, "x", errors=["not a dict"]), "429"),
        (TimeoutError(), "TimeoutError"),
        (ConnectionResetError(), "ConnectionResetError"),
    ],
)
def test_the_retry_reason_is_a_bounded_label(error: BaseException, reason: str) -> None:
    assert metrics.retry_reason(error) == reason


@pytest.mark.parametrize(
    ("failures", "retried"),
    [
        ([], 0),
        ([ConnectionResetError()], 1),
        ([ConnectionResetError(), TimeoutError()], 2),
        ([ValueError("not retryable")], 0),  # raised at once: no retry, no callback
    ],
)
def test_on_retry_is_called_before_each_new_try(failures: list[BaseException], retried: int) -> None:
    pending = list(failures)
    seen: list[BaseException] = []

    async def call() -> str:
        if pending:
            raise pending.pop(0)
        return "ok"

    async def no_sleep(seconds: float) -> None:
        return None

    with contextlib.suppress(ValueError):
        asyncio.run(call_with_retry(call, 60.0, sleep=no_sleep, on_retry=seen.append))
    assert seen == failures[:retried]


def test_phases_start_at_zero_once_declared() -> None:
    metrics.declare_phases(["TEST_PHASE"])
    assert REGISTRY.get_sample_value(f"{PREFIX}phases_total", {"phase": "TEST_PHASE"}) == 0.0
    metrics.phase_returned("TEST_PHASE")
    assert REGISTRY.get_sample_value(f"{PREFIX}phases_total", {"phase": "TEST_PHASE"}) == 1.0


def test_importing_the_module_twice_records_into_the_same_metrics() -> None:
    """A second copy of the module (reload, another name on sys.path) must neither fail nor split the counts."""
    spec = importlib.util.spec_from_file_location("flyte_bigquery_metrics_again", metrics.__file__)
    assert spec is not None and spec.loader is not None
    again = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(again)
    assert again.JOBS is metrics.JOBS and again.BYTES_BILLED is metrics.BYTES_BILLED
    assert _deltas(lambda: again.bytes_billed(5)) == {"bytes_billed_total{}": 5}
