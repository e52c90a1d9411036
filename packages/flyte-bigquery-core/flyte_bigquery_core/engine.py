"""A query job's life, on :class:`~.jobs_api.JobsApi`: submit a planned job, observe it, cancel it, report on it.

Free of any Flyte SDK: an adapter plans the job (:func:`.planning.plan_query`), hands the plan here, stores the
returned :class:`~.handle.JobHandle` as its resource meta, and maps an :class:`Observation`'s
:class:`~.status.Outcome` to its own phases.

What it guarantees:

* **No second job.** Job ids are deterministic per attempt, so a retried submission answers 409 and the job is
  adopted; attempt N > 0 first looks up the jobs of earlier attempts by their ids and reuses one that is
  pending, running or succeeded (a failed or cancelled one leads to a new job).
* **Cost guards before anything is spent**: a dry run prices the query when the policy asks, and a query over
  the byte limit is refused (:class:`~.cost.CostLimitExceeded`).
* **Nothing tied to a location before the location is known.** With no ``Location`` set, the dry run's
  ``jobReference.location`` (where BigQuery resolves the query to run) places the job and the managed results
  dataset; an existing results dataset in another location is refused, naming both.
* **Correct verdicts.** A finished job's ``errorResult`` reason decides retryable against permanent
  (:mod:`.status`); a job that cannot be looked up for a while stays RUNNING (the job itself is unaffected); a
  job past the task's deadline is cancelled.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from google.api_core import exceptions as api_exceptions

from . import identity as ids
from . import metrics
from .cost import CostLimitExceeded, Estimate, check_estimate, estimate_from_job
from .errors import BigQueryPluginError, PermanentError, TransientError
from .handle import JobHandle
from .planning import QueryPlan
from .report import child_job_lines, console_url, human_bytes, job_log_lines, job_metrics, job_summary
from .status import Outcome, job_outcome

__all__ = ["Observation", "QueryEngine"]

logger = logging.getLogger(__name__)

H = TypeVar("H", bound=JobHandle)

_REUSABLE = (Outcome.QUEUED, Outcome.RUNNING, Outcome.SUCCEEDED)
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


class QueryEngine(Generic[H]):
    """Runs planned query jobs through ``api``; handles are made as ``handle_type`` (the adapter's subclass
    of :class:`JobHandle`, so that what it returns is what its SDK expects)."""

    def __init__(self, api: Any, handle_type: type[H]) -> None:
        self.api = api
        self._handle_type = handle_type
        #: (project, dataset, location casefolded) of managed results datasets known to exist in this process.
        self._datasets: set[tuple[str, str, str]] = set()

    # -- create -------------------------------------------------------------------------------------------

    def refused(self, error: BigQueryPluginError, task: str, project: str, output_name: str | None) -> H:
        """The handle of a task refused before anything was submitted; ``observe`` reports the error."""
        return self._handle_type(
            job_id="",
            project=project,
            location="",
            output_name=output_name,
            error=error.for_task(task),
            retryable=True if error.retryable else None,
        )

    async def submit(self, plan: QueryPlan) -> H:
        """Submit the planned job (or adopt the one that exists) and return its handle.

        Raises :class:`PermanentError` (refused: nothing was submitted, or BigQuery rejected the job) and
        :class:`TransientError` (BigQuery stayed unavailable through the retry budget).
        """
        priced = plan.policy.dry_run_first and not plan.dry_run
        dry_run: dict[str, Any] | None = None
        if plan.location is None and (priced or plan.writes_managed_table):
            # Nothing tied to a location is created before the location is known: the dry run reports where
            # BigQuery will run the query (by the data it reads), and the job, its results dataset and the
            # lookups of earlier attempts' jobs (regional jobs are only found with their location) all use it.
            dry_run = await self.api.dry_run(plan.dry_run_resource)
            plan = plan.located((dry_run.get("jobReference") or {}).get("location"))
        if plan.identity.is_known and plan.identity.attempt > 0:
            reused = await self._reusable_earlier_job(plan)
            if reused is not None:
                metrics.job_submitted("reused")
                return reused
        estimate = None
        if priced:
            if dry_run is None:
                dry_run = await self.api.dry_run(plan.dry_run_resource)
            estimate = estimate_from_job(dry_run)
            try:
                check_estimate(estimate, plan.policy, plan.task)
            except CostLimitExceeded:
                metrics.cost_guard_refused()
                raise
        if plan.writes_managed_table:
            await self._ensure_dataset(plan)
        inserted = await self.api.insert(plan.resource)
        if plan.dry_run:
            ref = inserted.job.get("jobReference") or {}
            return self._handle_type(
                job_id="",
                project=plan.project,
                location=ref.get("location") or plan.location or "",
                output_name=plan.output_name,
                dry_run=job_summary(inserted.job),
            )
        metrics.job_submitted("adopted" if inserted.reattached else "created")
        if inserted.reattached:
            logger.info("BigQuery job %s already existed; reattached instead of submitting again", plan.job_id)
        return self._handle(plan, inserted.job, estimate=estimate)

    def _handle(
        self,
        plan: QueryPlan,
        job: dict[str, Any],
        reused_from_attempt: int | None = None,
        estimate: Estimate | None = None,
    ) -> H:
        ref = job.get("jobReference") or {}
        return self._handle_type(
            job_id=ref.get("jobId") or plan.job_id,
            project=ref.get("projectId") or plan.project,
            location=ref.get("location") or plan.location or "",
            output_name=plan.output_name,
            reused_from_attempt=reused_from_attempt,
            estimated_bytes=estimate.bytes_processed if estimate is not None else None,
            deadline=plan.deadline,
        )

    async def _reusable_earlier_job(self, plan: QueryPlan) -> H | None:
        """The job of an earlier attempt of this node that is still useful, newest attempt first.

        Flyte turns a failed ``CreateTask`` (a timeout, a dropped connection) into a retryable failure and
        retries as the *next* attempt, though the first request may have started the job. Reusing a pending,
        running or successful job avoids running (and billing) the query twice. Ids are deterministic, so this
        is a few ``jobs.get`` calls, not a search; a lookup that keeps failing raises :class:`TransientError`.
        """
        for attempt in range(plan.identity.attempt - 1, -1, -1):
            earlier = ids.job_id(plan.identity.with_attempt(attempt), plan.fingerprint)
            try:
                job = await self.api.get(plan.project, earlier, plan.location)
            except api_exceptions.NotFound:
                continue
            if job_outcome(job).outcome in _REUSABLE:
                logger.info(
                    "BigQuery job %s of attempt %d reused by attempt %d", earlier, attempt, plan.identity.attempt
                )
                return self._handle(replace(plan, job_id=earlier), job, reused_from_attempt=attempt)
        return None

    async def _ensure_dataset(self, plan: QueryPlan) -> None:
        """The managed results dataset exists in the query's location (created there if missing), or the task
        is refused: a dataset elsewhere, or a location nobody knows, would fail the job or strand the results."""
        results, location = plan.results, plan.location
        assert results is not None
        if not location:
            raise PermanentError(
                f"BigQuery did not report where the query runs, so the managed results dataset "
                f"{results.project}.{results.dataset} cannot be placed; nothing was run. Set Location in the "
                "task's BigQueryConfig"
            )
        key = (results.project, results.dataset, location.casefold())
        if key not in self._datasets:
            dataset = await self.api.ensure_dataset(results.dataset_resource(location))
            results.check_location(dataset.get("location"), location)
            self._datasets.add(key)

    # -- observe ------------------------------------------------------------------------------------------

    async def observe(self, handle: JobHandle) -> Observation:
        """The job's outcome now. Never raises for a failed job; cancels a job past its deadline."""
        if handle.error is not None:
            failed = Outcome.RETRYABLE_FAILURE if handle.retryable else Outcome.PERMANENT_FAILURE
            return Observation(failed, handle.error)
        if handle.dry_run is not None:
            return _dry_run_observation(handle, handle.dry_run)
        link = console_url(handle.project, handle.location, handle.job_id)
        try:
            job = await self.api.get(handle.project, handle.job_id, handle.location or None)
        except api_exceptions.NotFound:
            info = job_summary(_reference_of(handle), handle.estimated_bytes)
            return Observation(Outcome.PERMANENT_FAILURE, _not_found(handle), info, console_url=link)
        except PermanentError as e:
            info = job_summary(_reference_of(handle), handle.estimated_bytes)
            return Observation(Outcome.PERMANENT_FAILURE, str(e), info, console_url=link)
        except TransientError as e:
            # The job itself is unaffected; Flyte polls again (and the task's timeout still applies).
            return Observation(Outcome.RUNNING, f"{e}; will check again", console_url=link)
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
        if verdict.outcome is not Outcome.SUCCEEDED or not handle.output_name:
            return Observation(verdict.outcome, message, info, console_url=link)
        destination = ((job.get("configuration") or {}).get("query") or {}).get("destinationTable")
        if not destination:
            statement = ((job.get("statistics") or {}).get("query") or {}).get("statementType") or "unknown type"
            message = (
                f"the task declares output {handle.output_name!r} but the statement ({statement}) produced no "
                "result table"
            )
            return Observation(Outcome.PERMANENT_FAILURE, message, info, console_url=link)
        project, dataset, table = destination["projectId"], destination["datasetId"], destination["tableId"]
        rows = await self._total_rows(project, dataset, table)
        if rows is not None:
            info["total_rows"] = rows
        uri = f"bq://{project}:{dataset}.{table}"
        return Observation(Outcome.SUCCEEDED, message, info, output_uri=uri, console_url=link)

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
    if handle.output_name:
        message += f", but a dry run produces no result table for output {handle.output_name!r}"
        return Observation(Outcome.PERMANENT_FAILURE, message, summary)
    return Observation(Outcome.SUCCEEDED, message, summary)
