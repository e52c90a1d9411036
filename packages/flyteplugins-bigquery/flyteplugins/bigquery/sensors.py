"""BigQuery sensors for Flyte 2, run by :class:`BigQuerySensorConnector` (no pod).

Flyte 2 has no sensor framework, so the three sensors are Flyte 2 tasks of task type ``bigquery_sensor`` that a
connector serves: :class:`BigQueryTableSensor` (no inputs), :class:`BigQueryPartitionSensor` (input
``partition: str``) and :class:`BigQueryTableModifiedSensor` (input ``after: datetime``). Each ``get`` is one
poke. Everything is decided in the core (:mod:`flyte_bigquery_core.sensor_tasks` and
:mod:`flyte_bigquery_core.sensing`: metadata calls only, 0 bytes scanned); this module translates. The connector
never raises out of ``get``: bad settings or inputs end the task with a message before any call, a condition that
can never hold (an unpartitioned table) fails it permanently, BigQuery being unavailable keeps it waiting, and
the task's ``timeout`` ends the wait. In a local run the sensor polls in the caller's process (:mod:`.local`).

The connector is registered when this module is imported (``flyteplugins.bigquery`` imports it; Flyte 2's
connector services load it through the ``flyte.connectors`` entry point ``bigquery_sensor``).
"""

from __future__ import annotations

import datetime
import inspect
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

from flyte.connectors import AsyncConnector, AsyncConnectorExecutorMixin, ConnectorRegistry, Resource, ResourceMeta
from flyte.extend import TaskTemplate
from flyte.models import NativeInterface, SerializationContext
from flyte_bigquery_core import metrics
from flyte_bigquery_core.clients import shared_pool
from flyte_bigquery_core.connector_core import PHASE_NAMES, at_start_up
from flyte_bigquery_core.definition import BigQueryConfig
from flyte_bigquery_core.sensing import Sensed
from flyte_bigquery_core.sensor_tasks import SENSOR_TASK_TYPE, SensorHandle, poke, sensor_custom, start_sensor
from flyte_bigquery_core.settings import Settings, current_settings
from flyte_bigquery_core.status import Outcome
from flyteidl2.connector.connector_pb2 import (
    GetTaskLogsResponse,
    GetTaskLogsResponseBody,
    GetTaskMetricsResponse,
    TaskExecutionMetadata,
)
from flyteidl2.core import tasks_pb2
from flyteidl2.core.tasks_pb2 import TaskTemplate as TaskTemplateProto

from .connector import PHASES
from .inputs import plain_inputs
from .service import EXIT_BAD_SETTINGS
from .task import CREDENTIALS_SECRET

__all__ = [
    "SENSOR_TASK_TYPE",
    "BigQueryPartitionSensor",
    "BigQuerySensorConnector",
    "BigQuerySensorMetadata",
    "BigQueryTableModifiedSensor",
    "BigQueryTableSensor",
]

logger = logging.getLogger(__name__)


@dataclass
class BigQuerySensorMetadata(SensorHandle, ResourceMeta):
    """What the connector keeps between pokes: the decided sensor, or why it was refused
    (:class:`flyte_bigquery_core.sensor_tasks.SensorHandle`)."""


class _BigQuerySensor(AsyncConnectorExecutorMixin, TaskTemplate):
    """A BigQuery sensor: ``table`` is ``dataset.table`` or ``project.dataset.table`` (default project:
    ``plugin_config.ProjectID``). ``timeout`` (seconds or a ``timedelta``) bounds the wait: the task fails when
    it passes. A missing project or a malformed table path raises
    :class:`~flyte_bigquery_core.errors.InvalidTaskError` here, naming the task."""

    _KIND: ClassVar[str] = ""
    _INPUTS: ClassVar[dict[str, type]] = {}

    def __init__(
        self,
        name: str,
        plugin_config: BigQueryConfig,
        table: str,
        timeout: datetime.timedelta | int | None = None,
        **kwargs: Any,
    ) -> None:
        custom = sensor_custom(self._KIND, plugin_config.ProjectID, plugin_config.Location, table, name)
        inputs = {key: (kind, inspect.Parameter.empty) for key, kind in self._INPUTS.items()}
        super().__init__(
            name=name,
            interface=NativeInterface(inputs, {}),
            task_type=SENSOR_TASK_TYPE,
            image=None,
            timeout=timeout,
            **kwargs,
        )
        self._custom_fields = custom

    async def execute(self, **kwargs: Any) -> Any:
        """Poke through the registered connector in this process until the sensor ends (a local run)."""
        from .local import run_locally

        return await run_locally(self, kwargs)

    def custom_config(self, sctx: SerializationContext) -> dict[str, Any]:
        return dict(self._custom_fields)

    def sql(self, sctx: SerializationContext) -> tasks_pb2.Sql:
        """An empty statement: Flyte 2's serializer gives a task without SQL a container (which needs an image and
        an environment) that a connector task never runs; this keeps the sensor's template container-free, like
        the query task's."""
        return tasks_pb2.Sql(statement="", dialect=tasks_pb2.Sql.Dialect.UNDEFINED)


