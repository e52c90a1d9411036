"""``BigQueryConnector``: the thin adapter between flytekit's connector API and :mod:`.jobs`.

It runs in two places: in-process during a local ``pyflyte run``, and inside flytekit's connector gRPC
service (``pyflyte serve connector``). It is stateless — everything it knows about a job travels in
:class:`~.metadata.BigQueryMetadata` — so any number of replicas can serve. Methods are ``async``: the job
calls (insert, get, cancel, the result's row count) are asyncio HTTP on the calling loop (:mod:`.rest`); the
rarer blocking calls (dry runs, datasets, reading pickled inputs) run on the connector's own bounded thread
pool (:class:`~.clients.ClientPool`), never on the service's event loop nor on asyncio's small default
executor.

What users get from it:

* ``create`` is idempotent per Flyte attempt (deterministic job ids; a retried create adopts the job).
* User errors (bad input, bad template, a query BigQuery rejects at submit time) never become gRPC
  ``INTERNAL`` errors that the platform retries: ``create`` records the error in the metadata and ``get``
  reports a permanent failure with the message.
* ``get`` maps BigQuery's ``errorResult`` reason to a retryable or permanent failure, never raises for a
  failed job, and returns outputs only when the task declares one.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from flyte_bigquery_core import identity as ids
from flyte_bigquery_core.clients import ClientPool
from flyte_bigquery_core.cost import CostPolicy, Estimate, check_estimate, estimate_from_job
from flyte_bigquery_core.errors import PermanentError, TransientError
from flyte_bigquery_core.inputs import DeferredRead, decode_inputs, to_query_parameters
from flyte_bigquery_core.jobconfig import TaskSettings, build_job_config, settings_from_custom
from flyte_bigquery_core.jobs import dry_run_query, retry_policy
from flyte_bigquery_core.params import pythonTypeToBigQueryType, referenced_parameters
from flyte_bigquery_core.report import child_job_lines, human_bytes, job_log_lines, job_metrics, job_summary
from flyte_bigquery_core.results import ResultsDatasets, managed_results
from flyte_bigquery_core.status import Outcome, job_outcome
from flyte_bigquery_core.template import render_query
from flyteidl.admin.agent_pb2 import (
    GetTaskLogsResponse,
    GetTaskLogsResponseBody,
    GetTaskLogsResponseHeader,
    GetTaskMetricsResponse,
)
from flyteidl.core.execution_pb2 import TaskExecution, TaskLog
from flyteidl.core.metrics_pb2 import ExecutionMetricResult
from flytekit import FlyteContextManager, StructuredDataset, logger
from flytekit.extend.backend.base_connector import AsyncConnectorBase, ConnectorRegistry, Resource
from flytekit.models.literals import LiteralMap
from flytekit.models.task import TaskExecutionMetadata, TaskTemplate
from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery
from google.protobuf import struct_pb2

from .metadata import BigQueryMetadata

__all__ = ["TASK_TYPE", "BigQueryConnector", "BigQueryMetadata", "pythonTypeToBigQueryType"]

TASK_TYPE = "bigquery_query_job_task"
OUTPUT_NAME = "results"

_PHASES: dict[Outcome, int] = {
    Outcome.QUEUED: TaskExecution.RUNNING,
    Outcome.RUNNING: TaskExecution.RUNNING,
    Outcome.SUCCEEDED: TaskExecution.SUCCEEDED,
    Outcome.RETRYABLE_FAILURE: TaskExecution.RETRYABLE_FAILED,
    Outcome.PERMANENT_FAILURE: TaskExecution.FAILED,
    Outcome.ABORTED: TaskExecution.ABORTED,
}


def console_link(meta: BigQueryMetadata) -> TaskLog:
    """The BigQuery console page of the job (no ``None`` ever reaches the URL)."""
    job = f"bq:{meta.location}:{meta.job_id}" if meta.location else f"bq::{meta.job_id}"
    uri = f"https://console.cloud.google.com/bigquery?project={meta.project}&j={job}&page=queryresults"
    return TaskLog(uri=uri, name="BigQuery Console")


def _identity(template: TaskTemplate, metadata: TaskExecutionMetadata | None) -> ids.ExecutionIdentity:
    te = metadata.task_execution_id if metadata is not None else None
    node = te.node_execution_id if te is not None else None
    execution = node.execution_id if node is not None else None
    return ids.ExecutionIdentity(
        project=(execution.project if execution else "") or "",
        domain=(execution.domain if execution else "") or "",
        execution=(execution.name if execution else "") or "",
        node=(node.node_id if node else "") or "",
        task=(te.task_id.name if te is not None and te.task_id else "") or template.id.name,
        attempt=int(te.retry_attempt or 0) if te is not None else 0,
    )


#: BigQuery caps a query request at about 10 MB, so a larger pickled input cannot be a parameter anyway;
#: the cap also bounds what a malformed request can make the service read.
MAX_PICKLED_INPUT_BYTES = 16 * 2**20


def _read_blob(uri: str) -> bytes:
    """Fetch an input file (a pickled bytes/Decimal/time value) through flytekit's data access."""
    ctx = FlyteContextManager.current_context()
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "input")
        ctx.file_access.get_data(uri, local)
        if os.path.getsize(local) > MAX_PICKLED_INPUT_BYTES:
            raise PermanentError(
                f"a pickled input is larger than {MAX_PICKLED_INPUT_BYTES // 2**20} MiB; "
                "BigQuery query parameters must fit in a 10 MB request"
            )
        with open(local, "rb") as f:
            return f.read()


