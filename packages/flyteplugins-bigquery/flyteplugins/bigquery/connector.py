"""``BigQueryConnector``: Flyte 2's connector API translated to and from the core's query engine.

It runs in-process for ``flyte.with_runcontext(mode="local").run(...)`` and inside a connector service
(``python -m flyteplugins.bigquery.service``). It is stateless — everything it knows about a job travels in
:class:`~.metadata.BigQueryMetadata` — so any number of replicas can serve.

It only translates, exactly as the flytekit adapter does: a ``flyteidl2`` ``TaskTemplate`` becomes a
:class:`~flyte_bigquery_core.planning.QueryTask`, the native input values plain values (:mod:`.inputs`), Flyte's
``TaskExecutionMetadata`` an :class:`~flyte_bigquery_core.identity.ExecutionIdentity`;
:func:`~flyte_bigquery_core.planning.plan_query` and :class:`~flyte_bigquery_core.engine.QueryEngine` decide
everything about the job, and their outcomes become Flyte phases through :data:`PHASES`. A task refused before
submission is recorded in the metadata and reported by ``get`` as a failure with the message, never as a gRPC
error that the platform would retry.

Registered with Flyte 2 when imported (the ``flyte.connectors`` entry point ``bigquery`` imports it); a malformed
setting stops the process then, naming the variable (see :func:`_register`).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from flyte.connectors import AsyncConnector, ConnectorRegistry, Resource
from flyte_bigquery_core import metrics
from flyte_bigquery_core.clients import shared_pool
from flyte_bigquery_core.engine import Observation, QueryEngine
from flyte_bigquery_core.errors import BigQueryPluginError, SettingsError
from flyte_bigquery_core.identity import ExecutionIdentity
from flyte_bigquery_core.planning import QueryTask, plan_query
from flyte_bigquery_core.settings import Settings, current_settings
from flyte_bigquery_core.status import Outcome
from flyteidl2.connector.connector_pb2 import (
    GetTaskLogsResponse,
    GetTaskLogsResponseBody,
    GetTaskMetricsResponse,
    TaskExecutionMetadata,
)
from flyteidl2.core.execution_pb2 import TaskExecution, TaskLog
from flyteidl2.core.metrics_pb2 import ExecutionMetricResult
from flyteidl2.core.tasks_pb2 import TaskTemplate
from flyteidl2.logs.dataplane.payload_pb2 import LogLine, LogLineOriginator
from google.protobuf import struct_pb2

from .inputs import plain_inputs
from .metadata import BigQueryMetadata
from .task import CREDENTIALS_SECRET, TASK_TYPE

__all__ = ["OUTPUT_NAME", "PHASES", "TASK_TYPE", "BigQueryConnector", "BigQueryMetadata"]

logger = logging.getLogger(__name__)

#: The one output a query task may declare: a ``flyte.io.DataFrame`` of the result table.
OUTPUT_NAME = "results"

#: The core's outcome → Flyte's task execution phase.
PHASES: dict[Outcome, int] = {
    Outcome.QUEUED: TaskExecution.RUNNING,
    Outcome.RUNNING: TaskExecution.RUNNING,
    Outcome.SUCCEEDED: TaskExecution.SUCCEEDED,
    Outcome.RETRYABLE_FAILURE: TaskExecution.RETRYABLE_FAILED,
    Outcome.PERMANENT_FAILURE: TaskExecution.FAILED,
    Outcome.ABORTED: TaskExecution.ABORTED,
}
#: The phase names ``get`` counts in ``flyte_bigquery_phases_total`` (all exported from the start, at 0).
PHASE_NAMES: dict[Outcome, str] = {outcome: TaskExecution.Phase.Name(phase) for outcome, phase in PHASES.items()}
metrics.declare_phases(PHASE_NAMES.values())


def execution_identity(template: TaskTemplate, metadata: TaskExecutionMetadata | None) -> ExecutionIdentity:
    """Who runs: Flyte's task execution id as the core's :class:`ExecutionIdentity` (empty parts when local)."""
    if metadata is None:
        return ExecutionIdentity("", "", "", "", template.id.name, 0)
    te = metadata.task_execution_id
    node = te.node_execution_id
    return ExecutionIdentity(
        project=node.execution_id.project,
        domain=node.execution_id.domain,
        execution=node.execution_id.name,
        node=node.node_id,
        task=te.task_id.name or template.id.name,
        attempt=int(te.retry_attempt),
    )


def query_task(template: TaskTemplate) -> QueryTask:
    """The core's view of a serialized task template (written by this plugin or by upstream's)."""
    from google.protobuf import json_format

    timeout = template.metadata.timeout if template.metadata.HasField("timeout") else None
    seconds = timeout.ToTimedelta().total_seconds() if timeout is not None else None
    return QueryTask(
        name=template.id.name or "?",
        custom=json_format.MessageToDict(template.custom) if template.HasField("custom") else {},
        statement=template.sql.statement if template.HasField("sql") else None,
        output_name=OUTPUT_NAME if len(template.interface.outputs.variables) else None,
        timeout_seconds=seconds or None,
    )


def _resource(observation: Observation, output_name: str | None) -> Resource:
    links = None
    if observation.console_url:
        links = [TaskLog(uri=observation.console_url, name="BigQuery Console", ready=True, link_type=TaskLog.DASHBOARD)]
    outputs = None
    if observation.output_uri is not None and output_name:
        from flyte.io import DataFrame

        outputs = {output_name: DataFrame(uri=observation.output_uri)}
    return Resource(
        phase=PHASES[observation.outcome],
        message=observation.message,
        log_links=links,
        outputs=outputs,
        custom_info=observation.info,
    )


#: The engine of handles without a job: makes and reports on those of tasks refused before submission (and dry
#: runs), which need no BigQuery call, so no API and no credentials.
_REFUSALS: QueryEngine[BigQueryMetadata] = QueryEngine(None, BigQueryMetadata)


class BigQueryConnector(AsyncConnector[BigQueryMetadata]):
    """Runs ``bigquery_query_job_task`` tasks as BigQuery query jobs.

    A connection's ``google_application_credentials`` secret (a service account key, JSON), when given, runs
    the calls with that account; otherwise the process's Application Default Credentials do, and anonymous
    ones against a local BigQuery (``BIGQUERY_EMULATOR_HOST``).
    """

    name = "Bigquery Connector"
    task_type_name = TASK_TYPE
    metadata_type = BigQueryMetadata

    def __init__(self, settings: Settings | None = None) -> None:
        """``settings`` pins this connector's settings; without, the process's are read and validated here
        (:func:`~flyte_bigquery_core.settings.current_settings`): a malformed variable raises
        :class:`~flyte_bigquery_core.errors.SettingsError` now, naming it."""
        self._pinned = settings
        self._settings()
        self._engines: dict[int, QueryEngine[BigQueryMetadata]] = {}

    def _settings(self) -> Settings:
        return self._pinned if self._pinned is not None else current_settings()

    def _engine(self, connection: dict[str, Any]) -> QueryEngine[BigQueryMetadata]:
        """The engine over the pool's jobs API for the settings and the connection's credentials."""
        api = shared_pool().jobs(self._settings(), connection.get(CREDENTIALS_SECRET) or None)
        engine = self._engines.get(id(api))
        if engine is None or engine.api is not api:
            engine = self._engines[id(api)] = QueryEngine(api, BigQueryMetadata)
        return engine

    async def create(
        self,
        task_template: TaskTemplate,
        output_prefix: str = "",
        inputs: dict[str, Any] | None = None,
        task_execution_metadata: TaskExecutionMetadata | None = None,
        **kwargs: Any,
    ) -> BigQueryMetadata:
        task = query_task(task_template)
        try:
            values = plain_inputs(inputs, task.name)
            identity = execution_identity(task_template, task_execution_metadata)
            plan = plan_query(task, values, identity, self._settings(), time.time())
            return await self._engine(kwargs).submit(plan)
        except BigQueryPluginError as error:
            # ``get`` reports it: a permanent error ends the task with the message, a transient one (our retry
            # budget is spent) lets Flyte retry the attempt, whose create adopts any job we did start.
            project = str(task.custom.get("ProjectID") or "").strip()
            meta = _REFUSALS.refused(error, task.name, project, task.output_name)
            logger.warning("BigQuery task %s was not submitted: %s", task.name, meta.error)
            return meta

    def _engine_for(self, handle: BigQueryMetadata, connection: dict[str, Any]) -> QueryEngine[BigQueryMetadata]:
        """A handle without a job (refused before submission, or a dry run) is answered from the handle alone:
        no API, so no credentials are loaded for it."""
        return self._engine(connection) if handle.job_id else _REFUSALS

    async def get(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> Resource:
        observation = await self._engine_for(resource_meta, kwargs).observe(resource_meta)
        metrics.phase_returned(PHASE_NAMES[observation.outcome])
        return _resource(observation, resource_meta.output_name)

    async def delete(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> None:
        """Cancel the job. Idempotent: a finished, cancelled or missing job is not an error."""
        await self._engine_for(resource_meta, kwargs).cancel(resource_meta)

    async def get_logs(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> AsyncIterator[GetTaskLogsResponse]:
        """Readable lines about the job (state, statistics, errors with their locations, a script's statements),
        as one response whose ``body.lines`` Flyte 2's service streams."""
        lines = await self._engine_for(resource_meta, kwargs).log_lines(resource_meta)
        now = time.time()
        entries = []
        for text in lines:
            entry = LogLine(message=text, originator=LogLineOriginator.SYSTEM)
            entry.timestamp.FromSeconds(int(now))
            entries.append(entry)
        yield GetTaskLogsResponse(body=GetTaskLogsResponseBody(results=lines, lines=entries))

    async def get_metrics(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> GetTaskMetricsResponse:
        """The job's timeline and statistics as ``ExecutionMetricResult`` entries (none for a job that does not
        exist, as for a task refused before submission)."""
        results = []
        for metric, data in (await self._engine_for(resource_meta, kwargs).metrics(resource_meta)).items():
            struct = struct_pb2.Struct()
            struct.update(data)
            results.append(ExecutionMetricResult(metric=metric, data=struct))
        return GetTaskMetricsResponse(results=results)


def _register() -> BigQueryConnector:
    """Register one connector per process (importing twice is harmless).

    A malformed setting stops the importing process here, at start-up (``python -m
    flyteplugins.bigquery.service`` imports this package before its own code runs): one line on stderr naming the
    variable and what it expects, exit status :data:`~.service.EXIT_BAD_SETTINGS`. Never a failure per call.
    """
    try:
        connector = BigQueryConnector()
    except SettingsError as e:
        from .service import EXIT_BAD_SETTINGS

        print(f"flyteplugins-bigquery: {e}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_SETTINGS) from None
    ConnectorRegistry.register(connector, override=True)
    return connector


_register()
