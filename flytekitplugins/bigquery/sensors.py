"""BigQuery sensors on flytekit's sensor framework, run by :class:`BigQuerySensorConnector` (no pod).

Three ``BaseSensor`` tasks — :class:`BigQueryTableSensor`, :class:`BigQueryPartitionSensor`,
:class:`BigQueryTableModifiedSensor` — of task type ``bigquery_sensor``. Their inputs come from ``poke``'s
signature, as flytekit's sensors' do. Everything is decided in the core (:mod:`flyte_bigquery_core.sensing`:
metadata calls only, 0 bytes scanned); this module translates. Unlike flytekit's generic ``SensorEngine`` the
connector never raises out of ``get``: bad settings or inputs end the task with a message before any call, a
condition that can never hold (an unpartitioned table) fails it permanently, BigQuery being unavailable keeps
it waiting, and the task's timeout ends the wait.
"""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from flyte_bigquery_core import metrics
from flyte_bigquery_core.clients import shared_pool
from flyte_bigquery_core.errors import BigQueryPluginError, InvalidMetadataError
from flyte_bigquery_core.jobconfig import require_project
from flyte_bigquery_core.sensing import SENSOR_KEY, Sensed, SensorSpec, sense, sensor_spec
from flyte_bigquery_core.settings import current_settings
from flyteidl.admin.agent_pb2 import (
    GetTaskLogsResponse,
    GetTaskLogsResponseBody,
    GetTaskLogsResponseHeader,
    GetTaskMetricsResponse,
)
from flyteidl.core.execution_pb2 import TaskExecution
from flytekit import logger
from flytekit.configuration import SerializationSettings
from flytekit.extend.backend.base_connector import AsyncConnectorBase, ConnectorRegistry, Resource, ResourceMeta
from flytekit.models.literals import LiteralMap
from flytekit.models.task import TaskTemplate
from flytekit.sensor.base_sensor import BaseSensor

from .literals import input_values
from .task import BigQueryConfig

__all__ = [
    "SENSOR_TASK_TYPE",
    "BigQueryPartitionSensor",
    "BigQuerySensorConnector",
    "BigQuerySensorMetadata",
    "BigQueryTableModifiedSensor",
    "BigQueryTableSensor",
]

SENSOR_TASK_TYPE = "bigquery_sensor"


@dataclass
class BigQuerySensorMetadata(ResourceMeta):
    """What the connector keeps between pokes: the decided sensor, or why it was refused."""

    spec: dict[str, Any] | None = None
    error: str | None = None

    def encode(self) -> bytes:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}).encode()

    @classmethod
    def decode(cls, data: bytes) -> BigQuerySensorMetadata:
        try:
            raw = json.loads(data.decode("utf-8"))
            assert isinstance(raw, dict) and (isinstance(raw.get("spec"), dict) or isinstance(raw.get("error"), str))
            meta = cls(spec=raw.get("spec"), error=raw.get("error"))
            if meta.spec is not None:
                SensorSpec.from_json(meta.spec)
            return meta
        except (UnicodeDecodeError, ValueError, TypeError, AssertionError):
            raise InvalidMetadataError("resource_meta is not BigQuery sensor metadata") from None


class _BigQuerySensor(BaseSensor):
    """A BigQuery sensor: ``table`` is ``dataset.table`` or ``project.dataset.table`` (default project:
    ``task_config.ProjectID``). ``timeout`` bounds the wait (the task fails when it passes)."""

    _KIND = ""

    def __init__(
        self,
        name: str,
        task_config: BigQueryConfig,
        table: str,
        timeout: datetime.timedelta | int | None = None,
        **kwargs: Any,
    ) -> None:
        require_project(task_config.ProjectID if task_config is not None else None, name)
        self._config = task_config
        self._table = table
        super().__init__(name=name, timeout=timeout, task_type=SENSOR_TASK_TYPE, **kwargs)
        # Refuse a malformed table path now, naming the task (inputs are checked when it runs).
        sensor_spec(self._custom(), _EXAMPLE_INPUTS, name, 0.0, None)

    def _custom(self) -> dict[str, Any]:
        return {
            "ProjectID": self._config.ProjectID,
            "Location": self._config.Location,
            SENSOR_KEY: {"kind": self._KIND, "table": self._table},
        }

    def get_custom(self, settings: SerializationSettings) -> dict[str, Any]:
        return self._custom()

    async def _poke(self, **inputs: Any) -> bool:
        """The condition now, judged by the core (what :meth:`poke` returns when called directly)."""
        spec = sensor_spec(self._custom(), inputs, self.name, time.time(), None)
        return (await sense(shared_pool().jobs(current_settings()), spec)).met


