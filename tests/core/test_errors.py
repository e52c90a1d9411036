"""The exception tree: permanent versus transient, and the task an error concerns carried as data."""

from __future__ import annotations

import pytest
from flyte_bigquery_core.errors import (
    BigQueryJobError,
    InvalidTaskError,
    PermanentError,
    SettingsError,
    TransientError,
    about_task,
)


def test_the_task_is_data_and_named_once_in_the_message() -> None:
    error = InvalidTaskError("no SQL", task="daily")
    assert (error.task, error.message, str(error)) == ("daily", "no SQL", "task 'daily': no SQL")


def test_an_error_without_a_task_is_its_message() -> None:
    assert str(PermanentError("bad input")) == "bad input"


def test_about_task_names_the_task_of_errors_raised_inside() -> None:
    with pytest.raises(InvalidTaskError) as caught, about_task("daily"):
        raise InvalidTaskError("no SQL")
    assert caught.value.task == "daily" and str(caught.value) == "task 'daily': no SQL"


def test_about_task_keeps_a_task_already_named() -> None:
    with pytest.raises(InvalidTaskError) as caught, about_task("outer"):
        raise InvalidTaskError("no SQL", task="inner")
    assert caught.value.task == "inner"


def test_about_task_leaves_other_exceptions_alone() -> None:
    with pytest.raises(KeyError), about_task("daily"):
        raise KeyError("x")


@pytest.mark.parametrize(("own", "expected"), [(None, "task 'q': down"), ("other", "task 'other': down")])
def test_for_task_uses_the_errors_own_task_first(own: str | None, expected: str) -> None:
    assert TransientError("down", task=own).for_task("q") == expected


def test_a_job_error_keeps_bigquerys_reason_beside_the_task() -> None:
    error = BigQueryJobError("rejected", reason="invalidQuery", task="q")
    assert (error.reason, str(error)) == ("invalidQuery", "task 'q': rejected")


@pytest.mark.parametrize(
    ("error", "permanent", "retryable"),
    [
        (InvalidTaskError("x"), True, False),
        (BigQueryJobError("x"), True, False),
        (TransientError("x"), False, True),
        (SettingsError("x"), False, False),  # the operator's mistake, never a user's task failure
    ],
)
def test_permanent_and_retryable(error: Exception, permanent: bool, retryable: bool) -> None:
    assert isinstance(error, PermanentError) is permanent
    assert error.retryable is retryable  # type: ignore[attr-defined]
