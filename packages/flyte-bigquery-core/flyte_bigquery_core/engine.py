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
from dataclasses import replace
from typing import Any, Generic, TypeVar

from google.api_core import exceptions as api_exceptions

from . import identity as ids
from . import metrics
from .cost import CostLimitExceeded, Estimate, check_estimate, estimate_from_job
from .errors import BigQueryPluginError, PermanentError
from .handle import JobHandle
from .observation import JobObserver, Observation
from .planning import QueryPlan
from .report import destination_of, job_summary, table_name
from .resubmission import pending_handle_fields
from .status import Outcome, job_outcome
from .throttle import Throttled

__all__ = ["Observation", "QueryEngine"]

logger = logging.getLogger(__name__)

H = TypeVar("H", bound=JobHandle)

_REUSABLE = (Outcome.QUEUED, Outcome.RUNNING, Outcome.SUCCEEDED)


class QueryEngine(JobObserver, Generic[H]):
    """Runs planned query jobs through ``api``; handles are made as ``handle_type`` (the adapter's subclass
    of :class:`JobHandle`, so that what it returns is what its SDK expects)."""

    def __init__(self, api: Any, handle_type: type[H]) -> None:
        super().__init__(api)
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
        if plan.caller.impersonates or plan.reservation.reservation is not None:
            logger.debug(
                "submitting BigQuery job %s in project %s as %s, reservation %s (%s)",
                plan.job_id,
                plan.project,
                plan.caller.principal or "the connector's identity",
                plan.reservation.reservation or "by assignment",
                plan.reservation.source or "none chosen",
            )
        try:
            inserted = await self.api.insert(plan.resource)
        except Throttled as throttled:
            if plan.dry_run:
                raise
            # Not a failure: the same job (same id) is submitted again by a later ``get`` (.resubmission).
            logger.info("%s; the task waits and submits it again", throttled.message)
            return self._handle(plan, plan.resource, estimate=estimate, **pending_handle_fields(plan.resource))
        if plan.dry_run:
            ref = inserted.job.get("jobReference") or {}
            return self._handle_type(
                job_id="",
                project=plan.project,
                location=ref.get("location") or plan.location or "",
                output_name=plan.output_name,
                dry_run=job_summary(inserted.job),
                row_result=plan.row_result,
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
        **extra: Any,
    ) -> H:
        ref = job.get("jobReference") or {}
        return self._handle_type(
            **plan.caller.handle_fields(),
            reservation=plan.reservation.reservation,
            **extra,
            job_id=ref.get("jobId") or plan.job_id,
            project=ref.get("projectId") or plan.project,
            location=ref.get("location") or plan.location or "",
            output_name=plan.output_name,
            reused_from_attempt=reused_from_attempt,
            estimated_bytes=estimate.bytes_processed if estimate is not None else None,
            deadline=plan.deadline,
            # What BigQuery reported for this job (insert's answer, or jobs.get of an adopted or reused job):
            # the managed table, the user's destination or the anonymous one. Only a task with an output needs it.
            destination=table_name(destination_of(job)) if plan.output_name else None,
            row_result=plan.row_result,
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
