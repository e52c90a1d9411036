"""The plugin's small exception tree.

Every error we raise on purpose derives from :class:`BigQueryPluginError`, so callers (and the connector
adapter) can tell *our* verdicts apart from bugs. The split that matters to Flyte is permanent versus
transient: a permanent error ends the task for good (retrying cannot help), a transient one is worth
another attempt. Messages name the task, the offending item and what was expected, and never carry input
values, credentials or tokens.
"""

from __future__ import annotations

__all__ = [
    "BigQueryJobError",
    "BigQueryPluginError",
    "InvalidMetadataError",
    "InvalidTaskError",
    "PermanentError",
    "SettingsError",
    "TransientError",
    "UnsupportedInputError",
]


class BigQueryPluginError(Exception):
    """Base class of every error this plugin raises deliberately.

    ``task`` is the name of the task the error concerns, as data (``None`` until someone who knows it sets
    it): :meth:`for_task` gives the message a user sees, naming the task exactly once.
    """

    #: Whether another attempt could succeed. The connector maps this to a Flyte phase.
    retryable: bool = False

    def __init__(self, *args: object, task: str | None = None) -> None:
        super().__init__(*args)
        self.task = task

    def for_task(self, task: str) -> str:
        """The message for a user of ``task``: prefixed with ``task '<name>': `` unless it already says so."""
        name = self.task or task
        message = str(self)
        prefix = f"task {name!r}"
        return message if message.startswith(prefix) or f" {prefix}" in message else f"{prefix}: {message}"


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

    def __init__(self, message: str, reason: str | None = None, location: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.location = location
