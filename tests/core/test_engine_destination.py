"""The result table recorded at create, and ``observe`` reading the job and its row count in one round trip."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from flyte_bigquery_core.engine import QueryEngine
from flyte_bigquery_core.handle import JobHandle
from flyte_bigquery_core.identity import ExecutionIdentity
from flyte_bigquery_core.jobs_api import JobsApi
from flyte_bigquery_core.planning import QueryPlan, QueryTask, plan_query
from flyte_bigquery_core.settings import Settings
from flyte_bigquery_core.status import Outcome
from flyte_bigquery_core.testing.scripted import Answer, ScriptedSend, error_body, scripted_transport
from flyte_bigquery_core.transport import Response

TABLE = {"projectId": "p", "datasetId": "d", "tableId": "t"}
TABLES_GET = "/bigquery/v2/projects/p/datasets/d/tables/t"


class GatedSend(ScriptedSend):
    """Answers like :class:`ScriptedSend`, but the first request's answer is held until a second request has
    arrived. Sequential calls would hold it for ``patience`` seconds in vain; ``held_in_vain`` tells."""

    def __init__(self, script: Iterable[Answer | BaseException], patience: float = 1.0) -> None:
        super().__init__(script)
        self.patience = patience
        self.held_in_vain = False
        self._second: asyncio.Event | None = None

    async def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> Response:
        second = self._second = self._second or asyncio.Event()
        index = len(self.requests)
        response = await super().__call__(method, url, headers, body, timeout)
        if index == 1:
            second.set()
        elif index == 0:
            try:
                await asyncio.wait_for(second.wait(), self.patience)
            except TimeoutError:
                self.held_in_vain = True
        return response


def _engine(send: ScriptedSend) -> QueryEngine[JobHandle]:
    async def no_sleep(seconds: float) -> None:
        return None

    return QueryEngine(JobsApi(scripted_transport(send), 1.0, sleep=no_sleep), JobHandle)


def _job(state: str, destination: dict[str, str] | None = TABLE, job_id: str = "j", **extra: Any) -> dict[str, Any]:
    configuration = {"query": {"destinationTable": destination}} if destination else {"query": {}}
    reference = {"projectId": "proj", "jobId": job_id, "location": "EU"}
    return {"jobReference": reference, "status": {"state": state}, "configuration": configuration, **extra}


def _handle(**fields: Any) -> JobHandle:
    return JobHandle(**{"job_id": "j", "project": "proj", "location": "EU", "output_name": "results", **fields})


def _plan(custom: dict[str, Any] | None = None, output_name: str | None = "results") -> QueryPlan:
    task = QueryTask("q", {"ProjectID": "proj", "Location": "EU", **(custom or {})}, "SELECT 1", output_name)
    identity = ExecutionIdentity("flytesnacks", "development", "exec1", "n0", "wf.q", 0)
    return plan_query(task, {}, identity, Settings(), 1_700_000_000.0)


# -- create: what BigQuery reported is recorded --------------------------------------------------------------


def test_the_managed_results_table_is_recorded() -> None:
    plan = _plan({"ResultsDataset": "res"})
    planned = plan.resource["configuration"]["query"]["destinationTable"]
    send = ScriptedSend([Answer(200, {}), Answer(200, _job("RUNNING", planned, plan.job_id))])
    handle = asyncio.run(_engine(send).submit(plan))
    assert handle.destination == f"proj:res.{plan.job_id}"
    assert JobHandle.decode(handle.encode()) == handle


@pytest.mark.parametrize(
    ("reported", "recorded"),
    [
        pytest.param(
            {"projectId": "proj", "datasetId": "_0a1b", "tableId": "anon2c3d"}, "proj:_0a1b.anon2c3d", id="anon"
        ),
        pytest.param(
            {"projectId": "example.com:x", "datasetId": "d", "tableId": "t"}, "example.com:x:d.t", id="domain"
        ),
        pytest.param(None, None, id="none-reported"),
        pytest.param({"projectId": "proj", "datasetId": "d"}, None, id="incomplete"),
    ],
)
def test_the_table_the_insert_answer_reports_is_recorded(reported: Any, recorded: str | None) -> None:
    plan = _plan()
    send = ScriptedSend([Answer(200, _job("RUNNING", reported, plan.job_id))])
    assert asyncio.run(_engine(send).submit(plan)).destination == recorded


def test_a_task_without_an_output_records_no_table() -> None:
    plan = _plan(output_name=None)
    send = ScriptedSend([Answer(200, _job("RUNNING", job_id=plan.job_id))])
    handle = asyncio.run(_engine(send).submit(plan))
    assert handle.destination is None and b"destination" not in handle.encode()


def test_an_adopted_job_records_the_table_jobs_get_reports() -> None:
    plan = _plan()
    send = ScriptedSend([Answer(409, error_body(409, "duplicate")), Answer(200, _job("DONE", job_id=plan.job_id))])
    assert asyncio.run(_engine(send).submit(plan)).destination == "p:d.t"


# -- observe: one round trip ----------------------------------------------------------------------------------


def test_both_requests_are_sent_before_either_answer_is_awaited() -> None:
    send = GatedSend([Answer(200, _job("DONE")), Answer(200, {"numRows": "42"})])
    observation = asyncio.run(_engine(send).observe(_handle(destination="p:d.t")))
    assert not send.held_in_vain
    assert [r.path.rsplit("/", 2)[-2] for r in send.requests] == ["jobs", "tables"]
    assert (observation.outcome, observation.output_uri) == (Outcome.SUCCEEDED, "bq://p:d.t")
    assert observation.info is not None and observation.info["total_rows"] == 42


def test_without_a_recorded_table_the_calls_stay_sequential() -> None:
    send = GatedSend([Answer(200, _job("DONE")), Answer(200, {"numRows": "42"})], patience=0.05)
    observation = asyncio.run(_engine(send).observe(_handle()))
    assert send.held_in_vain and send.requests[1].path == TABLES_GET
    assert observation.info is not None and observation.info["total_rows"] == 42


@pytest.mark.parametrize("state", ["PENDING", "RUNNING"])
def test_an_unfinished_jobs_row_count_is_ignored(state: str) -> None:
    send = ScriptedSend([Answer(200, _job(state)), Answer(200, {"numRows": "42"})])
    observation = asyncio.run(_engine(send).observe(_handle(destination="p:d.t")))
    assert observation.outcome in (Outcome.QUEUED, Outcome.RUNNING) and observation.output_uri is None
    assert observation.info is not None and observation.info["total_rows"] is None  # the stable schema keeps the key


def test_a_failed_job_reports_no_rows() -> None:
    failed = _job("DONE")
    failed["status"]["errorResult"] = {"reason": "invalidQuery", "message": "x"}
    send = ScriptedSend([Answer(200, failed), Answer(200, {"numRows": "42"})])
    observation = asyncio.run(_engine(send).observe(_handle(destination="p:d.t")))
    assert observation.outcome is Outcome.PERMANENT_FAILURE
    assert observation.info is not None and observation.info["total_rows"] is None  # the stable schema keeps the key


def test_rows_of_a_table_the_job_did_not_write_are_never_reported() -> None:
    send = ScriptedSend([Answer(200, _job("DONE")), Answer(200, {"numRows": "99"}), Answer(200, {"numRows": "42"})])
    observation = asyncio.run(_engine(send).observe(_handle(destination="proj:res.other")))
    assert [r.path for r in send.requests[1:]] == ["/bigquery/v2/projects/proj/datasets/res/tables/other", TABLES_GET]
    assert observation.output_uri == "bq://p:d.t"
    assert observation.info is not None and observation.info["total_rows"] == 42


def test_a_row_count_that_cannot_be_read_stays_best_effort() -> None:
    send = ScriptedSend([Answer(200, _job("DONE")), Answer(503, error_body(503, "backendError"))])
    observation = asyncio.run(_engine(send).observe(_handle(destination="p:d.t")))
    assert observation.outcome is Outcome.SUCCEEDED and len(send.requests) == 2  # tables.get is tried once
    assert observation.info is not None and observation.info["total_rows"] is None


def test_a_missing_job_leaves_no_row_count_running() -> None:
    async def observe() -> tuple[Outcome, set[asyncio.Task[Any]]]:
        send = GatedSend([Answer(404, error_body(404, "notFound")), Answer(200, {"numRows": "1"})], patience=0.05)
        observation = await _engine(send).observe(_handle(destination="p:d.t"))
        await asyncio.sleep(0)
        return observation.outcome, asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]

    outcome, pending = asyncio.run(observe())
    assert outcome is Outcome.PERMANENT_FAILURE and not pending


@pytest.mark.parametrize("destination", ["no-separators", "p:d", "p.t", ":d.t", "p:.t", "p:d."])
def test_a_malformed_recorded_table_falls_back_to_sequential_calls(destination: str) -> None:
    send = ScriptedSend([Answer(200, _job("DONE")), Answer(200, {"numRows": "42"})])
    observation = asyncio.run(_engine(send).observe(_handle(destination=destination)))
    assert send.requests[1].path == TABLES_GET
    assert observation.info is not None and observation.info["total_rows"] == 42
