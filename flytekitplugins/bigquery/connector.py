"""``BigQueryConnector``: flytekit's connector API translated to and from the core's query engine.

It runs in two places: in-process during a local ``pyflyte run``, and inside flytekit's connector gRPC
service (``pyflyte serve connector``, or ``python -m flytekitplugins.bigquery.service``). It is stateless —
everything it knows about a job travels in :class:`~.metadata.BigQueryMetadata` — so any number of replicas
can serve.

It only translates: a ``TaskTemplate`` becomes a :class:`~flyte_bigquery_core.planning.QueryTask`, the
``LiteralMap`` plain values (:mod:`.literals`), Flyte's ``TaskExecutionMetadata`` an
:class:`~flyte_bigquery_core.identity.ExecutionIdentity`; :func:`~flyte_bigquery_core.planning.plan_query`
and :class:`~flyte_bigquery_core.engine.QueryEngine` decide everything about the job, and their outcomes
become Flyte phases through :data:`PHASES`. A task refused before submission (bad input, bad template, a
query over its byte limit) is recorded in the metadata and reported by ``get`` as a failure with the
message, never as a gRPC ``INTERNAL`` error that the platform would retry.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from typing import Any

from flyte_bigquery_core import metrics
from flyte_bigquery_core.clients import shared_pool
from flyte_bigquery_core.engine import Observation, QueryEngine
from flyte_bigquery_core.errors import BigQueryPluginError, SettingsError
from flyte_bigquery_core.identity import ExecutionIdentity
from flyte_bigquery_core.params import pythonTypeToBigQueryType
from flyte_bigquery_core.planning import QueryTask, plan_query
from flyte_bigquery_core.serving import settle_heap_once
from flyte_bigquery_core.settings import Settings, current_settings
from flyte_bigquery_core.single_row import typed_outputs_of
from flyte_bigquery_core.status import Outcome
from flyteidl.admin.agent_pb2 import (
    GetTaskLogsResponse,
    GetTaskLogsResponseBody,
    GetTaskLogsResponseHeader,
    GetTaskMetricsResponse,
)
from flyteidl.core.execution_pb2 import TaskExecution, TaskLog
from flyteidl.core.metrics_pb2 import ExecutionMetricResult
from flytekit import StructuredDataset, logger
from flytekit.extend.backend.base_connector import AsyncConnectorBase, ConnectorRegistry, Resource
from flytekit.models.literals import LiteralMap
from flytekit.models.task import TaskExecutionMetadata, TaskTemplate
from google.protobuf import struct_pb2

from .literals import input_values
from .metadata import BigQueryMetadata
from .service import EXIT_BAD_SETTINGS
from .typed_outputs import needs_files, output_literals

__all__ = [
    "EXIT_BAD_SETTINGS",
    "OUTPUT_NAME",
    "PHASES",
    "TASK_TYPE",
    "BigQueryConnector",
    "BigQueryMetadata",
    "pythonTypeToBigQueryType",
]

TASK_TYPE = "bigquery_query_job_task"
#: Imported only by a process that serves connectors over gRPC.
_SERVICE_MODULE = "flytekit.extend.backend.connector_service"
#: The one output a query task may declare: a ``StructuredDataset`` of the result table.
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
    te = metadata.task_execution_id if metadata is not None else None
    node = te.node_execution_id if te is not None else None
    execution = node.execution_id if node is not None else None
    return ExecutionIdentity(
        project=(execution.project if execution else "") or "",
        domain=(execution.domain if execution else "") or "",
        execution=(execution.name if execution else "") or "",
        node=(node.node_id if node else "") or "",
        task=(te.task_id.name if te is not None and te.task_id else "") or template.id.name,
        attempt=int(te.retry_attempt or 0) if te is not None else 0,
    )


def query_task(template: TaskTemplate) -> QueryTask:
    """The core's view of a serialized task template (written by this plugin or by upstream's)."""
    timeout = template.metadata.timeout if template.metadata is not None else None
    return QueryTask(
        name=template.id.name if template.id else "?",
        custom=template.custom or {},
        statement=template.sql.statement if template.sql is not None else None,
        output_name=OUTPUT_NAME if template.interface and template.interface.outputs else None,
        timeout_seconds=timeout.total_seconds() if timeout else None,
    )


async def _resource(observation: Observation, meta: BigQueryMetadata) -> Resource:
    links = [TaskLog(uri=observation.console_url, name="BigQuery Console")] if observation.console_url else None
    outputs: dict[str, Any] | LiteralMap | None = None
    if observation.output_uri is not None and meta.output_name:
        outputs = {meta.output_name: StructuredDataset(uri=observation.output_uri)}
    typed = typed_outputs_of(meta.row_result)
    if observation.values is not None and typed is not None:
        task = str((meta.row_result or {}).get("task") or "?")
        try:  # pickled outputs are written to storage: off the event loop
            outputs = await shared_pool().run(output_literals, observation.values, typed, meta.output_prefix)
        except BigQueryPluginError as e:
            observation = replace(observation, outcome=Outcome.PERMANENT_FAILURE, message=e.for_task(task))
        except Exception as e:  # the output store failed us: another attempt reuses the job and writes again
            message = f"task {task!r}: the typed outputs could not be written ({type(e).__name__})"
            observation = replace(observation, outcome=Outcome.RETRYABLE_FAILURE, message=message)
    return Resource(
        phase=PHASES[observation.outcome],
        message=observation.message,
        log_links=links,
        outputs=outputs,
        custom_info=observation.info,
    )


class BigQueryConnector(AsyncConnectorBase):
    """Runs ``bigquery_query_job_task`` tasks as BigQuery query jobs."""

    name = "Bigquery Connector"
    #: The task type served (the check connector serves another, :mod:`.check_task`).
    served_task_type = TASK_TYPE

    def __init__(self, settings: Settings | None = None) -> None:
        """``settings`` pins this connector's settings; without, the process's are read and validated here
        (:func:`~flyte_bigquery_core.settings.current_settings`): a malformed variable raises
        :class:`~flyte_bigquery_core.errors.SettingsError` now, naming it — at start-up (importing the plugin
        registers a connector), never as a failure of a user's task nor as an error of every call."""
        super().__init__(task_type_name=self.served_task_type, metadata_type=BigQueryMetadata)
        self._pinned = settings
        self._settings()
        self._engines: dict[int, QueryEngine[BigQueryMetadata]] = {}

    def _settings(self) -> Settings:
        return self._pinned if self._pinned is not None else current_settings()

    def _engine(self, settings: Settings) -> QueryEngine[BigQueryMetadata]:
        """The engine over the pool's jobs API for ``settings`` (one per endpoint and retry budget).

        Inside flytekit's connector service (``pyflyte serve connector`` or our launcher, the only importers of
        its servicers; a local ``pyflyte run`` never imports them) the first call also freezes the start-up
        heap, as the launcher does before serving: see :mod:`flyte_bigquery_core.serving`."""
        if _SERVICE_MODULE in sys.modules:
            settle_heap_once()
        api = shared_pool().jobs(settings)
        engine = self._engines.get(id(api))
        if engine is None or engine.api is not api:
            engine = self._engines[id(api)] = QueryEngine(api, BigQueryMetadata)
        return engine

    async def create(
        self,
        task_template: TaskTemplate,
        inputs: LiteralMap | None = None,
        output_prefix: str | None = None,
        task_execution_metadata: TaskExecutionMetadata | None = None,
        **kwargs: Any,
    ) -> BigQueryMetadata:
        settings = self._settings()
        engine = self._engine(settings)
        task = query_task(task_template)
        try:
            values = await input_values(inputs, task.name, shared_pool())
            identity = execution_identity(task_template, task_execution_metadata)
            plan = plan_query(task, values, identity, settings, time.time())
            meta = await engine.submit(plan)
            if needs_files(typed_outputs_of(meta.row_result)):
                meta.output_prefix = output_prefix  # a typed output Flyte carries as a pickle file is written there
            return meta
        except BigQueryPluginError as error:
            # ``get`` reports it: a permanent error ends the task with the message, a transient one (our retry
            # budget is spent) lets Flyte retry the attempt, whose create adopts any job we did start.
            project = str(task.custom.get("ProjectID") or "").strip()
            meta = engine.refused(error, task.name, project, task.output_name)
            logger.warning("BigQuery task %s was not submitted: %s", task.name, meta.error)
            return meta

    async def get(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> Resource:
        observation = await self._engine(self._settings()).observe(resource_meta)
        metrics.phase_returned(PHASE_NAMES[observation.outcome])
        return await _resource(observation, resource_meta)

    async def delete(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> None:
        """Cancel the job. Idempotent: a finished, cancelled or missing job is not an error."""
        await self._engine(self._settings()).cancel(resource_meta)

    async def get_logs(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> GetTaskLogsResponse:
        """Readable lines about the job. Note: flytekit 1.16's service streams an empty GetTaskLogs response
        whatever this returns; call it on the connector (or use the console link) to see them."""
        lines = await self._engine(self._settings()).log_lines(resource_meta)
        return GetTaskLogsResponse(
            header=GetTaskLogsResponseHeader(token=""), body=GetTaskLogsResponseBody(results=lines)
        )

    async def get_metrics(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> GetTaskMetricsResponse:
        """The job's timeline and statistics as flyteidl ``ExecutionMetricResult`` entries (none for a job
        that does not exist, as for a task refused before submission)."""
        results = []
        for metric, data in (await self._engine(self._settings()).metrics(resource_meta)).items():
            struct = struct_pb2.Struct()
            struct.update(data)
            results.append(ExecutionMetricResult(metric=metric, data=struct))
        return GetTaskMetricsResponse(results=results)


def _register() -> BigQueryConnector:
    """Register one connector per process; importing twice (plugin entry point + user import) is harmless.

    A malformed setting stops the importing process here, at start-up (``pyflyte serve connector``, ``python
    -m flytekitplugins.bigquery.service``, which imports this package before its own code runs): one line on
    stderr naming the variable and what it expects, exit status :data:`EXIT_BAD_SETTINGS`. Never a failure per
    call or per task.
    """
    try:
        connector = BigQueryConnector()
    except SettingsError as e:
        print(f"flytekitplugins-bigquery: {e}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_SETTINGS) from None
    ConnectorRegistry.register(connector, override=True)
    return connector


_register()
