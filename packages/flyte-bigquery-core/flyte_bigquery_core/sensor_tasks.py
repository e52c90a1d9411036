"""What every Flyte adapter of BigQuery sensors does with the core, free of any Flyte SDK.

A sensor task records its settings in its custom fields (:func:`sensor_custom`, refused at definition time when
malformed), its connector decides a :class:`~.sensing.SensorSpec` at create (:func:`start_sensor`: a refusal is
kept in the handle, never raised), and every ``get`` is one poke (:func:`poke`): met → SUCCEEDED, not yet →
RUNNING, past the task's timeout → a permanent failure, BigQuery unavailable → RUNNING (poke again), a condition
that can never hold → a permanent failure. :class:`SensorHandle` is the metadata that travels between calls.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from collections.abc import Awaitable, Mapping
from typing import Any

from .errors import BigQueryPluginError, InvalidMetadataError
from .jobconfig import require_project
from .sensing import SENSOR_KEY, Sensed, SensorSpec, sense, sensor_spec
from .status import Outcome

__all__ = ["SENSOR_TASK_TYPE", "SensorHandle", "poke", "sensor_custom", "start_sensor"]

#: The task type of every BigQuery sensor, in both SDKs.
SENSOR_TASK_TYPE = "bigquery_sensor"
#: Inputs that satisfy every kind, to check a sensor's settings at definition time.
_EXAMPLE_INPUTS = {"partition": "20240101", "after": datetime.datetime(2024, 1, 1)}


def sensor_custom(kind: str, project: str | None, location: str | None, table: str, task: str) -> dict[str, Any]:
    """A sensor task's custom fields; a missing project or a malformed table path raises
    :class:`~.errors.InvalidTaskError` now, naming the task (inputs are checked when it runs)."""
    require_project(project, task)
    custom = {"ProjectID": project, "Location": location, SENSOR_KEY: {"kind": kind, "table": table}}
    sensor_spec(custom, _EXAMPLE_INPUTS, task, 0.0, None)
    return custom


@dataclasses.dataclass
class SensorHandle:
    """What a sensor's connector keeps between pokes: the decided sensor (``spec``), or why it was refused."""

    spec: dict[str, Any] | None = None
    error: str | None = None

    def encode(self) -> bytes:
        return json.dumps({k: v for k, v in dataclasses.asdict(self).items() if v is not None}).encode()

    @classmethod
    def decode(cls, data: bytes) -> Any:
        """Raises :class:`~.errors.InvalidMetadataError` for anything :meth:`encode` did not write."""
        try:
            raw = json.loads(data.decode("utf-8"))
            assert isinstance(raw, dict) and (isinstance(raw.get("spec"), dict) or isinstance(raw.get("error"), str))
            handle = cls(spec=raw.get("spec"), error=raw.get("error"))
            if handle.spec is not None:
                SensorSpec.from_json(handle.spec)
            return handle
        except (UnicodeDecodeError, ValueError, TypeError, AssertionError):
            raise InvalidMetadataError("resource_meta is not BigQuery sensor metadata") from None


async def start_sensor(
    custom: Mapping[str, Any], values: Awaitable[Mapping[str, Any]], task: str, timeout_seconds: float | None
) -> tuple[dict[str, Any] | None, str | None]:
    """``(spec as JSON, None)``, or ``(None, message)`` when the settings or inputs are refused (the message
    names the task and the input). ``values`` is the adapter's decoding of the inputs, awaited here so that its
    refusals are kept like the sensor's own."""
    try:
        return sensor_spec(custom, await values, task, time.time(), timeout_seconds).to_json(), None
    except BigQueryPluginError as error:
        return None, error.for_task(task)


async def poke(api: Any, spec_json: Mapping[str, Any] | None, error: str | None) -> tuple[Outcome, Sensed | None, str]:
    """One poke of a started sensor through ``api`` (:class:`~.jobs_api.JobsApi`): the outcome, what was sensed
    (``None`` when nothing was) and a message for people."""
    if error is not None or spec_json is None:
        return Outcome.PERMANENT_FAILURE, None, error or "no sensor"
    spec = SensorSpec.from_json(spec_json)
    try:
        sensed = await sense(api, spec)
    except BigQueryPluginError as e:
        if e.retryable:
            return Outcome.RUNNING, None, f"{e}; will check again"
        return Outcome.PERMANENT_FAILURE, None, e.for_task(spec.task)
    if sensed.met:
        return Outcome.SUCCEEDED, sensed, sensed.message
    if spec.deadline is not None and time.time() > spec.deadline:
        return Outcome.PERMANENT_FAILURE, sensed, f"task {spec.task!r}: timed out waiting: {sensed.message}"
    return Outcome.RUNNING, sensed, sensed.message
