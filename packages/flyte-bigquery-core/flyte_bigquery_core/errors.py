"""The plugin's small exception tree.

Every error we raise on purpose derives from :class:`BigQueryPluginError`, so callers (and the connector
adapter) can tell *our* verdicts apart from bugs. The split that matters to Flyte is permanent versus
transient: a permanent error ends the task for good (retrying cannot help), a transient one is worth
another attempt. Messages name the task, the offending item and what was expected, and never carry input
values, credentials or tokens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = [
    "BigQueryJobError",
    "BigQueryPluginError",
    "InvalidMetadataError",
    "InvalidTaskError",
    "PermanentError",
    "SettingsError",
    "TransientError",
    "UnsupportedInputError",
    "about_task",
]


class BigQueryPluginError(Exception):
    """Base class of every error this plugin raises deliberately.

    ``task`` is the name of the task the error concerns, carried as data: the message itself never names it,
    and ``str()`` puts ``task '<name>': `` in front when it is known. Whoever knows the task sets it, either
    when raising (``InvalidTaskError("...", task=name)``) or around a block (:func:`about_task`).
    """

    #: Whether another attempt could succeed. The connector maps this to a Flyte phase.
    retryable: bool = False

    def __init__(self, message: str = "", *, task: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.task = task

    def __str__(self) -> str:
        return f"task {self.task!r}: {self.message}" if self.task else self.message

    def for_task(self, task: str) -> str:
        """The message a user of ``task`` reads (the error's own task wins when it has one)."""
        if self.task is None:
            self.task = task
        return str(self)


@contextlib.contextmanager
def about_task(task: str) -> Iterator[None]:
    """Errors of ours raised inside the block concern ``task`` (unless they already name one)."""
    try:
        yield
    except BigQueryPluginError as error:
        if error.task is None:
            error.task = task
        raise


class PermanentError(BigQueryPluginError):
    """Retrying the same task cannot help: bad input, bad configuration, a query BigQuery rejects."""


class TransientError(BigQueryPluginError):
    """A failure outside the user's control (5xx, 429, a dropped connection) that outlived our own retries."""

    retryable = True


class SettingsError(BigQueryPluginError, ValueError):
    """A connector setting (an environment variable) is malformed: the operator's mistake, not the user's.

    Deliberately *not* a :class:`PermanentError`: it must never be reported as a user's task failing. It is
    raised once, when the settings are read (at start-up), with one line naming the variable and what it
    expects, so a misconfigured connector refuses to start instead of failing every call.
    """


class InvalidTaskError(PermanentError):
    """The task definition or template is unusable: missing ProjectID, missing SQL, bad template."""


class UnsupportedInputError(PermanentError):
    """An input cannot become a BigQuery query parameter (its type has no BigQuery meaning, or its value is out
    of range). Raised before anything is submitted."""


class InvalidMetadataError(PermanentError):
    """The resource metadata handed to ``get``/``delete`` cannot be decoded into a BigQuery job reference."""


class BigQueryJobError(PermanentError):
    """BigQuery refused or failed the job; carries BigQuery's own reason and message."""

    def __init__(
        self, message: str, reason: str | None = None, location: str | None = None, *, task: str | None = None
    ) -> None:
        super().__init__(message, task=task)
        self.reason = reason
        self.location = location
