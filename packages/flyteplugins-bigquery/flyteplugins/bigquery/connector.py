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

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from flyte.connectors import AsyncConnector, ConnectorRegistry, Resource
from flyte_bigquery_core.connector_core import PHASE_NAMES, ConnectorCore, Planner, at_start_up
from flyte_bigquery_core.identity import ExecutionIdentity
from flyte_bigquery_core.observation import Observation
from flyte_bigquery_core.planning import QueryTask, plan_query
from flyte_bigquery_core.settings import Settings
from flyte_bigquery_core.single_row import typed_outputs_of
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

from .inputs import plain_inputs
from .metadata import BigQueryMetadata
from .task import CREDENTIALS_SECRET, TASK_TYPE
from .typed_results import native_outputs

__all__ = ["OUTPUT_NAME", "PHASES", "TASK_TYPE", "BigQueryConnector", "BigQueryMetadata"]


#: The one output a query task may declare: a ``flyte.io.DataFrame`` of the result table.
OUTPUT_NAME = "results"

#: The core's outcome → Flyte's task execution phase (by name: :data:`~flyte_bigquery_core.connector_core.PHASE_NAMES`).
PHASES: dict[Outcome, int] = {outcome: TaskExecution.Phase.Value(name) for outcome, name in PHASE_NAMES.items()}


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


def _resource(observation: Observation, meta: BigQueryMetadata, output: Callable[[str], Any]) -> Resource:
    links = None
    if observation.console_url:
        links = [TaskLog(uri=observation.console_url, name="BigQuery Console", ready=True, link_type=TaskLog.DASHBOARD)]
    outputs = None
    if observation.output_uri is not None and meta.output_name:
        outputs = {meta.output_name: output(observation.output_uri)}
    typed = typed_outputs_of(meta.row_result)
    if observation.values is not None and typed is not None:
        outputs = native_outputs(observation.values, typed)
    return Resource(
        phase=PHASES[observation.outcome],
        message=observation.message,
        log_links=links,
        outputs=outputs,
        custom_info=observation.info,
    )


class BigQueryConnector(AsyncConnector[BigQueryMetadata]):
    """Runs ``bigquery_query_job_task`` tasks as BigQuery query jobs.

    A connection's ``google_application_credentials`` secret (a service account key, JSON), when given, runs
    the calls with that account; otherwise the process's Application Default Credentials do, and anonymous
    ones against a local BigQuery (``BIGQUERY_EMULATOR_HOST``).
    """

    name = "Bigquery Connector"
    task_type_name = TASK_TYPE
    metadata_type = BigQueryMetadata
    #: Plans a run of the task :meth:`_task` reads (a query; the load, extract and copy connectors plan theirs).
    planner: Planner = staticmethod(plan_query)

    def __init__(self, settings: Settings | None = None) -> None:
        """``settings`` pins this connector's settings; without, the process's are read and validated here
        (:func:`~flyte_bigquery_core.settings.current_settings`): a malformed variable raises
        :class:`~flyte_bigquery_core.errors.SettingsError` now, naming it."""
        self._core = ConnectorCore(BigQueryMetadata, settings, planner=self.planner)

    def _task(self, template: TaskTemplate) -> Any:
        """The core's view of the template, as :attr:`planner` takes it."""
        return query_task(template)

    def _values(self, inputs: dict[str, Any] | None, task: Any) -> Awaitable[dict[str, Any]]:
        """The inputs as the plain values :attr:`planner` takes (decoded when awaited)."""
        return plain_inputs(inputs, task.name)

    @staticmethod
    def _output(uri: str) -> Any:
        """The declared output for the URI the job wrote (a query's result table, ``bq://``)."""
        from flyte.io import DataFrame

        return DataFrame(uri=uri)

    async def create(
        self,
        task_template: TaskTemplate,
        output_prefix: str = "",
        inputs: dict[str, Any] | None = None,
        task_execution_metadata: TaskExecutionMetadata | None = None,
        **kwargs: Any,
    ) -> BigQueryMetadata:
        task = self._task(task_template)
        identity = execution_identity(task_template, task_execution_metadata)
        return await self._core.create(task, self._values(inputs, task), identity, kwargs.get(CREDENTIALS_SECRET))

    async def get(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> Resource:
        observation = await self._core.observe(resource_meta, kwargs.get(CREDENTIALS_SECRET))
        return _resource(observation, resource_meta, self._output)

    async def delete(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> None:
        """Cancel the job. Idempotent: a finished, cancelled or missing job is not an error."""
        await self._core.cancel(resource_meta, kwargs.get(CREDENTIALS_SECRET))

    async def get_logs(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> AsyncIterator[GetTaskLogsResponse]:
        """Readable lines about the job (state, statistics, errors with their locations, a script's statements),
        as one response whose ``body.lines`` Flyte 2's service streams."""
        lines = await self._core.log_lines(resource_meta, kwargs.get(CREDENTIALS_SECRET))
        now = int(time.time())
        entries = []
        for text in lines:
            entry = LogLine(message=text, originator=LogLineOriginator.SYSTEM)
            entry.timestamp.FromSeconds(now)
            entries.append(entry)
        yield GetTaskLogsResponse(body=GetTaskLogsResponseBody(results=lines, lines=entries))

    async def get_metrics(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> GetTaskMetricsResponse:
        """The job's timeline and statistics as ``ExecutionMetricResult`` entries (none for a job that does not
        exist, as for a task refused before submission)."""
        pairs = await self._core.metrics(resource_meta, kwargs.get(CREDENTIALS_SECRET))
        results = [ExecutionMetricResult(metric=metric, data=data) for metric, data in pairs]
        return GetTaskMetricsResponse(results=results)


def _register() -> BigQueryConnector:
    """Register one connector per process (importing twice is harmless).

    A malformed setting stops the importing process here, at start-up (``python -m
    flyteplugins.bigquery.service`` imports this package before its own code runs): one line on stderr naming the
    variable and what it expects, exit status :data:`~.service.EXIT_BAD_SETTINGS`. Never a failure per call.
    """
    from .service import EXIT_BAD_SETTINGS

    connector = at_start_up(BigQueryConnector, "flyteplugins-bigquery", EXIT_BAD_SETTINGS)
    ConnectorRegistry.register(connector, override=True)
    return connector


_register()
