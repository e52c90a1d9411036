"""The BigQuery calls a job needs, as REST resources in plain dicts: insert, get, cancel, dry run, a script's
child jobs, a table's metadata, and a dataset that must exist.

Every call is retried by :func:`.retry.call_with_retry` within one budget (``retry_seconds``), and its failure
judged once, here: a retryable error that outlived the budget is a :class:`~.errors.TransientError` (another
attempt may succeed), any other API error a :class:`~.errors.BigQueryJobError` carrying BigQuery's reason.
``google.api_core.exceptions.NotFound`` propagates from :meth:`JobsApi.get` and :meth:`JobsApi.table`: what a
missing job or table means is the caller's decision.

Submission is idempotent: the caller chooses the job id, so a retried ``jobs.insert`` whose first answer was
lost gets 409 and the existing job is adopted (:attr:`Inserted.reattached`). Field lesson: right after a 409
the job is not always visible to ``jobs.get`` yet, so a ``NotFound`` there is retried briefly
(:data:`VISIBILITY_SECONDS`) before it counts.

Resources are BigQuery's own (https://cloud.google.com/bigquery/docs/reference/rest/v2/Job); nothing is parsed
into client-library objects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote

from google.api_core import exceptions as api_exceptions

from . import metrics
from .errors import BigQueryJobError, TransientError
from .retry import call_with_retry, is_retryable
from .throttle import ProjectGate, Throttled, is_insert_retryable, is_throttled
from .transport import Transport

__all__ = ["ROW_COUNT_TIMEOUT", "VISIBILITY_SECONDS", "Inserted", "JobsApi", "classify"]

#: How long a job that answered 409 may stay invisible to ``jobs.get`` before that counts as an error.
VISIBILITY_SECONDS = 5.0
#: ``tables.get`` for a report detail (the row count) is tried once, this briefly: never worth waiting for.
ROW_COUNT_TIMEOUT = 5.0
#: Pages of child jobs read for one script's report (50 jobs a page).
MAX_CHILD_PAGES = 10


@dataclass(frozen=True)
class Inserted:
    """The job resource that runs the work, and whether it existed already (a retried submission)."""

    job: dict[str, Any]
    reattached: bool


def _message(exc: api_exceptions.GoogleAPICallError) -> str:
    errors = getattr(exc, "errors", None) or []
    detail = "; ".join(f"{e.get('reason', 'error')}: {e.get('message', '')}" for e in errors if isinstance(e, dict))
    return detail or (exc.message or exc.__class__.__name__)


def classify(exc: BaseException, doing: str) -> NoReturn:
    """Raise our verdict on a failed call: :class:`TransientError` or :class:`BigQueryJobError`."""
    if is_retryable(exc):
        raise TransientError(f"BigQuery was unavailable while {doing}: {exc.__class__.__name__}") from exc
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        reasons = [e.get("reason") for e in (getattr(exc, "errors", None) or []) if isinstance(e, dict)]
        raise BigQueryJobError(
            f"BigQuery rejected {doing}: {_message(exc)}", reason=reasons[0] if reasons else None
        ) from exc
    raise exc


def _segment(value: str) -> str:
    return quote(value, safe="")


def _job_params(location: str | None) -> dict[str, str]:
    """The query string google-cloud-bigquery sends with ``jobs.get`` and ``jobs.cancel``."""
    return {"projection": "full", "location": location} if location else {"projection": "full"}


class JobsApi:
    """BigQuery's jobs, tables and datasets over a :class:`~.transport.Transport`, retried within
    ``retry_seconds`` per call. ``sleep`` and ``clock`` pace the tries (injectable for tests); ``gate`` caps the
    job calls in flight per project (:class:`~.throttle.ProjectGate`; shared by the pool's APIs)."""

    def __init__(
        self,
        transport: Transport,
        retry_seconds: float,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        gate: ProjectGate | None = None,
    ) -> None:
        self.transport = transport
        self.retry_seconds = retry_seconds
        self._sleep = sleep
        self._clock = clock
        self._gate = gate or ProjectGate(0)

    async def _call(
        self,
        api_method: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        budget: float | None = None,
        predicate: Callable[[BaseException], bool] = is_retryable,
    ) -> dict[str, Any]:
        """One call, retried on ``predicate`` within ``budget`` seconds (default :attr:`retry_seconds`).
        ``api_method`` (``jobs.get``…) names the call in :mod:`.metrics`: latency per try, retries by reason."""

        async def once() -> dict[str, Any]:
            async with self._gate.slot(path):
                return await self.transport.request(method, path, params=params, body=body, api_method=api_method)

        return await call_with_retry(
            once,
            self.retry_seconds if budget is None else budget,
            predicate=predicate,
            sleep=self._sleep,
            clock=self._clock,
            on_retry=lambda exc: metrics.retried(api_method, exc),
        )

    async def insert(self, job: Mapping[str, Any], budget: float | None = None) -> Inserted:
        """``jobs.insert`` of a job resource whose ``jobReference`` names the job; 409 adopts the existing job.

        Throttling (:func:`~.throttle.is_throttled`) is retried within ``budget`` (default :attr:`retry_seconds`)
        and then raises :class:`~.throttle.Throttled`: the job was not created, and may be submitted again."""
        reference = job["jobReference"]
        project, job_id, location = reference["projectId"], reference["jobId"], reference.get("location")
        try:
            path = f"/projects/{_segment(project)}/jobs"
            name = "jobs.insert.dryRun" if (job.get("configuration") or {}).get("dryRun") else "jobs.insert"
            created = await self._call(name, "POST", path, body=job, budget=budget, predicate=is_insert_retryable)
            return Inserted(created, False)
        except api_exceptions.Conflict:
            pass
        except Exception as exc:
            if isinstance(exc, api_exceptions.GoogleAPICallError) and is_throttled(exc):
                raise Throttled(f"BigQuery throttled the submission of job {job_id}: {_message(exc)}") from exc
            classify(exc, "submitting the job")
        try:
            existing = await self._call(
                "jobs.get",
                "GET",
                self._job_path(project, job_id),
                params=_job_params(location),
                budget=VISIBILITY_SECONDS,
                predicate=lambda e: isinstance(e, api_exceptions.NotFound) or is_retryable(e),
            )
        except api_exceptions.NotFound as exc:
            raise TransientError(f"BigQuery job {job_id} exists (409) but is not visible yet") from exc
        except Exception as exc:
            classify(exc, f"fetching job {job_id}")
        return Inserted(existing, True)

    async def dry_run(self, job: Mapping[str, Any]) -> dict[str, Any]:
        """The job resource BigQuery answers for ``job`` as a dry run (free; nothing runs, nothing is kept).

        A query BigQuery rejects here raises :class:`BigQueryJobError`; throttling is retried within the budget,
        as for :meth:`insert`, then raises :class:`TransientError` (a dry run creates no job to resubmit).
        """
        reference = {k: v for k, v in job["jobReference"].items() if k != "jobId"}
        resource = {**job, "jobReference": reference, "configuration": {**job["configuration"], "dryRun": True}}
        try:
            path = f"/projects/{_segment(reference['projectId'])}/jobs"
            return await self._call("jobs.insert.dryRun", "POST", path, body=resource, predicate=is_insert_retryable)
        except Exception as exc:
            classify(exc, "the query (dry run)")

    async def get(self, project: str, job_id: str, location: str | None) -> dict[str, Any]:
        """``jobs.get`` (full projection); ``NotFound`` propagates."""
        return await self._read(
            "jobs.get", self._job_path(project, job_id), _job_params(location), f"fetching job {job_id}"
        )

    async def _read(self, api_method: str, path: str, params: Mapping[str, str] | None, doing: str) -> dict[str, Any]:
        """A retried ``GET`` whose ``NotFound`` propagates (what a missing resource means is the caller's call)."""
        try:
            return await self._call(api_method, "GET", path, params=params)
        except api_exceptions.NotFound:
            raise
        except Exception as exc:
            classify(exc, doing)

    async def cancel(self, project: str, job_id: str, location: str | None) -> bool:
        """``jobs.cancel``; idempotent. ``False`` when the job does not exist (nothing to cancel)."""
        try:
            path = self._job_path(project, job_id) + "/cancel"
            await self._call("jobs.cancel", "POST", path, params=_job_params(location))
            return True
        except api_exceptions.NotFound:
            return False
        except Exception as exc:
            classify(exc, f"cancelling job {job_id}")

    async def child_jobs(self, project: str, parent_job_id: str) -> list[dict[str, Any]]:
        """The jobs of a script's statements (``jobs.list`` with ``parentJobId``), newest first."""
        jobs: list[dict[str, Any]] = []
        token: str | None = None
        for _ in range(MAX_CHILD_PAGES):
            params = {"parentJobId": parent_job_id, "projection": "full"}
            if token:
                params["pageToken"] = token
            try:
                page = await self._call("jobs.list", "GET", f"/projects/{_segment(project)}/jobs", params=params)
            except Exception as exc:
                classify(exc, f"listing the statements of job {parent_job_id}")
            jobs.extend(page.get("jobs") or [])
            token = page.get("nextPageToken")
            if not token:
                break
        return jobs

    async def table(self, project: str, dataset: str, table: str) -> dict[str, Any]:
        """``tables.get``, tried once with a short timeout; ``NotFound`` and transport errors propagate."""
        path = f"/projects/{_segment(project)}/datasets/{_segment(dataset)}/tables/{_segment(table)}"
        return await self.transport.request("GET", path, timeout=ROW_COUNT_TIMEOUT, api_method="tables.get")

    async def query_results(self, project: str, job_id: str, location: str | None, max_rows: int) -> dict[str, Any]:
        """``jobs.getQueryResults`` of a finished query: ``schema``, ``totalRows`` and at most ``max_rows`` rows,
        timestamps as integer microseconds. A small read for a single-row result (no Storage session, no pod)."""
        params = {"maxResults": str(max_rows), "formatOptions.useInt64Timestamp": "true", "timeoutMs": "0"}
        if location:
            params["location"] = location
        try:
            path = f"/projects/{_segment(project)}/queries/{_segment(job_id)}"
            return await self._call("jobs.getQueryResults", "GET", path, params=params)
        except Exception as exc:
            classify(exc, f"reading the result of job {job_id}")

    async def table_metadata(self, project: str, dataset: str, table: str) -> dict[str, Any]:
        """``tables.get``, retried within the budget (unlike :meth:`table`); ``NotFound`` propagates."""
        path = f"/projects/{_segment(project)}/datasets/{_segment(dataset)}/tables/{_segment(table)}"
        return await self._read("tables.get", path, None, f"fetching table {project}.{dataset}.{table}")

    async def table_rows(
        self, project: str, dataset: str, table: str, fields: str, page_token: str | None = None
    ) -> dict[str, Any]:
        """One page of ``tabledata.list`` (free: no bytes are billed) of the ``fields`` columns; ``NotFound``
        propagates."""
        path = f"/projects/{_segment(project)}/datasets/{_segment(dataset)}/tables/{_segment(table)}/data"
        params = {"selectedFields": fields, **({"pageToken": page_token} if page_token else {})}
        return await self._read("tabledata.list", path, params, f"listing rows of {project}.{dataset}.{table}")

    async def ensure_dataset(self, dataset: Mapping[str, Any]) -> dict[str, Any]:
        """``datasets.insert``; a dataset that exists already (409) is left as it is. Returns the dataset as
        BigQuery holds it (``datasets.get`` after a 409), so the caller sees where it really is."""
        reference = dataset["datasetReference"]
        project, dataset_id = reference["projectId"], reference["datasetId"]
        path = f"/projects/{_segment(project)}/datasets"
        try:
            return await self._call("datasets.insert", "POST", path, body=dataset)
        except api_exceptions.Conflict:
            pass
        except Exception as exc:
            classify(exc, f"creating dataset {project}.{dataset_id}")
        try:
            return await self._call("datasets.get", "GET", f"{path}/{_segment(dataset_id)}")
        except Exception as exc:
            classify(exc, f"fetching dataset {project}.{dataset_id}")

    @staticmethod
    def _job_path(project: str, job_id: str) -> str:
        return f"/projects/{_segment(project)}/jobs/{_segment(job_id)}"
