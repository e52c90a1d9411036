"""Submit, fetch and cancel BigQuery query jobs — the BigQuery half of the connector, free of flytekit.

Every call that leaves the process goes through here, so the retry policy and the transient/permanent
verdict live in one place: 5xx, 429, ``rateLimitExceeded``/``backendError`` reasons and dropped
connections are retried with exponential backoff within a bounded budget; anything else is the user's
problem and is reported at once. Submission is idempotent: the job id is chosen by the caller, so a
retried ``jobs.insert`` whose first response was lost answers 409 and we adopt the job that exists.
"""

from __future__ import annotations

import asyncio
import copy
import os
from dataclasses import dataclass
from typing import Any, NoReturn

import aiohttp
import requests
from google.api_core import exceptions as api_exceptions
from google.api_core import retry as api_retry
from google.cloud import bigquery

from .errors import BigQueryJobError, TransientError
from .status import TRANSIENT_REASONS

__all__ = [
    "RETRY_BUDGET_ENV",
    "SubmitResult",
    "async_retry_policy",
    "cancel_job",
    "dry_run_query",
    "fetch_job",
    "is_transient",
    "raise_classified",
    "retry_policy",
    "submit_query",
]

#: Seconds a single create/get/delete may spend retrying transient failures before giving up.
RETRY_BUDGET_ENV = "FLYTEKITPLUGINS_BIGQUERY_RETRY_SECONDS"
_DEFAULT_RETRY_SECONDS = 60.0
#: Per-request HTTP timeout, so a hung connection counts against the budget instead of hanging forever.
_REQUEST_TIMEOUT = 30.0

_TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    api_exceptions.InternalServerError,
    api_exceptions.BadGateway,
    api_exceptions.ServiceUnavailable,
    api_exceptions.GatewayTimeout,
    api_exceptions.TooManyRequests,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    aiohttp.ClientConnectionError,  # refused, reset, server disconnected, socket timeouts
    aiohttp.ClientPayloadError,  # a truncated body
    asyncio.TimeoutError,  # aiohttp's per-request timeout (not TimeoutError before Python 3.11)
    ConnectionError,
    TimeoutError,
)


def _reasons(exc: BaseException) -> list[str]:
    errors = getattr(exc, "errors", None) or []
    return [e.get("reason", "") for e in errors if isinstance(e, dict)]


def is_transient(exc: BaseException) -> bool:
    """Whether another try of the same call could succeed."""
    if isinstance(exc, _TRANSIENT_EXCEPTIONS):
        return True
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        # BigQuery answers 403 rateLimitExceeded and 400/500 backendError for load it sheds.
        return any(r in TRANSIENT_REASONS for r in _reasons(exc))
    return False


#: Exponential backoff: first sleep up to 0.25 s, doubling, at most 8 s (google.api_core's jittered schedule).
_INITIAL, _MAXIMUM, _MULTIPLIER = 0.25, 8.0, 2.0


def _budget(budget: float | None) -> float:
    return float(os.environ.get(RETRY_BUDGET_ENV, _DEFAULT_RETRY_SECONDS)) if budget is None else budget


def retry_policy(budget: float | None = None) -> api_retry.Retry:
    """Exponential backoff on transient errors, bounded in total time."""
    return api_retry.Retry(
        predicate=is_transient, initial=_INITIAL, maximum=_MAXIMUM, multiplier=_MULTIPLIER, timeout=_budget(budget)
    )


def async_retry_policy(budget: float | None = None) -> api_retry.AsyncRetry:
    """:func:`retry_policy` for coroutines (the calls of :mod:`.rest`): same predicate, backoff and budget."""
    return api_retry.AsyncRetry(
        predicate=is_transient, initial=_INITIAL, maximum=_MAXIMUM, multiplier=_MULTIPLIER, timeout=_budget(budget)
    )


def _message(exc: api_exceptions.GoogleAPICallError) -> str:
    errors = getattr(exc, "errors", None) or []
    detail = "; ".join(f"{e.get('reason', 'error')}: {e.get('message', '')}" for e in errors if isinstance(e, dict))
    return detail or (exc.message or exc.__class__.__name__)


def raise_classified(exc: BaseException, doing: str) -> NoReturn:
    """Turn a client exception into our verdict, with BigQuery's own reason and message."""
    if is_transient(exc) or isinstance(exc, api_exceptions.RetryError):
        raise TransientError(f"BigQuery was unavailable while {doing}: {exc.__class__.__name__}") from exc
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        reasons = _reasons(exc)
        raise BigQueryJobError(
            f"BigQuery rejected {doing}: {_message(exc)}", reason=reasons[0] if reasons else None
        ) from exc
    raise exc


@dataclass(frozen=True)
class SubmitResult:
    """The job that runs the query, and whether it already existed (a retried submission)."""

    job: bigquery.QueryJob
    reattached: bool


def submit_query(
    client: bigquery.Client,
    sql: str,
    job_config: bigquery.QueryJobConfig,
    job_id: str,
    location: str | None,
    retry: api_retry.Retry | None = None,
) -> SubmitResult:
    """Insert the query job ``job_id``; if it exists already (409), return the existing job instead."""
    retry = retry or retry_policy()
    try:
        job = client.query(
            sql,
            job_config=job_config,
            job_id=job_id,
            location=location,
            retry=retry,
            job_retry=None,
            timeout=_REQUEST_TIMEOUT,
        )
        return SubmitResult(job, reattached=False)
    except api_exceptions.Conflict:
        return SubmitResult(fetch_job(client, job_id, client.project, location, retry), reattached=True)
    except Exception as exc:
        raise_classified(exc, "submitting the query job")


def dry_run_query(
    client: bigquery.Client, sql: str, job_config: bigquery.QueryJobConfig, location: str | None
) -> dict[str, Any]:
    """Dry-run the query (free, instant, nothing kept) and return BigQuery's job resource with the estimate.

    A query BigQuery rejects here raises :class:`BigQueryJobError`: the task fails before anything is spent.
    """
    config = copy.deepcopy(job_config)
    config.dry_run = True
    try:
        job = client.query(sql, job_config=config, location=location, retry=retry_policy(), job_retry=None)
    except Exception as exc:
        raise_classified(exc, "the dry run")
    return dict(job._properties)


def fetch_job(
    client: bigquery.Client,
    job_id: str,
    project: str,
    location: str | None,
    retry: api_retry.Retry | None = None,
) -> Any:
    """``jobs.get``; NotFound propagates (callers decide what a missing job means)."""
    try:
        return client.get_job(
            job_id, project=project, location=location or None, retry=retry or retry_policy(), timeout=_REQUEST_TIMEOUT
        )
    except api_exceptions.NotFound:
        raise
    except Exception as exc:
        raise_classified(exc, f"fetching job {job_id}")


def cancel_job(client: bigquery.Client, job_id: str, project: str, location: str | None) -> bool:
    """Request cancellation; idempotent. Returns ``False`` when the job does not exist (nothing to cancel)."""
    try:
        client.cancel_job(
            job_id, project=project, location=location or None, retry=retry_policy(), timeout=_REQUEST_TIMEOUT
        )
        return True
    except api_exceptions.NotFound:
        return False
    except Exception as exc:
        raise_classified(exc, f"cancelling job {job_id}")
