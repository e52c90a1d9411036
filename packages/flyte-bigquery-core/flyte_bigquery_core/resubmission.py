"""Submitting a throttled job again, from ``get``: same resource, same job id, no Flyte retry spent.

When BigQuery throttles a burst of ``jobs.insert`` calls past the create's retry budget (:mod:`.throttle`), the
engine returns a handle that carries the job's ``jobs.insert`` body (``pending_insert``) instead of failing the
task. The connector is stateless, so that body travels in the handle; ``get`` finds no job under the handle's
id and submits the body again (:func:`resubmit`), with the same job id: a submission that did reach BigQuery
answers 409 and is adopted, so no job is ever created twice. Until BigQuery accepts it the task is reported
QUEUED ("waiting for BigQuery's rate limits"); once the job exists, ``get`` observes it like any other.

The body holds the query and its parameter values: like Flyte's inputs, they stay out of logs and messages.
"""

from __future__ import annotations

from typing import Any

from .errors import PermanentError, TransientError
from .status import Outcome

__all__ = ["RESUBMIT_SECONDS", "pending_handle_fields", "resubmit"]

#: Budget of the one submission a ``get`` makes for a throttled job (``get`` must answer quickly; Flyte polls).
RESUBMIT_SECONDS = 2.0


def pending_handle_fields(resource: dict[str, Any]) -> dict[str, Any]:
    """The handle fields of a job whose submission was throttled: its ``jobs.insert`` body."""
    return {"pending_insert": resource}


async def resubmit(api: Any, resource: dict[str, Any]) -> tuple[Outcome, str]:
    """Submit the throttled job ``resource`` again (same job id); the outcome to report and why.

    RUNNING once BigQuery has the job (the next ``get`` observes it), QUEUED while BigQuery still sheds load or is
    unavailable, PERMANENT_FAILURE when BigQuery rejects the job itself.
    """
    job_id = resource["jobReference"]["jobId"]
    try:
        await api.insert(resource, budget=RESUBMIT_SECONDS)
    except TransientError as e:  # Throttled included
        return Outcome.QUEUED, f"waiting for BigQuery's rate limits to submit job {job_id} (same job id): {e.message}"
    except PermanentError as e:
        return Outcome.PERMANENT_FAILURE, str(e)
    return Outcome.RUNNING, f"BigQuery job {job_id} submitted after waiting for BigQuery's rate limits"
