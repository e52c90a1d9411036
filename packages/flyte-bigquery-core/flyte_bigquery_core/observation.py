"""Observing a submitted query job: its outcome now, its cancellation, its log lines and metrics.

:class:`JobObserver` works from a :class:`~.handle.JobHandle` alone (the connector is stateless), on
:class:`~.jobs_api.JobsApi`; :class:`~.engine.QueryEngine` adds submission to it. Verdicts: a finished job's
``errorResult`` reason decides retryable against permanent (:mod:`.status`); a job that cannot be looked up for
a while stays RUNNING (the job itself is unaffected); a job past the task's deadline is cancelled. When the
handle knows the destination table, ``jobs.get`` and the row count's ``tables.get`` run concurrently: one
round trip of latency for the ``get`` of a finished task with an output.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions as api_exceptions

from . import metrics
from .access import Caller, uri_with_caller
from .errors import PermanentError, TransientError
from .handle import JobHandle
from .io.uri import PROTOCOL, parse_bq_uri
from .report import (
    child_job_lines,
    console_url,
    destination_of,
    extracted_folder,
    human_bytes,
    job_log_lines,
    job_metrics,
    job_summary,
)
from .resubmission import resubmit
from .status import Outcome, job_outcome

__all__ = ["JobObserver", "Observation"]

logger = logging.getLogger(__name__)

_UNFINISHED = (Outcome.QUEUED, Outcome.RUNNING)


@dataclass(frozen=True)
class Observation:
    """What a job's state means now: the outcome, a message for people, statistics for ``custom_info``, the
    result table (``bq://project:dataset.table``) when the task declares an output, and the console page."""

    outcome: Outcome
    message: str
    info: dict[str, Any] | None = None
    output_uri: str | None = None
    console_url: str | None = None
    #: Typed outputs read from the result's single row (:mod:`.single_row`): output name → plain value.
    values: dict[str, Any] | None = None


class JobObserver:
    """Observes, cancels and reports on jobs through ``api`` (a :class:`~.jobs_api.JobsApi`)."""

    def __init__(self, api: Any) -> None:
        self.api = api

    # -- observe ------------------------------------------------------------------------------------------

    async def observe(self, handle: JobHandle) -> Observation:
        """The job's outcome now. Never raises for a failed job; cancels a job past its deadline. Submits a job
        whose submission was throttled (:mod:`.resubmission`) while BigQuery has no job under its id."""
        observation = await self._observe(handle)
        if observation.info is not None:
            _add_access(observation.info, handle)
        return observation

    async def _observe(self, handle: JobHandle) -> Observation:
        if handle.error is not None:
            failed = Outcome.RETRYABLE_FAILURE if handle.retryable else Outcome.PERMANENT_FAILURE
            return Observation(failed, handle.error)
        if handle.dry_run is not None:
            return _dry_run_observation(handle, handle.dry_run)
        link = console_url(handle.project, handle.location, handle.job_id)
        # With the result table known from create, its row count is read alongside the job (one round trip
        # instead of two) on every poll: for an unfinished job that is one cheap metadata call whose answer
        # (usually 404: the table does not exist yet) is ignored. It is awaited rather than cancelled, so its
        # connection goes back to the pool.
        recorded = _split_table_name(handle.destination) if handle.output_name else None
        try:
            job, rows = await self._job_and_rows(handle, recorded)
        except api_exceptions.NotFound:
            info = job_summary(_reference_of(handle), handle.estimated_bytes)
            if handle.pending_insert is not None:
                outcome, message = await resubmit(self.api, handle.pending_insert)
                return Observation(outcome, message, info, console_url=link)
            return Observation(Outcome.PERMANENT_FAILURE, _not_found(handle), info, console_url=link)
        except PermanentError as e:
            info = job_summary(_reference_of(handle), handle.estimated_bytes)
            return Observation(Outcome.PERMANENT_FAILURE, str(e), info, console_url=link)
        except TransientError as e:
            # The job itself is unaffected; Flyte polls again (and the task's timeout still applies).
            return Observation(Outcome.RUNNING, f"{e}; will check again", console_url=link)
        # Always settled before returning (never left running); its count is only used below, for the table
        # the finished job reports, when that is the recorded one.
        concurrent_rows = await rows if rows is not None else None
        verdict = job_outcome(job)
        if verdict.outcome in _UNFINISHED and handle.deadline is not None and time.time() > handle.deadline:
            await self.cancel(handle)
            message = f"BigQuery job {handle.job_id} exceeded the task's timeout and was cancelled"
            info = job_summary(job, handle.estimated_bytes)
            return Observation(Outcome.PERMANENT_FAILURE, message, info, console_url=link)
        info = job_summary(job, handle.estimated_bytes)
        if verdict.outcome not in _UNFINISHED:
            # Stateless: every get that finds the job finished counts it (Flyte stops asking after a final phase).
            metrics.bytes_billed(info.get("total_bytes_billed"))
        message = verdict.message
        if handle.reused_from_attempt is not None:
            message += f" (reused job {handle.job_id} from attempt {handle.reused_from_attempt})"
            info["reused_from_attempt"] = handle.reused_from_attempt
        if verdict.outcome is Outcome.SUCCEEDED and handle.row_result:
            from .single_row import judge_row  # typed outputs and checks: one small read of the single row

            return await judge_row(self.api, handle, Observation(verdict.outcome, message, info, console_url=link))
        if verdict.outcome is not Outcome.SUCCEEDED or not handle.output_name:
            return Observation(verdict.outcome, message, info, console_url=link)
        destination = destination_of(job)
        folder = extracted_folder(job) if not destination else None
        if folder is not None:  # an extract job's output is the folder of its files
            return Observation(Outcome.SUCCEEDED, message, info, output_uri=folder, console_url=link)
        if not destination:
            statement = info["statement_type"] or "unknown type"
            message = (
                f"the task declares output {handle.output_name!r} but the statement ({statement}) produced no "
                "result table"
            )
            return Observation(Outcome.PERMANENT_FAILURE, message, info, console_url=link)
        project, dataset, table = destination["projectId"], destination["datasetId"], destination["tableId"]
        if recorded == (project, dataset, table):
            count = concurrent_rows
        else:  # not recorded at create (an older handle), or not the table the job wrote: never its rows
            count = await self._total_rows(project, dataset, table)
        if count is not None:
            info["total_rows"] = count
        # A partition (``events$20240101``) is read through its table: the output is the whole table.
        uri = uri_with_caller(f"bq://{project}:{dataset}.{table.split('$', 1)[0]}", Caller.of_handle(handle))
        return Observation(Outcome.SUCCEEDED, message, info, output_uri=uri, console_url=link)

    async def _job_and_rows(
        self, handle: JobHandle, table: tuple[str, str, str] | None
    ) -> tuple[dict[str, Any], asyncio.Future[int | None] | None]:
        """``jobs.get`` of the handle's job and, when ``table`` is given, its row count requested alongside
        (sent right after ``jobs.get``, before either answer is awaited). The count is cancelled if the job
        cannot be read; otherwise the caller awaits it."""
        job_call = self.api.get(handle.project, handle.job_id, handle.location or None)
        if table is None:
            return await job_call, None
        rows = asyncio.ensure_future(self._total_rows(*table))
        try:
            return await job_call, rows
        except BaseException:
            rows.cancel()
            raise

    async def _total_rows(self, project: str, dataset: str, table: str) -> int | None:
        """Rows in the result table, for the report; best effort (the job itself already succeeded)."""
        try:
            rows = (await self.api.table(project, dataset, table)).get("numRows")
            return int(rows) if rows is not None else None
        except Exception as exc:
            logger.debug("could not read the row count of %s.%s: %s", dataset, table, exc.__class__.__name__)
            return None

    # -- cancel, logs, metrics ----------------------------------------------------------------------------

    async def cancel(self, handle: JobHandle) -> None:
        """Cancel the job. Idempotent: a finished, cancelled or missing job is not an error."""
        if not handle.job_id:
            return
        if not await self.api.cancel(handle.project, handle.job_id, handle.location or None):
            logger.info("BigQuery job %s no longer exists; nothing to cancel", handle.job_id)

    async def log_lines(self, handle: JobHandle) -> list[str]:
        """Readable lines about the job: state, statistics, errors with their locations, a script's statements."""
        if handle.error is not None:
            lines = [f"refused before submission: {handle.error}"]
        elif handle.dry_run is not None:
            lines = [_dry_run_observation(handle, handle.dry_run).message]
        else:
            try:
                job = await self.api.get(handle.project, handle.job_id, handle.location or None)
            except api_exceptions.NotFound:
                lines = [_not_found(handle)]
            else:
                lines = job_log_lines(job, handle.estimated_bytes)
                statement = ((job.get("statistics") or {}).get("query") or {}).get("statementType")
                if statement == "SCRIPT":
                    lines += child_job_lines(await self.api.child_jobs(handle.project, handle.job_id))
        if handle.reused_from_attempt is not None:
            lines.insert(0, f"reused job {handle.job_id} from attempt {handle.reused_from_attempt}")
        if handle.principal is not None:
            via = f" (via {', '.join(handle.delegates)})" if handle.delegates else ""
            lines.insert(0, f"runs as {handle.principal}{via}")
        return lines

    async def metrics(self, handle: JobHandle) -> dict[str, dict[str, Any]]:
        """The job's timeline and statistics (:func:`.report.job_metrics`); empty when there is no job."""
        if handle.error is not None or handle.dry_run is not None:
            return {}
        try:
            job = await self.api.get(handle.project, handle.job_id, handle.location or None)
        except api_exceptions.NotFound:
            return {}
        return job_metrics(job)


def _add_access(info: dict[str, Any], handle: JobHandle) -> None:
    """The caller and reservation a handle recorded, into ``custom_info`` (BigQuery reports neither caller)."""
    info["principal"] = handle.principal
    info["quota_project"] = handle.quota_project
    if info.get("reservation") is None:
        info["reservation"] = handle.reservation


def _split_table_name(name: str | None) -> tuple[str, str, str] | None:
    """``(project, dataset, table)`` of ``project:dataset.table`` as :func:`.report.table_name` writes it (read
    as the ``bq://`` URI it names); ``None`` for anything else."""
    try:
        return parse_bq_uri(f"{PROTOCOL}://{name}") if name else None
    except PermanentError:
        return None


def _reference_of(handle: JobHandle) -> dict[str, Any]:
    """A job resource holding only the handle's reference: a finished task's ``custom_info`` keeps every key."""
    return {"jobReference": {"projectId": handle.project, "jobId": handle.job_id, "location": handle.location or None}}


def _not_found(handle: JobHandle) -> str:
    return f"BigQuery job {handle.job_id} was not found in project {handle.project}"


def _dry_run_observation(handle: JobHandle, summary: dict[str, Any]) -> Observation:
    scanned = summary.get("total_bytes_processed")
    message = "dry run: the query is valid" + (
        f" and would process {human_bytes(scanned)}" if scanned is not None else ""
    )
    if handle.output_name or handle.row_result:
        what = f"table for output {handle.output_name!r}" if handle.output_name else "row for typed outputs or checks"
        message += f", but a dry run produces no result {what}"
        return Observation(Outcome.PERMANENT_FAILURE, message, summary)
    return Observation(Outcome.SUCCEEDED, message, summary)
