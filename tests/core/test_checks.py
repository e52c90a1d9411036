"""Data-quality checks: tolerance and interval arithmetic, judging a row, severity, the spec and its query."""

from __future__ import annotations

import math
from typing import Any

import pytest
from flyte_bigquery_core.checks import (
    CheckSpec,
    IntervalCheck,
    ValueCheck,
    evaluate,
    interval_sql,
    relative_change,
    verdict,
    within_tolerance,
)
from flyte_bigquery_core.errors import InvalidTaskError, PermanentError


def _response(fields: list[tuple[str, str]], row: list[Any], total: int = 1) -> dict[str, Any]:
    return {
        "schema": {"fields": [{"name": name, "type": kind} for name, kind in fields]},
        "totalRows": str(total),
        "rows": [{"f": [{"v": cell} for cell in row]}] if total else [],
    }


@pytest.mark.parametrize(
    ("actual", "expected", "tolerance", "passes"),
    [
        (100, 100, 0.0, True),
        (101, 100, 0.0, False),
        (110, 100, 0.1, True),
        (90, 100, 0.1, True),
        (111, 100, 0.1, False),
        (0, 0, 0.5, True),
        (0.001, 0, 0.5, False),  # a tolerance of 0 expected is exact
        (-105, -100, 0.05, True),
    ],
)
def test_value_tolerance_is_relative_to_the_expected_value(
    actual: float, expected: float, tolerance: float, passes: bool
) -> None:
    assert within_tolerance(actual, expected, tolerance) is passes


@pytest.mark.parametrize(
    ("current", "reference", "change"),
    [(150, 100, 0.5), (50, 100, 0.5), (100, 100, 0.0), (0, 0, 0.0), (5, 0, math.inf), (-50, -100, 0.5)],
)
def test_interval_change_is_relative_to_the_reference(current: float, reference: float, change: float) -> None:
    assert relative_change(current, reference) == change


def test_a_row_check_passes_only_when_every_column_is_true() -> None:
    fields = [("has_rows", "BOOLEAN"), ("no_nulls", "BOOLEAN"), ("fresh", "BOOLEAN")]
    results = evaluate(_response(fields, ["true", "false", None]), CheckSpec(), "t")
    assert [(r.check, r.passed) for r in results] == [
        ("row: has_rows", True),
        ("row: no_nulls", False),
        ("row: fresh", False),
    ]


def test_value_checks_judge_their_columns_and_the_rest_is_a_row_check() -> None:
    spec = CheckSpec(values=(ValueCheck("n", 100, 0.1), ValueCheck("avg", 2.0)))
    fields = [("n", "INTEGER"), ("avg", "FLOAT"), ("ok", "BOOLEAN")]
    results = evaluate(_response(fields, ["120", "2.0", "true"]), spec, "t")
    assert [(r.check, r.passed, r.actual) for r in results] == [
        ("value: n", False, 120.0),
        ("value: avg", True, 2.0),
        ("row: ok", True, True),
    ]
    assert results[0].detail == "n = 120.0 (expected 100 ± 10%)"


def test_a_null_value_fails_its_value_check() -> None:
    [result] = evaluate(_response([("n", "INTEGER")], [None]), CheckSpec(values=(ValueCheck("n", 0),)), "t")
    assert not result.passed


def test_interval_metrics_compare_today_with_the_reference_day() -> None:
    check = IntervalCheck("d.t", "day", {"COUNT(*)": 0.5, "SUM(x)": 0.1}, days_back=7)
    fields = [
        ("current_m0", "INTEGER"),
        ("reference_m0", "INTEGER"),
        ("current_m1", "INTEGER"),
        ("reference_m1", "INTEGER"),
    ]
    results = evaluate(_response(fields, ["140", "100", "120", "100"]), CheckSpec(interval=check), "t")
    assert [(r.check, r.passed) for r in results] == [("interval: COUNT(*)", True), ("interval: SUM(x)", False)]
    assert results[1].actual == {"current": 120.0, "reference": 100.0}
    assert "change 20.0% (threshold 10%)" in results[1].detail


def test_an_interval_metric_missing_on_one_day_fails() -> None:
    check = IntervalCheck("d.t", "day", {"AVG(x)": 1.0})
    fields = [("current_m0", "FLOAT"), ("reference_m0", "FLOAT")]
    [result] = evaluate(_response(fields, ["1.0", None]), CheckSpec(interval=check), "t")
    assert not result.passed and "undefined" in result.detail


