"""Data-quality checks: one query whose single row is judged, with a severity.

A check task runs one query job (with every guarantee of a query task) and judges its single result row:

* **row check** — every column that no value check names must be ``TRUE`` (``FALSE`` or NULL fails it);
* **value checks** (:class:`ValueCheck`) — a numeric column must be within ``tolerance`` (relative:
  ``|actual - expected| <= tolerance * |expected|``; 0 means exactly) of ``expected``;
* **interval check** (:class:`IntervalCheck`) — the task's query is generated: each metric (a SQL aggregate
  such as ``COUNT(*)``) over one table, on the run's date and ``days_back`` days before; a metric fails when
  its relative change ``|current - reference| / |reference|`` exceeds its threshold (a reference of 0 only
  passes a current of 0; a NULL on either side fails).

Severity ``fail`` ends the task permanently, naming every failed check with its values; ``warn`` lets it
succeed and reports them (custom info, logs, the message). Every check query is priced by a dry run first and
held to ``MaximumBytes`` (:func:`check_query_task` turns on ``Estimate``). The spec travels as JSON in the
task's custom fields (:data:`CHECKS_KEY`) and in the job handle.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import InvalidTaskError, PermanentError
from .jobconfig import ESTIMATE_KEY
from .rows import columns_of, decode_row

if TYPE_CHECKING:
    from .planning import QueryTask

__all__ = [
    "CHECKS_KEY",
    "SEVERITIES",
    "CheckResult",
    "CheckSpec",
    "IntervalCheck",
    "ValueCheck",
    "check_query_task",
    "evaluate",
    "interval_sql",
    "relative_change",
    "results_info",
    "verdict",
    "within_tolerance",
]

CHECKS_KEY = "Checks"
SEVERITIES = ("fail", "warn")
_IDENTIFIER_PATH = re.compile(r"^`?[A-Za-z0-9_-]+`?(\.`?[A-Za-z0-9_-]+`?){1,2}$")
_INPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclasses.dataclass(frozen=True)
class ValueCheck:
    """Column ``column`` must equal ``expected`` within ``tolerance`` (a fraction of ``expected``)."""

    column: str
    expected: float
    tolerance: float = 0.0


@dataclasses.dataclass(frozen=True)
class IntervalCheck:
    """``metrics`` (SQL aggregate → largest allowed relative change) over ``table`` on the run's date versus
    ``days_back`` days before. ``date_expression`` (SQL, e.g. ``ds`` or ``DATE(created_at)``) is compared with
    the date: the task's DATE input ``date_input`` when set, else ``CURRENT_DATE()``. ``where`` (SQL) narrows
    both days' rows further."""

    table: str
    date_expression: str
    metrics: Mapping[str, float]
    days_back: int = 7
    date_input: str | None = None
    where: str | None = None


@dataclasses.dataclass(frozen=True)
class CheckSpec:
    """What a check task judges, and how hard."""

    severity: str = "fail"
    values: tuple[ValueCheck, ...] = ()
    interval: IntervalCheck | None = None

    def validate(self, task: str) -> CheckSpec:
        """Raises :class:`InvalidTaskError` naming the task and the bad setting."""
        if self.severity not in SEVERITIES:
            raise InvalidTaskError(f"check severity {self.severity!r} is not one of {', '.join(SEVERITIES)}", task=task)
        for check in self.values:
            if not _finite(check.expected) or not _finite(check.tolerance) or check.tolerance < 0:
                raise InvalidTaskError(
                    f"value check on {check.column!r} needs a finite expected value and a tolerance >= 0", task=task
                )
        if self.interval is not None:
            interval = self.interval
            if not _IDENTIFIER_PATH.match(interval.table):
                raise InvalidTaskError(
                    f"interval check table {interval.table!r} is not a table path such as 'dataset.table'", task=task
                )
            if not interval.metrics or not all(_finite(t) and t >= 0 for t in interval.metrics.values()):
                raise InvalidTaskError("interval check needs metrics, each with a threshold >= 0", task=task)
            days = interval.days_back
            if isinstance(days, bool) or not isinstance(days, int) or days < 1:
                raise InvalidTaskError("interval check days_back must be a whole number of days >= 1", task=task)
            if interval.date_input is not None and not _INPUT_NAME.match(interval.date_input):
                raise InvalidTaskError(f"interval check date_input {interval.date_input!r} is no input name", task=task)
            if not interval.date_expression.strip():
                raise InvalidTaskError("interval check needs a date_expression (e.g. the DATE column)", task=task)
        return self

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | (
            {"interval": {**dataclasses.asdict(self.interval), "metrics": dict(self.interval.metrics)}}
            if self.interval
            else {}
        )

    @classmethod
    def from_json(cls, raw: object, task: str) -> CheckSpec:
        try:
            assert isinstance(raw, Mapping)
            values = tuple(ValueCheck(**v) for v in raw.get("values") or [])
            interval_raw = raw.get("interval")
            interval = None
            if interval_raw:
                interval_raw = dict(interval_raw)
                interval_raw["days_back"] = int(interval_raw.get("days_back", 7))
                interval = IntervalCheck(**interval_raw)
            return cls(str(raw.get("severity") or "fail"), values, interval).validate(task)
        except (AssertionError, TypeError, ValueError):
            raise InvalidTaskError(f"the task's {CHECKS_KEY} are malformed", task=task) from None


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- the query ----------------------------------------------------------------------------------------------------


