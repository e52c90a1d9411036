"""Defining a check task, free of any Flyte SDK: what both adapters' ``BigQueryCheckTask`` decide at definition.

:func:`define_check` validates the severity and the checks (:meth:`~.checks.CheckSpec.validate`), refuses a
check task that declares outputs (its verdict is the task's phase), and chooses the query: the user's for row and
value checks, a generated one for an interval check (:func:`~.checks.interval_sql`), whose ``date_input`` must be
one of the task's inputs. Every refusal is an :class:`~.errors.InvalidTaskError` naming the task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .checks import CheckSpec, IntervalCheck, ValueCheck, interval_sql
from .errors import InvalidTaskError

__all__ = ["define_check"]


def define_check(
    task: str,
    severity: str,
    value_checks: Sequence[ValueCheck],
    interval: IntervalCheck | None,
    query_template: str | None,
    inputs: Mapping[str, object] | None,
    declares_outputs: bool,
) -> tuple[CheckSpec, str]:
    """The validated :class:`~.checks.CheckSpec` and the query text of a check task."""
    spec = CheckSpec(severity, tuple(value_checks), interval).validate(task)
    if declares_outputs:
        raise InvalidTaskError("a check task has no outputs; its verdict is the task's phase", task=task)
    if interval is not None:
        if query_template or value_checks:
            raise InvalidTaskError(
                "an interval check generates its own query; give no query_template or value_checks", task=task
            )
        if interval.date_input is not None and interval.date_input not in (inputs or {}):
            raise InvalidTaskError(
                f"interval check date_input {interval.date_input!r} is not an input of the task", task=task
            )
        return spec, interval_sql(interval)
    if not (query_template or "").strip():
        raise InvalidTaskError("a check task needs a query_template (or an interval check)", task=task)
    return spec, str(query_template)