#: Inputs that satisfy every kind, to check a sensor's settings at definition time.
_EXAMPLE_INPUTS = {"partition": "20240101", "after": datetime.datetime(2024, 1, 1)}


class BigQueryTableSensor(_BigQuerySensor):
    """Succeeds once the table exists (``tables.get``)."""

    _KIND = "table_exists"

    async def poke(self) -> bool:
        return await self._poke()


class BigQueryPartitionSensor(_BigQuerySensor):
    """Succeeds once partition ``partition`` (``20240101``, ``2024-01-01``, ``2024010113``, ``__NULL__``…) of a
    partitioned table exists (``tables.get`` + the free partitions meta-table)."""

    _KIND = "partition_exists"

    async def poke(self, partition: str) -> bool:
        return await self._poke(partition=partition)


class BigQueryTableModifiedSensor(_BigQuerySensor):
    """Succeeds once the table's ``lastModifiedTime`` is later than ``after`` (naive means UTC)."""

    _KIND = "modified_after"

    async def poke(self, after: datetime.datetime) -> bool:
        return await self._poke(after=after)


class BigQuerySensorConnector(AsyncConnectorBase):
    """Runs ``bigquery_sensor`` tasks: each ``get`` is one poke."""

    name = "BigQuery Sensor Connector"

    def __init__(self) -> None:
        super().__init__(task_type_name=SENSOR_TASK_TYPE, metadata_type=BigQuerySensorMetadata)

    async def create(
        self, task_template: TaskTemplate, inputs: LiteralMap | None = None, **kwargs: Any
    ) -> BigQuerySensorMetadata:
        name = task_template.id.name if task_template.id else "?"
        timeout = task_template.metadata.timeout if task_template.metadata is not None else None
        try:
            values = await input_values(inputs, name, shared_pool())
            spec = sensor_spec(
                task_template.custom or {}, values, name, time.time(), timeout and timeout.total_seconds()
            )
        except BigQueryPluginError as error:
            logger.warning("BigQuery sensor %s was refused: %s", name, error.for_task(name))
            return BigQuerySensorMetadata(error=error.for_task(name))
        return BigQuerySensorMetadata(spec=spec.to_json())

    async def _poke(self, meta: BigQuerySensorMetadata) -> tuple[int, Sensed | None, str]:
        if meta.error is not None or meta.spec is None:
            return TaskExecution.FAILED, None, meta.error or "no sensor"
        spec = SensorSpec.from_json(meta.spec)
        try:
            sensed = await sense(shared_pool().jobs(current_settings()), spec)
        except BigQueryPluginError as error:
            if error.retryable:
                return TaskExecution.RUNNING, None, f"{error}; will check again"
            return TaskExecution.FAILED, None, error.for_task(spec.task)
        if sensed.met:
            return TaskExecution.SUCCEEDED, sensed, sensed.message
        if spec.deadline is not None and time.time() > spec.deadline:
            return TaskExecution.FAILED, sensed, f"task {spec.task!r}: timed out waiting: {sensed.message}"
        return TaskExecution.RUNNING, sensed, sensed.message

    async def get(self, resource_meta: BigQuerySensorMetadata, **kwargs: Any) -> Resource:
        phase, sensed, message = await self._poke(resource_meta)
        metrics.phase_returned(TaskExecution.Phase.Name(phase))
        return Resource(phase=phase, message=message, custom_info=sensed.info if sensed is not None else None)

    async def delete(self, resource_meta: BigQuerySensorMetadata, **kwargs: Any) -> None:
        """Nothing to cancel: a sensor starts no job."""

    async def get_logs(self, resource_meta: BigQuerySensorMetadata, **kwargs: Any) -> GetTaskLogsResponse:
        """One line: what a poke finds now."""
        _, _, message = await self._poke(resource_meta)
        return GetTaskLogsResponse(
            header=GetTaskLogsResponseHeader(token=""), body=GetTaskLogsResponseBody(results=[message])
        )

    async def get_metrics(self, resource_meta: BigQuerySensorMetadata, **kwargs: Any) -> GetTaskMetricsResponse:
        """None: a sensor runs no job (its calls are counted in the connector's Prometheus metrics)."""
        return GetTaskMetricsResponse(results=[])


ConnectorRegistry.register(BigQuerySensorConnector(), override=True)
