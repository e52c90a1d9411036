"""What sensor adapters ask the core before any call: the task's custom fields, starting a sensor (refusals kept,
never raised), the handle that travels between pokes, and a poke of a refused sensor."""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import pytest
from flyte_bigquery_core.errors import InvalidMetadataError, InvalidTaskError, PermanentError
from flyte_bigquery_core.sensor_tasks import SensorHandle, poke, sensor_custom, start_sensor
from flyte_bigquery_core.status import Outcome


async def _values(**values: Any) -> dict[str, Any]:
    return values


async def _refused() -> dict[str, Any]:
    raise PermanentError("input 'after' could not be read")


def test_sensor_custom_records_project_location_kind_and_table() -> None:
    assert sensor_custom("partition_exists", "p", "EU", "d.t", "s") == {
        "ProjectID": "p",
        "Location": "EU",
        "Sensor": {"kind": "partition_exists", "table": "d.t"},
    }


@pytest.mark.parametrize(
    ("project", "table", "text"),
    [("p", "d.t$20240101", "sensor table 'd.t$20240101' is not a table path"), ("", "d.t", "ProjectID")],
)
def test_sensor_custom_refuses_bad_settings_naming_the_task(project: str, table: str, text: str) -> None:
    with pytest.raises(InvalidTaskError) as caught:
        sensor_custom("table_exists", project, None, table, "s_bad")
    assert "'s_bad'" in str(caught.value) and text in str(caught.value)


def test_starting_a_sensor_decides_its_spec_and_deadline() -> None:
    custom = sensor_custom("modified_after", "p", None, "d.t", "s")
    after = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    before = time.time()
    spec, error = asyncio.run(start_sensor(custom, _values(after=after), "s", 60.0))
    assert error is None and spec is not None
    assert spec["after_ms"] == int(after.timestamp() * 1000) and spec["deadline"] >= before + 60


@pytest.mark.parametrize(
    ("values", "text"),
    [(_values(partition="soon"), "input 'partition' is not a partition id"), (_refused(), "could not be read")],
)
def test_a_refused_start_is_kept_as_a_message_naming_task_and_input(values: Any, text: str) -> None:
    custom = sensor_custom("partition_exists", "p", None, "d.t", "s")
    spec, error = asyncio.run(start_sensor(custom, values, "s", None))
    assert spec is None and error is not None
    assert error.startswith("task 's': ") and text in error


def test_a_refused_sensor_fails_its_poke_without_any_call() -> None:
    outcome, sensed, message = asyncio.run(poke(None, None, "task 's': input 'partition' is not a partition id"))
    assert (outcome, sensed) == (Outcome.PERMANENT_FAILURE, None)
    assert message == "task 's': input 'partition' is not a partition id"


def test_the_handle_round_trips_and_garbage_is_refused() -> None:
    spec = {"task": "t", "kind": "table_exists", "project": "p", "dataset": "d", "table": "t"}
    assert SensorHandle.decode(SensorHandle(spec=spec).encode()) == SensorHandle(spec=spec)
    assert SensorHandle.decode(SensorHandle(error="no").encode()) == SensorHandle(error="no")
    for garbage in (b"\xff", b"[]", b'{"spec": 1}', b'{"spec": {"nope": 1}}'):
        with pytest.raises(InvalidMetadataError):
            SensorHandle.decode(garbage)
