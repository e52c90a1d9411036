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

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from flyte_bigquery_core.clients import shared_pool
from flyte_bigquery_core.connector_core import PHASE_NAMES, ConnectorCore, Planner, at_start_up
from flyte_bigquery_core.errors import BigQueryPluginError
from flyte_bigquery_core.identity import ExecutionIdentity
from flyte_bigquery_core.observation import Observation
from flyte_bigquery_core.params import pythonTypeToBigQueryType
from flyte_bigquery_core.planning import QueryTask, plan_query
from flyte_bigquery_core.settings import Settings
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
from flytekit import StructuredDataset
from flytekit.extend.backend.base_connector import AsyncConnectorBase, ConnectorRegistry, Resource
from flytekit.models.literals import LiteralMap
from flytekit.models.task import TaskExecutionMetadata, TaskTemplate

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
#: Imported only by a process that serves connectors over gRPC (``pyflyte serve connector`` or our launcher, the
#: only importers of its servicers; a local ``pyflyte run`` never imports them): there the first call also freezes
#: the start-up heap, as the launcher does before serving (see :mod:`flyte_bigquery_core.serving`).
_SERVICE_MODULE = "flytekit.extend.backend.connector_service"
#: The one output a query task may declare: a ``StructuredDataset`` of the result table.
OUTPUT_NAME = "results"

#: The core's outcome → Flyte's task execution phase (by name: :data:`~flyte_bigquery_core.connector_core.PHASE_NAMES`).
PHASES: dict[Outcome, int] = {outcome: TaskExecution.Phase.Value(name) for outcome, name in PHASE_NAMES.items()}


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


async def _resource(
    observation: Observation, meta: BigQueryMetadata, output: Callable[[str], Any] = StructuredDataset
) -> Resource:
    """Flyte's ``Resource`` of an observation; ``output`` makes the output's value from its URI."""
    links = [TaskLog(uri=observation.console_url, name="BigQuery Console")] if observation.console_url else None
    outputs: dict[str, Any] | LiteralMap | None = None
    if observation.output_uri is not None and meta.output_name:
        outputs = {meta.output_name: output(observation.output_uri)}
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
    #: The task type served (the check connector serves another, :mod:`.check_task`; the load, extract and copy
    #: connectors theirs, :mod:`.transfer_connector`) and the core's planner of its runs.
    served_task_type = TASK_TYPE
    planner: Planner = staticmethod(plan_query)

    def __init__(self, settings: Settings | None = None) -> None:
        """``settings`` pins this connector's settings; without, the process's are read and validated here
        (:func:`~flyte_bigquery_core.settings.current_settings`): a malformed variable raises
        :class:`~flyte_bigquery_core.errors.SettingsError` now, naming it — at start-up (importing the plugin
        registers a connector), never as a failure of a user's task nor as an error of every call."""
        super().__init__(task_type_name=self.served_task_type, metadata_type=BigQueryMetadata)
        self._core = ConnectorCore(BigQueryMetadata, settings, service_module=_SERVICE_MODULE, planner=self.planner)

    async def create(
        self,
        task_template: TaskTemplate,
        inputs: LiteralMap | None = None,
        output_prefix: str | None = None,
        task_execution_metadata: TaskExecutionMetadata | None = None,
        **kwargs: Any,
    ) -> BigQueryMetadata:
        task = self._task(task_template)
        values = self._values(inputs, task)
        meta = await self._core.create(task, values, execution_identity(task_template, task_execution_metadata))
        if needs_files(typed_outputs_of(meta.row_result)):
            meta.output_prefix = output_prefix  # a typed output Flyte carries as a pickle file is written there
        return meta

    def _task(self, template: TaskTemplate) -> Any:
        """The core's view of the task (a ``QueryTask``; a ``TransferTask`` for the other job kinds)."""
        return query_task(template)

    def _values(self, inputs: LiteralMap | None, task: Any) -> Awaitable[Mapping[str, Any]]:
        """The plain values of the task's inputs, decoded when the core awaits them."""
        return input_values(inputs, task.name, shared_pool())

    @staticmethod
    def _output(uri: str) -> Any:
        """The output value of a finished job from its URI: the result table as a ``StructuredDataset``."""
        return StructuredDataset(uri=uri)

    async def get(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> Resource:
        return await _resource(await self._core.observe(resource_meta), resource_meta, self._output)

    async def delete(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> None:
        """Cancel the job. Idempotent: a finished, cancelled or missing job is not an error."""
        await self._core.cancel(resource_meta)

    async def get_logs(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> GetTaskLogsResponse:
        """Readable lines about the job. Note: flytekit 1.16's service streams an empty GetTaskLogs response
        whatever this returns; call it on the connector (or use the console link) to see them."""
        lines = await self._core.log_lines(resource_meta)
        return GetTaskLogsResponse(
            header=GetTaskLogsResponseHeader(token=""), body=GetTaskLogsResponseBody(results=lines)
        )

    async def get_metrics(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> GetTaskMetricsResponse:
        """The job's timeline and statistics as flyteidl ``ExecutionMetricResult`` entries (none for a job
        that does not exist, as for a task refused before submission)."""
        pairs = await self._core.metrics(resource_meta)
        results = [ExecutionMetricResult(metric=metric, data=data) for metric, data in pairs]
        return GetTaskMetricsResponse(results=results)


def _register() -> BigQueryConnector:
    """Register one connector per process; importing twice (plugin entry point + user import) is harmless.

    A malformed setting stops the importing process here, at start-up (``pyflyte serve connector``, ``python
    -m flytekitplugins.bigquery.service``, which imports this package before its own code runs): one line on
    stderr naming the variable and what it expects, exit status :data:`EXIT_BAD_SETTINGS`. Never a failure per
    call or per task.
    """
    connector = at_start_up(BigQueryConnector, "flytekitplugins-bigquery", EXIT_BAD_SETTINGS)
    ConnectorRegistry.register(connector, override=True)
    return connector


_register()
