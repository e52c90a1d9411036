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
import time
from dataclasses import dataclass
from typing import Any

from flyte_bigquery_core import metrics
from flyte_bigquery_core.clients import shared_pool
from flyte_bigquery_core.connector_core import PHASE_NAMES
from flyte_bigquery_core.sensing import sense, sensor_spec
from flyte_bigquery_core.sensor_tasks import SENSOR_TASK_TYPE, SensorHandle, poke, sensor_custom, start_sensor
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


@dataclass
class BigQuerySensorMetadata(SensorHandle, ResourceMeta):
    """What the connector keeps between pokes: the decided sensor, or why it was refused
    (:class:`flyte_bigquery_core.sensor_tasks.SensorHandle`)."""


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
        project = task_config.ProjectID if task_config is not None else None
        location = task_config.Location if task_config is not None else None
        # Refuses a missing project and a malformed table path now, naming the task.
        self._custom_fields = sensor_custom(self._KIND, project, location, table, name)
        super().__init__(name=name, timeout=timeout, task_type=SENSOR_TASK_TYPE, **kwargs)

    def get_custom(self, settings: SerializationSettings) -> dict[str, Any]:
        return dict(self._custom_fields)

    async def _poke(self, **inputs: Any) -> bool:
        """The condition now, judged by the core (what :meth:`poke` returns when called directly)."""
        spec = sensor_spec(self._custom_fields, inputs, self.name, time.time(), None)
        return (await sense(shared_pool().jobs(current_settings()), spec)).met


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
        values = input_values(inputs, name, shared_pool())
        spec, error = await start_sensor(task_template.custom or {}, values, name, timeout and timeout.total_seconds())
        if error is not None:
            logger.warning("BigQuery sensor %s was refused: %s", name, error)
        return BigQuerySensorMetadata(spec=spec, error=error)

    async def _poke(self, meta: BigQuerySensorMetadata) -> tuple[int, dict[str, Any] | None, str]:
        outcome, sensed, message = await poke(shared_pool().jobs(current_settings()), meta.spec, meta.error)
        return TaskExecution.Phase.Value(PHASE_NAMES[outcome]), sensed.info if sensed is not None else None, message

    async def get(self, resource_meta: BigQuerySensorMetadata, **kwargs: Any) -> Resource:
        phase, info, message = await self._poke(resource_meta)
        metrics.phase_returned(TaskExecution.Phase.Name(phase))
        return Resource(phase=phase, message=message, custom_info=info)

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
