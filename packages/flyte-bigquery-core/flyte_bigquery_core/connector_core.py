"""What every Flyte connector of query tasks does with the core, free of any Flyte SDK.

The flytekit 1 connector and the Flyte 2 one differ only in their SDK's types: each turns its task template into
a :class:`~.planning.QueryTask`, its inputs into plain values and its execution metadata into an
:class:`~.identity.ExecutionIdentity`, then hands them to a :class:`ConnectorCore`, and turns the
:class:`~.observation.Observation` it gets back into its SDK's resource, the outcome's phase looked up by name in
:data:`PHASE_NAMES` (both IDLs name and number Flyte's phases alike). Everything else is here, once: planning and
submitting, refusing a task before submission (recorded in the handle, reported by ``observe``), one query engine
per endpoint and credentials, the phase counter, and answering job-less handles without any API.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from google.protobuf.struct_pb2 import Struct

from . import metrics
from .access import Caller
from .clients import shared_pool
from .engine import QueryEngine
from .errors import BigQueryPluginError, SettingsError
from .handle import JobHandle
from .identity import ExecutionIdentity
from .observation import Observation
from .planning import QueryPlan, plan_query
from .serving import settle_heap_once
from .settings import Settings, current_settings
from .status import Outcome

__all__ = ["PHASE_NAMES", "ConnectorCore", "Planner", "at_start_up"]

logger = logging.getLogger(__name__)

H = TypeVar("H", bound=JobHandle)
T = TypeVar("T")

#: Plans one run of a task: ``(task, input values, identity, settings, now) -> QueryPlan`` — a query's
#: (:func:`~.planning.plan_query`) or a load's, extract's or copy's (:func:`~.transfer.plan_transfer`).
Planner = Callable[[Any, Mapping[str, Any], ExecutionIdentity, Settings, float], QueryPlan]

#: The core's outcome → the name of Flyte's task execution phase (``TaskExecution.Phase``).
PHASE_NAMES: dict[Outcome, str] = {
    Outcome.QUEUED: "RUNNING",
    Outcome.RUNNING: "RUNNING",
    Outcome.SUCCEEDED: "SUCCEEDED",
    Outcome.RETRYABLE_FAILURE: "RETRYABLE_FAILED",
    Outcome.PERMANENT_FAILURE: "FAILED",
    Outcome.ABORTED: "ABORTED",
}
# Every phase ``observe`` counts in ``flyte_bigquery_phases_total`` is exported from the start, at 0.
metrics.declare_phases(PHASE_NAMES.values())


class ConnectorCore(Generic[H]):
    """Runs query tasks for one connector; handles are made as ``handle_type`` (the adapter's resource meta).

    ``settings`` pins the settings; without, the process's are read and validated here
    (:func:`~.settings.current_settings`): a malformed variable raises :class:`~.errors.SettingsError` now,
    naming it. ``service_module`` names a module that only a process serving connectors over gRPC imports: when it
    is imported, the first call settles the heap (:func:`~.serving.settle_heap_once`), as our launchers do before
    serving. ``service_account_info`` (every call) is a connection's service account key, JSON, or ``None`` for
    the process's credentials (see :meth:`~.clients.ClientPool.jobs`). ``planner`` plans a run (a query's by
    default; a transfer connector passes :func:`~.transfer.plan_transfer`).
    """

    def __init__(
        self,
        handle_type: type[H],
        settings: Settings | None = None,
        service_module: str | None = None,
        planner: Planner = plan_query,
    ) -> None:
        self._planner = planner
        self._pinned = settings
        self._handle_type = handle_type
        self._service_module = service_module
        self.settings()
        self._engines: dict[int, QueryEngine[H]] = {}
        #: Makes and reports on handles without a job (refused, dry runs): no BigQuery call, so no API.
        self._jobless: QueryEngine[H] = QueryEngine(None, handle_type)

    def settings(self) -> Settings:
        return self._pinned if self._pinned is not None else current_settings()

    def engine(self, service_account_info: str | None = None, caller: Caller | None = None) -> QueryEngine[H]:
        """The engine over the pool's jobs API for the settings, credentials and ``caller`` (one per endpoint, key
        and principal: a task that impersonates a service account is submitted and observed as it,
        :mod:`.access`)."""
        api = shared_pool().jobs(self.settings(), service_account_info or None, caller)
        engine = self._engines.get(id(api))
        if engine is None or engine.api is not api:
            engine = self._engines[id(api)] = QueryEngine(api, self._handle_type)
        return engine

    def _served(self) -> None:
        """Every call starts here: inside a connector service, the first one settles the heap."""
        if self._service_module is not None and self._service_module in sys.modules:
            settle_heap_once()

    def _for(self, handle: H, service_account_info: str | None) -> QueryEngine[H]:
        self._served()
        return self.engine(service_account_info, Caller.of_handle(handle)) if handle.job_id else self._jobless

    async def create(
        self,
        task: Any,
        values: Awaitable[Mapping[str, Any]],
        identity: ExecutionIdentity,
        service_account_info: str | None = None,
    ) -> H:
        """Plan and submit one run of ``task`` (a :class:`~.planning.QueryTask`, or what the planner takes).
        ``values`` is the adapter's decoding of the inputs, awaited here so that its refusals are recorded like
        the planner's. A task refused before submission (bad input or template, a query over its byte limit,
        BigQuery unavailable through the retry budget) gets a handle holding the error, which :meth:`observe`
        reports: a permanent error ends the task with the message, a transient one lets Flyte retry the attempt,
        whose create adopts any job we did start."""
        self._served()
        try:  # a malformed setting is the operator's to fix: raised, never the task's failure
            settings = self.settings()
        except BaseException:
            close = getattr(values, "close", None)  # the adapter's decoding, never to be awaited now
            if close is not None:
                close()
            raise
        try:
            plan = self._planner(task, await values, identity, settings, time.time())
            return await self.engine(service_account_info, plan.caller).submit(plan)
        except BigQueryPluginError as error:
            project = str(task.custom.get("ProjectID") or "").strip()
            handle = self._jobless.refused(error, task.name, project, task.output_name)
            logger.warning("BigQuery task %s was not submitted: %s", task.name, handle.error)
            return handle

    async def observe(self, handle: H, service_account_info: str | None = None) -> Observation:
        """The job's outcome now (see :meth:`~.observation.JobObserver.observe`), counted by its phase."""
        observation = await self._for(handle, service_account_info).observe(handle)
        metrics.phase_returned(PHASE_NAMES[observation.outcome])
        return observation

    async def cancel(self, handle: H, service_account_info: str | None = None) -> None:
        """Cancel the job. Idempotent: a finished, cancelled or missing job is not an error."""
        await self._for(handle, service_account_info).cancel(handle)

    async def log_lines(self, handle: H, service_account_info: str | None = None) -> list[str]:
        """Readable lines about the job: state, statistics, errors with their locations, a script's statements."""
        return await self._for(handle, service_account_info).log_lines(handle)

    async def metrics(self, handle: H, service_account_info: str | None = None) -> list[tuple[str, Struct]]:
        """The job's timeline and statistics as ``(metric name, Struct)`` pairs, the parts of Flyte's
        ``ExecutionMetricResult`` (none for a handle without a job, as for a task refused before submission)."""
        results = []
        for metric, data in (await self._for(handle, service_account_info).metrics(handle)).items():
            struct = Struct()
            struct.update(data)
            results.append((metric, struct))
        return results


def at_start_up(make: Callable[[], T], program: str, exit_status: int) -> T:
    """``make()`` (a connector, when a plugin is imported); a malformed setting instead prints one line on stderr
    naming the variable and what it expects, and ends the process with ``exit_status``: an operator's mistake
    stops a service at start-up, never fails a user's task nor every call."""
    try:
        return make()
    except SettingsError as e:
        print(f"{program}: {e}", file=sys.stderr)
        raise SystemExit(exit_status) from None