@pytest.mark.parametrize(
    ("spec", "response", "text"),
    [
        (CheckSpec(), _response([("ok", "BOOLEAN")], [], total=0), "exactly one row; it returned 0"),
        (CheckSpec(), _response([("ok", "BOOLEAN")], ["true"], total=2), "exactly one row; it returned 2"),
        (CheckSpec(), _response([("n", "INTEGER")], ["1"]), "row check column 'n' is INTEGER; every column"),
        (CheckSpec(values=(ValueCheck("n", 1),)), _response([("m", "INTEGER")], ["1"]), "column 'n' is not in"),
        (CheckSpec(values=(ValueCheck("n", 1),)), _response([("n", "STRING")], ["1"]), "'n' is not a number"),
    ],
)
def test_a_result_no_check_can_judge_fails_permanently(spec: CheckSpec, response: dict[str, Any], text: str) -> None:
    with pytest.raises(PermanentError) as caught:
        evaluate(response, spec, "wf.check")
    assert text in str(caught.value) and "'wf.check'" in str(caught.value)


def test_severity_fail_fails_and_warn_succeeds_naming_the_failed_checks() -> None:
    results = evaluate(_response([("a", "BOOLEAN"), ("b", "BOOLEAN")], ["true", "false"]), CheckSpec(), "t")
    assert verdict(results, "fail") == (False, "1 of 2 check(s) failed: b is False")
    succeeds, message = verdict(results, "warn")
    assert succeeds and message.endswith("(severity warn: the task succeeds)")
    assert verdict(results[:1], "fail") == (True, "all 1 check(s) passed")


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (CheckSpec(severity="error"), "severity 'error' is not one of fail, warn"),
        (CheckSpec(values=(ValueCheck("n", 1, -0.1),)), "tolerance >= 0"),
        (CheckSpec(values=(ValueCheck("n", math.nan),)), "finite expected value"),
        (CheckSpec(interval=IntervalCheck("t; DROP", "d", {"COUNT(*)": 1})), "not a table path"),
        (CheckSpec(interval=IntervalCheck("d.t", "d", {})), "needs metrics"),
        (CheckSpec(interval=IntervalCheck("d.t", "d", {"COUNT(*)": 1}, days_back=0)), "days_back"),
        (CheckSpec(interval=IntervalCheck("d.t", "d", {"COUNT(*)": 1}, date_input="1x")), "date_input"),
    ],
)
def test_bad_check_settings_are_refused_naming_the_task(spec: CheckSpec, text: str) -> None:
    with pytest.raises(InvalidTaskError) as caught:
        spec.validate("wf.check")
    assert text in str(caught.value) and "'wf.check'" in str(caught.value)


def test_the_spec_round_trips_through_json() -> None:
    spec = CheckSpec("warn", (ValueCheck("n", 5, 0.2),), None)
    assert CheckSpec.from_json(spec.to_json(), "t") == spec
    interval = CheckSpec(interval=IntervalCheck("p.d.t", "DATE(ts)", {"COUNT(*)": 0.5}, 3, "day"))
    assert CheckSpec.from_json(interval.to_json(), "t") == interval
    with pytest.raises(InvalidTaskError, match="Checks are malformed"):
        CheckSpec.from_json({"values": [{"col": "n"}]}, "t")


def test_the_interval_query_yields_current_and_reference_per_metric() -> None:
    sql = interval_sql(IntervalCheck("d.t", "day", {"COUNT(*)": 0.5, "SUM(x)": 0.1}, days_back=7, date_input="ds"))
    assert sql == (
        "SELECT c.m0 AS current_m0, r.m0 AS reference_m0, c.m1 AS current_m1, r.m1 AS reference_m1\n"
        "FROM (SELECT COUNT(*) AS m0, SUM(x) AS m1 FROM `d.t` WHERE day = @ds) AS c\n"
        "CROSS JOIN (SELECT COUNT(*) AS m0, SUM(x) AS m1 FROM `d.t`\n"
        "  WHERE day = DATE_SUB(@ds, INTERVAL 7 DAY)) AS r"
    )
    assert "CURRENT_DATE()" in interval_sql(IntervalCheck("d.t", "day", {"COUNT(*)": 0.5}))
    narrowed = interval_sql(IntervalCheck("d.t", "day", {"COUNT(*)": 0.5}, where="kind = 'a'"))
    assert narrowed.count("AND (kind = 'a')") == 2  # both days
