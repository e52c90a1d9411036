"""Job → Flyte phase. A declarative table, kept free of flytekit so it can serve a Flyte 2 adapter.

BigQuery reports a finished job's failure in ``status.errorResult`` (``errors`` also lists warnings and
secondary errors, so it must not decide the outcome). Its ``reason`` says whether another attempt could
succeed: https://cloud.google.com/bigquery/docs/error-messages.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

__all__ = ["RETRYABLE_JOB_REASONS", "JobOutcome", "Outcome", "describe_error", "job_outcome"]


class Outcome(enum.Enum):
    """What a job's state means to an orchestrator."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    RETRYABLE_FAILURE = "retryable_failure"
    PERMANENT_FAILURE = "permanent_failure"
    ABORTED = "aborted"


#: A finished job's ``errorResult`` reasons that BigQuery documents as transient: the same job may well succeed
#: when run again. (The reasons of a failed *API call* are another vocabulary: :data:`.retry.RETRYABLE_API_REASONS`.)
RETRYABLE_JOB_REASONS: frozenset[str] = frozenset(
    {
        "backendError",
        "internalError",
        "rateLimitExceeded",
        "jobBackendError",
        "jobInternalError",
        "jobRateLimitExceeded",
        "tableUnavailable",
        "resourceInUse",
    }
)

#: A cancelled job reports reason ``stopped``; Flyte treats a user/platform abort as ABORTED.
ABORT_REASONS: frozenset[str] = frozenset({"stopped"})

_STATE_OUTCOMES: dict[str, Outcome] = {
    "PENDING": Outcome.QUEUED,
    "RUNNING": Outcome.RUNNING,
}


@dataclass(frozen=True)
class JobOutcome:
    """The verdict on one job: outcome, a human-readable message, and BigQuery's reason when it failed."""

    outcome: Outcome
    message: str
    reason: str | None = None


def describe_error(error: dict[str, Any]) -> str:
    """One line from a BigQuery ``ErrorProto``: ``reason: message (at location)``."""
    reason = error.get("reason") or "error"
    message = error.get("message") or "no message"
    location = error.get("location")
    return f"{reason}: {message}" + (f" (at {location})" if location else "")


def job_outcome(resource: dict[str, Any]) -> JobOutcome:
    """Judge a job from its REST resource (``jobs.get`` JSON, i.e. ``QueryJob._properties``)."""
    status = resource.get("status") or {}
    state = str(status.get("state") or "PENDING").upper()
    if state in _STATE_OUTCOMES:
        return JobOutcome(_STATE_OUTCOMES[state], f"BigQuery job is {state}")
    error = status.get("errorResult")
    if not error:
        return JobOutcome(Outcome.SUCCEEDED, "BigQuery job is DONE")
    reason = error.get("reason")
    if reason in ABORT_REASONS:
        return JobOutcome(Outcome.ABORTED, "BigQuery job was cancelled: " + describe_error(error), reason)
    outcome = Outcome.RETRYABLE_FAILURE if reason in RETRYABLE_JOB_REASONS else Outcome.PERMANENT_FAILURE
    return JobOutcome(outcome, "BigQuery job failed: " + describe_error(error), reason)