def interval_sql(check: IntervalCheck) -> str:
    """The interval check's query: one row, ``current_mN`` and ``reference_mN`` per metric (aggregates without
    ``GROUP BY`` always give one row)."""
    table = check.table if check.table.startswith("`") else f"`{check.table}`"
    today = f"@{check.date_input}" if check.date_input else "CURRENT_DATE()"
    metrics = ", ".join(f"{expression} AS m{i}" for i, expression in enumerate(check.metrics))
    narrowed = f" AND ({check.where})" if check.where else ""
    picked = ", ".join(f"c.m{i} AS current_m{i}, r.m{i} AS reference_m{i}" for i in range(len(check.metrics)))
    return (
        f"SELECT {picked}\n"
        f"FROM (SELECT {metrics} FROM {table} WHERE {check.date_expression} = {today}{narrowed}) AS c\n"
        f"CROSS JOIN (SELECT {metrics} FROM {table}\n"
        f"  WHERE {check.date_expression} = DATE_SUB({today}, INTERVAL {check.days_back} DAY){narrowed}) AS r"
    )


def check_query_task(task: QueryTask) -> QueryTask:
    """The query task a check task runs: the interval check's generated query (else the task's own), with
    ``Estimate`` on so that a dry run prices it and ``MaximumBytes`` holds, and no output table."""
    custom = dict(task.custom)
    spec = CheckSpec.from_json(custom.get(CHECKS_KEY), task.name)
    custom[ESTIMATE_KEY] = True
    statement = interval_sql(spec.interval) if spec.interval is not None else task.statement
    return dataclasses.replace(task, custom=custom, statement=statement, output_name=None)


# --- judging the row ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One check's outcome: its name, whether it passed, and what was compared (JSON-safe)."""

    check: str
    passed: bool
    detail: str
    actual: Any = None
    expected: Any = None

    def to_info(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def within_tolerance(actual: float, expected: float, tolerance: float) -> bool:
    """``|actual - expected| <= tolerance * |expected|`` (exact equality for a tolerance or expected of 0)."""
    return abs(actual - expected) <= tolerance * abs(expected)


def relative_change(current: float, reference: float) -> float:
    """``|current - reference| / |reference|``; 0 when both are 0, infinite when only the reference is."""
    if reference == 0:
        return 0.0 if current == 0 else math.inf
    return abs(current - reference) / abs(reference)


def _json_safe(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def _number(value: Any, column: str, task: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        raise PermanentError(f"check column {column!r} is not a number ({type(value).__name__})", task=task)
    return float(value)


def evaluate(response: Mapping[str, Any], spec: CheckSpec, task: str) -> list[CheckResult]:
    """Judge a ``jobs.getQueryResults`` answer: exactly one row, then each check (see the module docstring).
    Raises :class:`PermanentError` for a result no check can be judged on (no row, several, missing columns,
    a row check column that is not BOOL)."""
    total = int(response.get("totalRows") or 0)
    rows = response.get("rows") or []
    if total != 1 or len(rows) != 1:
        raise PermanentError(f"a check query must return exactly one row; it returned {total}", task=task)
    columns = columns_of(response.get("schema"))
    row = {name.casefold(): value for name, value in decode_row(columns, rows[0]).items()}
    types = {column.name.casefold(): column for column in columns}
    if spec.interval is not None:
        return _interval_results(row, spec.interval, task)
    results = []
    valued = {check.column.casefold() for check in spec.values}
    for check in spec.values:
        key = check.column.casefold()
        if key not in row:
            raise PermanentError(f"value check column {check.column!r} is not in the result", task=task)
        actual = _number(row[key], check.column, task)
        passed = actual is not None and within_tolerance(actual, check.expected, check.tolerance)
        detail = f"{check.column} = {actual} (expected {check.expected} ± {check.tolerance:.0%})"
        results.append(CheckResult(f"value: {check.column}", passed, detail, actual, check.expected))
    for key, column in types.items():
        if key in valued:
            continue
        if column.type not in ("BOOL", "BOOLEAN") or column.repeated:
            raise PermanentError(
                f"row check column {column.name!r} is {column.describe()}; every column of a row check must be "
                "BOOL (or be named by a value check)",
                task=task,
            )
        value = row[key]
        results.append(CheckResult(f"row: {column.name}", value is True, f"{column.name} is {value}", value, True))
    return results


def _interval_results(row: Mapping[str, Any], check: IntervalCheck, task: str) -> list[CheckResult]:
    results = []
    for i, (expression, threshold) in enumerate(check.metrics.items()):
        current = _number(row.get(f"current_m{i}"), expression, task)
        reference = _number(row.get(f"reference_m{i}"), expression, task)
        if current is None or reference is None:
            passed, change = False, None
        else:
            change = relative_change(current, reference)
            passed = change <= threshold
        detail = (
            f"{expression}: {current} now vs {reference} {check.days_back} day(s) before, change "
            + (f"{change:.1%}" if change is not None and math.isfinite(change) else "undefined")
            + f" (threshold {threshold:.0%})"
        )
        results.append(
            CheckResult(
                f"interval: {expression}",
                passed,
                detail,
                {"current": current, "reference": reference},
                {"threshold": threshold},
            )
        )
    return results


def verdict(results: Sequence[CheckResult], severity: str) -> tuple[bool, str]:
    """``(succeeds, message)``: a task fails only when a check failed and its severity is ``fail``."""
    failed = [r for r in results if not r.passed]
    if not failed:
        return True, f"all {len(results)} check(s) passed"
    summary = f"{len(failed)} of {len(results)} check(s) failed: " + "; ".join(r.detail for r in failed)
    if severity == "warn":
        return True, f"{summary} (severity warn: the task succeeds)"
    return False, summary


def results_info(results: Sequence[CheckResult]) -> list[dict[str, Any]]:
    """The check results for ``custom_info`` (JSON-safe)."""
    return [{k: _json_safe(v) if not isinstance(v, dict) else v for k, v in r.to_info().items()} for r in results]
