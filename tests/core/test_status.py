"""Job resource → outcome: the declarative reason table."""

import pytest
from flyte_bigquery_core.status import Outcome, describe_error, job_outcome


def _job(state: str, error: dict | None = None, errors: list | None = None) -> dict:
    status: dict = {"state": state}
    if error is not None:
        status["errorResult"] = error
    if errors is not None:
        status["errors"] = errors
    return {"status": status}


@pytest.mark.parametrize(
    ("state", "expected"),
    [("PENDING", Outcome.QUEUED), ("RUNNING", Outcome.RUNNING), ("DONE", Outcome.SUCCEEDED)],
)
def test_state_without_error_maps_to_outcome(state: str, expected: Outcome) -> None:
    assert job_outcome(_job(state)).outcome is expected


@pytest.mark.parametrize(
    "reason",
    ["backendError", "internalError", "rateLimitExceeded", "jobBackendError", "jobInternalError"],
)
def test_transient_reasons_are_retryable(reason: str) -> None:
    verdict = job_outcome(_job("DONE", {"reason": reason, "message": "try again"}))
    assert verdict.outcome is Outcome.RETRYABLE_FAILURE
    assert verdict.reason == reason


@pytest.mark.parametrize(
    "reason", ["invalidQuery", "accessDenied", "notFound", "invalid", "duplicate", "quotaExceeded", "responseTooLarge"]
)
def test_user_reasons_are_permanent(reason: str) -> None:
    verdict = job_outcome(_job("DONE", {"reason": reason, "message": "no"}))
    assert verdict.outcome is Outcome.PERMANENT_FAILURE


def test_cancelled_job_is_aborted() -> None:
    verdict = job_outcome(_job("DONE", {"reason": "stopped", "message": "Job execution was cancelled"}))
    assert verdict.outcome is Outcome.ABORTED


def test_warnings_in_errors_do_not_fail_a_job_without_error_result() -> None:
    verdict = job_outcome(_job("DONE", errors=[{"reason": "invalid", "message": "a warning"}]))
    assert verdict.outcome is Outcome.SUCCEEDED


def test_failure_message_carries_reason_message_and_location() -> None:
    error = {"reason": "invalidQuery", "message": "Syntax error: Unexpected end", "location": "query"}
    verdict = job_outcome(_job("DONE", error))
    assert "invalidQuery" in verdict.message
    assert "Syntax error: Unexpected end" in verdict.message
    assert "(at query)" in verdict.message


def test_describe_error_tolerates_missing_fields() -> None:
    assert describe_error({}) == "error: no message"


def test_missing_status_is_queued() -> None:
    assert job_outcome({}).outcome is Outcome.QUEUED