class BigQueryTableSensor(_BigQuerySensor):
    """Succeeds once the table exists (``tables.get``)."""

    _KIND = "table_exists"


class BigQueryPartitionSensor(_BigQuerySensor):
    """Succeeds once partition ``partition`` (``20240101``, ``2024-01-01``, ``2024010113``, ``__NULL__``…) of a
    partitioned table exists (``tables.get`` + the free partitions meta-table)."""

    _KIND = "partition_exists"
    _INPUTS = {"partition": str}


class BigQueryTableModifiedSensor(_BigQuerySensor):
    """Succeeds once the table's ``lastModifiedTime`` is later than ``after`` (naive means UTC)."""

    _KIND = "modified_after"
    _INPUTS = {"after": datetime.datetime}


class BigQuerySensorConnector(AsyncConnector[BigQuerySensorMetadata]):
    """Runs ``bigquery_sensor`` tasks: each ``get`` is one poke. A connection's ``google_application_credentials``
    secret, when given, makes the calls with that service account; otherwise the process's credentials do."""

    name = "BigQuery Sensor Connector"
    task_type_name = SENSOR_TASK_TYPE
    metadata_type = BigQuerySensorMetadata

    def __init__(self, settings: Settings | None = None) -> None:
        """``settings`` pins the settings; without, the process's are read and validated here (a malformed
        variable raises :class:`~flyte_bigquery_core.errors.SettingsError` now, naming it)."""
        self._pinned = settings
        if settings is None:
            current_settings()

    async def create(
        self,
        task_template: TaskTemplateProto,
        output_prefix: str = "",
        inputs: dict[str, Any] | None = None,
        task_execution_metadata: TaskExecutionMetadata | None = None,
        **kwargs: Any,
    ) -> BigQuerySensorMetadata:
        from google.protobuf import json_format

        name = task_template.id.name or "?"
        custom = json_format.MessageToDict(task_template.custom) if task_template.HasField("custom") else {}
        timeout = task_template.metadata.timeout if task_template.metadata.HasField("timeout") else None
        seconds = timeout.ToTimedelta().total_seconds() if timeout is not None else None
        spec, error = await start_sensor(custom, plain_inputs(inputs, name), name, seconds or None)
        if error is not None:
            logger.warning("BigQuery sensor %s was refused: %s", name, error)
        return BigQuerySensorMetadata(spec=spec, error=error)

    async def _poke(self, meta: BigQuerySensorMetadata, secret: str | None) -> tuple[Outcome, Sensed | None, str]:
        api = shared_pool().jobs(self._pinned or current_settings(), secret)
        return await poke(api, meta.spec, meta.error)

    async def get(self, resource_meta: BigQuerySensorMetadata, **kwargs: Any) -> Resource:
        outcome, sensed, message = await self._poke(resource_meta, kwargs.get(CREDENTIALS_SECRET))
        metrics.phase_returned(PHASE_NAMES[outcome])
        return Resource(phase=PHASES[outcome], message=message, custom_info=sensed.info if sensed else None)

    async def delete(self, resource_meta: BigQuerySensorMetadata, **kwargs: Any) -> None:
        """Nothing to cancel: a sensor starts no job."""

    async def get_logs(
        self, resource_meta: BigQuerySensorMetadata, **kwargs: Any
    ) -> AsyncIterator[GetTaskLogsResponse]:
        """One line: what a poke finds now."""
        _, _, message = await self._poke(resource_meta, kwargs.get(CREDENTIALS_SECRET))
        yield GetTaskLogsResponse(body=GetTaskLogsResponseBody(results=[message]))

    async def get_metrics(self, resource_meta: BigQuerySensorMetadata, **kwargs: Any) -> GetTaskMetricsResponse:
        """None: a sensor runs no job (its calls are counted in the connector's Prometheus metrics)."""
        return GetTaskMetricsResponse(results=[])


ConnectorRegistry.register(
    at_start_up(BigQuerySensorConnector, "flyteplugins-bigquery", EXIT_BAD_SETTINGS), override=True
)