class _BlobNeeded(DeferredRead):
    """An input is a pickle file: decoding it reads storage, which must not happen on the event loop."""


def _blob_needed(uri: str) -> bytes:
    raise _BlobNeeded(uri)


@dataclass
class _PreparedJob:
    """One run of a task, decided before any call to BigQuery."""

    settings: TaskSettings
    sql: str
    identity: ids.ExecutionIdentity
    config: bigquery.QueryJobConfig
    policy: CostPolicy
    fingerprint: str
    job_id: str
    output_name: str | None
    deadline: float | None

    def metadata(
        self, job: Any, reused_from_attempt: int | None = None, estimate: Estimate | None = None
    ) -> BigQueryMetadata:
        return BigQueryMetadata(
            job_id=job.job_id,
            project=job.project or self.settings.project,
            location=job.location or self.settings.location or "",
            output_name=self.output_name,
            reused_from_attempt=reused_from_attempt,
            estimated_bytes=estimate.bytes_processed if estimate is not None else None,
            deadline=self.deadline,
        )


class BigQueryConnector(AsyncConnectorBase):
    """Runs ``bigquery_query_job_task`` tasks as BigQuery query jobs."""

    name = "Bigquery Connector"

    def __init__(self, clients: ClientPool | None = None) -> None:
        super().__init__(task_type_name=TASK_TYPE, metadata_type=BigQueryMetadata)
        self._clients = clients or ClientPool()
        self._results = ResultsDatasets()

    # -- create -------------------------------------------------------------------------------------------

    async def create(
        self,
        task_template: TaskTemplate,
        inputs: LiteralMap | None = None,
        output_prefix: str | None = None,
        task_execution_metadata: TaskExecutionMetadata | None = None,
        **kwargs: Any,
    ) -> BigQueryMetadata:
        task_name = task_template.id.name if task_template.id else "?"
        output_name = OUTPUT_NAME if task_template.interface and task_template.interface.outputs else None
        project = str((task_template.custom or {}).get("ProjectID") or "").strip()
        try:
            return await self._create(task_template, inputs, task_execution_metadata, task_name, output_name)
        except PermanentError as e:
            # Reported by ``get`` as a permanent failure: the message reaches the user, nothing is retried.
            message = str(e) if f"task {task_name!r}" in str(e) else f"task {task_name!r}: {e}"
            logger.warning("BigQuery task %s refused before submission: %s", task_name, message)
            return BigQueryMetadata(job_id="", project=project, location="", output_name=output_name, error=message)
        except TransientError as e:
            # Our retry budget is spent; Flyte retries the attempt (whose create adopts any job we did start).
            logger.warning("BigQuery task %s could not be submitted: %s", task_name, e)
            return BigQueryMetadata(
                job_id="", project=project, location="", output_name=output_name, error=str(e), retryable=True
            )

    async def _create(
        self,
        template: TaskTemplate,
        inputs: LiteralMap | None,
        execution_metadata: TaskExecutionMetadata | None,
        task_name: str,
        output_name: str | None,
    ) -> BigQueryMetadata:
        job = await self._prepare(template, inputs, execution_metadata, task_name, output_name)
        client = self._clients.client(job.settings.project, job.settings.location)
        location = job.settings.location
        if job.identity.is_known and job.identity.attempt > 0:
            reused = await self._reusable_earlier_job(client, job.identity, job.fingerprint, location)
            if reused is not None:
                earlier, attempt = reused
                logger.info(
                    "BigQuery job %s of attempt %d reused by attempt %d", earlier.job_id, attempt, job.identity.attempt
                )
                return job.metadata(earlier, reused_from_attempt=attempt)
        estimate = None
        if job.policy.dry_run_first and not job.config.dry_run:
            resource = await self._clients.run(dry_run_query, client, job.sql, job.config, location)
            estimate = estimate_from_job(resource)
            check_estimate(estimate, job.policy, task_name)
        results = (
            managed_results(job.settings.results_dataset, job.settings.project, task_name) if output_name else None
        )
        if results is not None and job.config.destination is None and not job.config.dry_run:
            await self._clients.run(self._results.ensure, client, results, location)
            job.config.destination = results.table(job.job_id)
            job.config.write_disposition = bigquery.WriteDisposition.WRITE_TRUNCATE
        result = await self._clients.rest.submit_query(client, job.sql, job.config, job.job_id, location)
        if job.config.dry_run:
            return BigQueryMetadata(
                job_id="",
                project=job.settings.project,
                location=result.job.location or location or "",
                output_name=output_name,
                dry_run=job_summary(result.job._properties),
            )
        if result.reattached:
            logger.info("BigQuery job %s already existed; reattached instead of submitting again", job.job_id)
        return job.metadata(result.job, estimate=estimate)

    async def _prepare(
        self,
        template: TaskTemplate,
        inputs: LiteralMap | None,
        execution_metadata: TaskExecutionMetadata | None,
        task_name: str,
        output_name: str | None,
    ) -> _PreparedJob:
        """Everything about the job that can be decided without calling BigQuery; user errors surface here."""
        settings = settings_from_custom(template.custom, task_name)
        if template.sql is None or not (template.sql.statement or "").strip():
            raise PermanentError(f"task {task_name!r}: the task template has no SQL statement")
        literals = dict(inputs.literals) if inputs is not None and inputs.literals else {}
        try:  # plain values decode in place; only a pickled input needs a thread (it is read from storage)
            values = decode_inputs(literals, settings.input_types, _blob_needed, task_name)
        except _BlobNeeded:
            values = await self._clients.run(decode_inputs, literals, settings.input_types, _read_blob, task_name)
        sql = render_query(template.sql.statement, values, task_name)
        undeclared = sorted(referenced_parameters(sql) - set(values))
        if undeclared:
            declared = ", ".join(sorted(values)) or "none"
            raise PermanentError(
                f"task {task_name!r}: the query uses parameter(s) {', '.join('@' + p for p in undeclared)} "
                f"that are not inputs of the task; declared inputs: {declared}"
            )
        parameters = to_query_parameters(values, settings.input_types, task_name)
        identity = _identity(template, execution_metadata)
        config = build_job_config(settings, parameters, ids.flyte_labels(identity), task_name)
        policy = CostPolicy.resolve(settings.estimate, settings.maximum_bytes, config.maximum_bytes_billed, task_name)
        if policy.maximum_bytes is not None:
            config.maximum_bytes_billed = policy.maximum_bytes  # BigQuery enforces it server-side too
        timeout = template.metadata.timeout if template.metadata is not None else None
        if timeout and config.job_timeout_ms is None:
            config.job_timeout_ms = int(timeout.total_seconds() * 1000)
        # Attempt-independent, so that earlier attempts' job ids can be recomputed.
        fingerprint = ids.query_fingerprint(sql, [p.to_api_repr() for p in parameters], settings.job_config)
        job_id = ids.job_id(identity, fingerprint) if identity.is_known else ids.local_job_id()
        deadline = time.time() + timeout.total_seconds() if timeout else None
        return _PreparedJob(settings, sql, identity, config, policy, fingerprint, job_id, output_name, deadline)

    async def _reusable_earlier_job(
        self, client: Any, identity: ids.ExecutionIdentity, fingerprint: str, location: str | None
    ) -> tuple[Any, int] | None:
        """The job of an earlier attempt of this node that is still useful, newest attempt first.

        Flyte turns a failed ``CreateTask`` (a timeout, a dropped connection) into a retryable failure and
        retries as the *next* attempt, though the first request may have started the job. Reusing a pending,
        running or successful job avoids running (and billing) the query twice; failed and cancelled jobs
        are not reused. Ids are deterministic, so this is a few ``jobs.get`` calls, not a search. A lookup
        that keeps failing transiently raises :class:`TransientError`: we never guess.
        """
        for attempt in range(identity.attempt - 1, -1, -1):
            earlier = ids.job_id(identity.with_attempt(attempt), fingerprint)
            try:
                job = await self._clients.rest.fetch_job(client, earlier, client.project, location)
            except api_exceptions.NotFound:
                continue
            if job_outcome(job._properties).outcome in (Outcome.QUEUED, Outcome.RUNNING, Outcome.SUCCEEDED):
                return job, attempt
        return None

    # -- get ----------------------------------------------------------------------------------------------

    async def get(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> Resource:
        meta = resource_meta
        if meta.error is not None:
            phase = TaskExecution.RETRYABLE_FAILED if meta.retryable else TaskExecution.FAILED
            return Resource(phase=phase, message=meta.error)
        if meta.dry_run is not None:
            return self._dry_run_resource(meta, meta.dry_run)
        link = console_link(meta)
        try:
            job = await self._fetch(meta)
        except api_exceptions.NotFound:
            return Resource(
                phase=TaskExecution.FAILED,
                message=f"BigQuery job {meta.job_id} was not found in project {meta.project}",
                log_links=[link],
            )
        except PermanentError as e:
            return Resource(phase=TaskExecution.FAILED, message=str(e), log_links=[link])
        except TransientError as e:
            # The job itself is unaffected; Flyte polls again (and the task's timeout still applies).
            return Resource(phase=TaskExecution.RUNNING, message=f"{e}; will check again", log_links=[link])
        verdict = job_outcome(job._properties)
        if (
            verdict.outcome in (Outcome.QUEUED, Outcome.RUNNING)
            and meta.deadline is not None
            and time.time() > meta.deadline
        ):
            await self.delete(meta)
            return Resource(
                phase=TaskExecution.FAILED,
                message=f"BigQuery job {meta.job_id} exceeded the task's timeout and was cancelled",
                log_links=[link],
            )
        info = job_summary(job._properties, meta.estimated_bytes)
        outputs = None
        message = verdict.message
        if meta.reused_from_attempt is not None:
            message += f" (reused job {meta.job_id} from attempt {meta.reused_from_attempt})"
            info["reused_from_attempt"] = meta.reused_from_attempt
        phase = _PHASES[verdict.outcome]
        if verdict.outcome is Outcome.SUCCEEDED and meta.output_name:
            dst = job.destination
            if dst is None:
                phase = TaskExecution.FAILED
                message = (
                    f"the task declares output {meta.output_name!r} but the statement "
                    f"({job.statement_type or 'unknown type'}) produced no result table"
                )
            else:
                uri = f"bq://{dst.project}:{dst.dataset_id}.{dst.table_id}"
                outputs = {meta.output_name: StructuredDataset(uri=uri)}
                rows = await self._total_rows(meta, dst)
                if rows is not None:
                    info["total_rows"] = rows
        return Resource(phase=phase, message=message, log_links=[link], outputs=outputs, custom_info=info)

    async def _total_rows(self, meta: BigQueryMetadata, table: Any) -> int | None:
        """Rows in the result table, for the report; best effort (the job itself already succeeded)."""
        try:
            return await self._clients.rest.table_rows(table)
        except Exception as exc:
            logger.debug("could not read the row count of %s: %s", table, exc.__class__.__name__)
            return None

    @staticmethod
    def _dry_run_resource(meta: BigQueryMetadata, summary: dict[str, Any]) -> Resource:
        scanned = summary.get("total_bytes_processed")
        message = "dry run: the query is valid" + (
            f" and would process {human_bytes(scanned)}" if scanned is not None else ""
        )
        if meta.output_name:
            return Resource(
                phase=TaskExecution.FAILED,
                message=f"{message}, but a dry run produces no result table for output {meta.output_name!r}",
                custom_info=summary,
            )
        return Resource(phase=TaskExecution.SUCCEEDED, message=message, custom_info=summary)

    async def _fetch(self, meta: BigQueryMetadata) -> Any:
        client = self._clients.client(meta.project, meta.location or None)
        return await self._clients.rest.fetch_job(client, meta.job_id, meta.project, meta.location)

    # -- delete -------------------------------------------------------------------------------------------

    async def delete(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> None:
        """Cancel the job. Idempotent: a finished, cancelled or missing job is not an error."""
        meta = resource_meta
        if not meta.job_id:
            return
        client = self._clients.client(meta.project, meta.location or None)
        existed = await self._clients.rest.cancel_job(client, meta.job_id, meta.project, meta.location)
        if not existed:
            logger.info("BigQuery job %s no longer exists; nothing to cancel", meta.job_id)

    # -- logs and metrics ---------------------------------------------------------------------------------

    async def get_logs(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> GetTaskLogsResponse:
        """Readable lines about the job. Note: flytekit 1.16's service streams an empty GetTaskLogs response
        whatever this returns; call it on the connector (or use the console link) to see them."""
        meta = resource_meta
        if meta.error is not None:
            lines = [f"refused before submission: {meta.error}"]
        elif meta.dry_run is not None:
            lines = [self._dry_run_resource(meta, meta.dry_run).message or "dry run"]
        else:
            try:
                job = await self._fetch(meta)
            except api_exceptions.NotFound:
                lines = [f"BigQuery job {meta.job_id} was not found in project {meta.project}"]
            else:
                lines = job_log_lines(job._properties, meta.estimated_bytes)
                if job.statement_type == "SCRIPT":
                    lines += child_job_lines(await self._child_jobs(meta))
        if meta.reused_from_attempt is not None:
            lines.insert(0, f"reused job {meta.job_id} from attempt {meta.reused_from_attempt}")
        return GetTaskLogsResponse(
            header=GetTaskLogsResponseHeader(token=""), body=GetTaskLogsResponseBody(results=lines)
        )

    async def _child_jobs(self, meta: BigQueryMetadata) -> list[dict[str, Any]]:
        """The statements of a script (its child jobs), as job resources."""
        client = self._clients.client(meta.project, meta.location or None)

        def list_children() -> list[dict[str, Any]]:
            return [dict(j._properties) for j in client.list_jobs(parent_job=meta.job_id, retry=retry_policy())]

        return await self._clients.run(list_children)

    async def get_metrics(self, resource_meta: BigQueryMetadata, **kwargs: Any) -> GetTaskMetricsResponse:
        """The job's timeline and statistics as flyteidl ``ExecutionMetricResult`` entries (none for a job
        that does not exist, as for a task refused before submission)."""
        meta = resource_meta
        if meta.error is not None or meta.dry_run is not None:
            return GetTaskMetricsResponse(results=[])
        try:
            job = await self._fetch(meta)
        except api_exceptions.NotFound:
            return GetTaskMetricsResponse(results=[])
        results = []
        for metric, data in job_metrics(job._properties).items():
            struct = struct_pb2.Struct()
            struct.update(data)
            results.append(ExecutionMetricResult(metric=metric, data=struct))
        return GetTaskMetricsResponse(results=results)


def _register() -> BigQueryConnector:
    """Register one connector per process; importing twice (plugin entry point + user import) is harmless."""
    connector = BigQueryConnector()
    ConnectorRegistry.register(connector, override=True)
    return connector


_register()
