"""Partition decorators against the declared layout, and the layout specs' REST shapes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flyte_bigquery_core.errors import InvalidTaskError
from flyte_bigquery_core.partitioning import RangePartitioning, TimePartitioning, check_decorator, partition_decorator

DAY, HOUR, MONTH, YEAR = (TimePartitioning(t) for t in ("DAY", "HOUR", "MONTH", "YEAR"))
RANGE = RangePartitioning("n", -10, 100, 10)

# (decorator, time partitioning, range partitioning, accepted)
DECORATORS = [
    ("20240229", DAY, None, True),
    ("20230229", DAY, None, False),  # no such day
    ("2024022913", HOUR, None, True),
    ("2024022924", HOUR, None, False),
    ("202402", MONTH, None, True),
    ("20240201", MONTH, None, False),
    ("2024", YEAR, None, True),
    ("__NULL__", DAY, None, True),
    ("__UNPARTITIONED__", None, RANGE, True),
    ("-10", None, RANGE, True),
    ("90", None, RANGE, True),
    ("100", None, RANGE, False),  # the end is exclusive
    ("5", None, RANGE, False),  # not a range start
    ("20240101", None, None, True),  # no layout declared: any date or integer
    ("42", None, None, True),
    ("today", None, None, False),
]


@pytest.mark.parametrize(("decorator", "time", "integer_range", "accepted"), DECORATORS)
def test_a_decorator_must_name_a_partition_of_the_layout(
    decorator: str, time: TimePartitioning | None, integer_range: RangePartitioning | None, accepted: bool
) -> None:
    if accepted:
        check_decorator(decorator, time, integer_range, "x")
    else:
        with pytest.raises(InvalidTaskError, match=rf"x: partition.*\${decorator}"):
            check_decorator(decorator, time, integer_range, "x")


def test_layout_specs_have_bigquerys_rest_shapes() -> None:
    assert TimePartitioning("DAY", "day", 1000).to_api_repr() == {"type": "DAY", "field": "day", "expirationMs": "1000"}
    assert RANGE.to_api_repr() == {"field": "n", "range": {"start": "-10", "end": "100", "interval": "10"}}
    assert RangePartitioning.from_api_repr(RANGE.to_api_repr()) == RANGE
    assert TimePartitioning.from_api_repr({"type": "HOUR"}) == HOUR


@pytest.mark.parametrize(
    "make",
    [
        lambda: TimePartitioning("WEEK"),
        lambda: RangePartitioning("n", 10, 0, 1),
        lambda: RangePartitioning("n", 0, 9, 0),
    ],
)
def test_an_impossible_layout_is_refused_when_written(make: object) -> None:
    with pytest.raises(InvalidTaskError):
        make()  # type: ignore[operator]


# (the partition input's value, time partitioning, range partitioning, the decorator or None: refused)
PARTITION_VALUES = [
    (dt.date(2024, 1, 2), None, None, "20240102"),
    (dt.datetime(2024, 1, 2), DAY, None, "20240102"),
    (dt.datetime(2024, 1, 2, 13, 30), HOUR, None, "2024010213"),
    (dt.date(2024, 1, 2), MONTH, None, "202401"),
    (dt.date(2024, 1, 2), YEAR, None, "2024"),
    (20, None, RANGE, "20"),
    (25, None, RANGE, None),
    ("20240102", DAY, None, "20240102"),
    ("$20240102", DAY, None, "20240102"),
    ("__NULL__", DAY, None, "__NULL__"),
    ("2024-01-02", DAY, None, None),
    ("../x", None, None, None),
    ("", None, None, None),
    (True, None, RANGE, None),
    (1.5, None, None, None),
    (dt.date(2024, 1, 2), None, RANGE, None),
]


@pytest.mark.parametrize(("value", "time", "integer_range", "expected"), PARTITION_VALUES)
def test_a_partition_input_becomes_the_decorator_of_its_partition(
    value: Any, time: TimePartitioning | None, integer_range: RangePartitioning | None, expected: str | None
) -> None:
    if expected is not None:
        assert partition_decorator(value, time, integer_range, "input 'partition'") == expected
    else:
        with pytest.raises(InvalidTaskError, match="input 'partition'") as e:
            partition_decorator(value, time, integer_range, "input 'partition'")
        assert not isinstance(value, str) or not value or value not in str(e.value)
