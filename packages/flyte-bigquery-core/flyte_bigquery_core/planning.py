"""Planning one run of a query task: everything that can be decided before calling BigQuery.

:func:`plan_query` is a synchronous function over plain values — the task as serialized (:class:`QueryTask`),
the input values an adapter decoded from its SDK's literals, who is running (:class:`~.identity.ExecutionIdentity`)
and the connector's :class:`~.settings.Settings` — so it is unit tested without an event loop, a server or a
Flyte SDK. Every user error surfaces here, before anything is submitted or spent: a malformed template, an input
with no BigQuery type, a ``@name`` the query uses that is no input, legacy SQL with parameters.

The plan holds the complete ``jobs.insert`` resource (https://cloud.google.com/bigquery/docs/reference/rest/v2/Job):
the statement as written, the parameters, the task's job configuration, labels merged as connector defaults <
Flyte's labels < the task's own, the byte limit, the timeout, and the managed results table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import identity as ids
from .access import Caller, TaskAccess, task_access
from .bigquery_types import SUPPORTED_TYPES
from .checks import check_query_task
from .cost import CostPolicy
from .errors import InvalidTaskError, PermanentError, UnsupportedInputError, about_task
from .jobconfig import RESERVATION_KEY, TaskSettings, job_configuration, settings_from_custom
from .ordering import ORDERED_LABEL, orders_result
from .params import coerce_values, enum_values, query_parameters, referenced_parameters
from .reservations import ReservationChoice, choose_reservation
from .results import ManagedResults, managed_results
from .settings import Settings
from .single_row import row_result_of
from .sources import SourceRef
from .template import render_query

__all__ = ["QueryPlan", "QueryTask", "plan_query"]

#: What the plan adds to the query configuration to write the managed results table.
_MANAGED_DESTINATION_KEYS = ("destinationTable", "writeDisposition", "destinationTableProperties")


@dataclass(frozen=True)
class QueryTask:
    """A query task as its SDK serialized it: name, custom fields, statement, whether it declares an output
    (named ``output_name``), and its timeout in seconds (``None``: none)."""

    name: str
    custom: Mapping[str, Any]
    statement: str | None
    output_name: str | None = None
    timeout_seconds: float | None = None


@dataclass(frozen=True)
class QueryPlan:
    """One run of a task, decided: the job resource to insert and what submitting and observing it needs. Load,
    extract and copy tasks are planned into one too (:func:`.transfer.plan_transfer`: no cost policy, no
    managed results)."""

    task: str
    settings: TaskSettings
    identity: ids.ExecutionIdentity
    #: The ``jobs.insert`` body: ``jobReference`` and ``configuration``.
    resource: dict[str, Any]
    policy: CostPolicy
    #: Attempt-independent hash of the work, so that earlier attempts' job ids can be recomputed.
    fingerprint: str
    job_id: str
    output_name: str | None
    #: Epoch seconds after which the job is cancelled (from the task's timeout).
    deadline: float | None
    #: The managed results dataset, when the task's output is written to one.
    results: ManagedResults | None
    #: What the result's single row must give (typed outputs or checks), recorded in the handle.
    row_result: dict[str, Any] | None = None
    #: Whom the calls run as, and the execution project (:mod:`.access`); the connector's own identity by default.
    access: TaskAccess | None = None
    #: The job's reservation and where the choice came from (:mod:`.reservations`).
    reservation: ReservationChoice = field(default_factory=lambda: ReservationChoice(None))

    @property
    def project(self) -> str:
        """The project the job runs in (``ExecutionProject``, else ``ProjectID``)."""
        return str(self.resource["jobReference"]["projectId"])

    @property
    def caller(self) -> Caller:
        return self.access.caller if self.access is not None else Caller()

    @property
    def location(self) -> str | None:
        """Where the job runs: the task's ``Location``, or the one BigQuery resolved (:meth:`located`);
        ``None`` while unknown (BigQuery then places the job itself, by the data the query reads)."""
        return self.resource["jobReference"].get("location") or None

    def located(self, location: str | None) -> QueryPlan:
        """This plan with the job's location known. Only ``jobReference.location`` changes: the job id and the
        fingerprint do not depend on it, so a job keeps its id whether its location was configured or resolved."""
        if not location or location == self.location:
            return self
        resource = {**self.resource, "jobReference": {**self.resource["jobReference"], "location": location}}
        return replace(self, resource=resource)

    @property
    def dry_run_resource(self) -> dict[str, Any]:
        """The job to dry-run (for its estimate and location): the planned job without the managed results
        table, whose dataset may not exist yet and whose location must not steer where the query runs."""
        if not self.writes_managed_table:
            return self.resource
        configuration = self.resource["configuration"]
        query = {k: v for k, v in configuration["query"].items() if k not in _MANAGED_DESTINATION_KEYS}
        return {**self.resource, "configuration": {**configuration, "query": query}}

    @property
    def dry_run(self) -> bool:
        return bool(self.resource["configuration"].get("dryRun"))

    @property
    def writes_managed_table(self) -> bool:
        """Whether the job writes the managed results table (the dataset must exist first)."""
        destination = (self.resource["configuration"].get("query") or {}).get("destinationTable") or {}
        return self.results is not None and destination.get("tableId") == self.job_id


def task_reservation(
    custom: Mapping[str, Any],
    configuration: dict[str, Any],
    identity: ids.ExecutionIdentity,
    settings: Settings,
    name: str,
) -> ReservationChoice:
    """Choose the job's reservation (:func:`~.reservations.choose_reservation`: the task's ``Reservation``, its
    job configuration's, the Flyte project/domain default, the connector's) and write it into ``configuration``."""
    reservation = choose_reservation(
        custom.get(RESERVATION_KEY),
        configuration.get("reservation"),
        identity.project,
        identity.domain,
        settings.reservation_defaults,
        settings.default_reservation,
        name,
    )
    reservation.apply(configuration)
    return reservation


def _refuse_sources(values: Mapping[str, Any]) -> None:
    """A file, directory or structured dataset (a load's source, :class:`~.sources.SourceRef`) is no parameter."""
    for name, value in values.items():
        items = value if isinstance(value, list) else [value]
        if any(isinstance(item, SourceRef) for item in items):
            raise UnsupportedInputError(
                f"input {name!r}: files, directories and structured datasets cannot be query parameters; "
                f"supported types: {SUPPORTED_TYPES}"
            )


def plan_query(
    task: QueryTask, values: Mapping[str, Any], identity: ids.ExecutionIdentity, settings: Settings, now: float
) -> QueryPlan:
    """Plan one run of ``task`` with input ``values`` at epoch time ``now``.

    Raises :class:`~.errors.PermanentError` subclasses (:class:`InvalidTaskError`,
    :class:`~.errors.UnsupportedInputError`) whose ``task`` is the task's name, naming the input and what was
    expected.
    """
    with about_task(task.name):
        return _plan(task, values, identity, settings, now)


def _plan(
    task: QueryTask, values: Mapping[str, Any], identity: ids.ExecutionIdentity, settings: Settings, now: float
) -> QueryPlan:
    name = task.name
    task_settings = settings_from_custom(dict(task.custom), name)
    row_result = row_result_of(task.custom, name)
    if row_result is not None:  # typed outputs and checks come from the row, never from a results table
        task = replace(task, output_name=None)
    if "checks" in (row_result or {}):  # a check's query is priced by a dry run first (and maybe generated)
        task = check_query_task(task)
        task_settings = settings_from_custom(dict(task.custom), name)
    # Who runs it is decided first: a principal the operator does not allow refuses the task whatever its inputs.
    access = task_access(dict(task.custom), task_settings.project, identity, settings, name)
    if not (task.statement or "").strip():
        raise InvalidTaskError("the task template has no SQL statement", task=name)
    # Shaped as recorded (a date that Flyte carried as a datetime is a date again) before placeholders render.
    values = enum_values(values, task_settings.input_enums)  # Flyte 2 carries an enum as its member's name
    _refuse_sources(values)
    values = coerce_values(values, task_settings.input_types, name)
    sql = render_query(task.statement or "", values, name, task_settings.raw_template_inputs)
    undeclared = sorted(referenced_parameters(sql) - set(values))
    if undeclared:
        declared = ", ".join(sorted(values)) or "none"
        raise PermanentError(
            f"the query uses parameter(s) {', '.join('@' + p for p in undeclared)} that are not inputs of the "
            f"task; declared inputs: {declared}",
            task=name,
        )
    parameters = query_parameters(values, task_settings.input_types, name)
    labels = {**settings.default_labels, **ids.flyte_labels(identity)}
    configuration = job_configuration(task_settings, sql, parameters, labels, name)
    query = configuration["query"]
    configured_maximum = _configured_maximum_bytes(query)
    policy = CostPolicy.resolve(task_settings.estimate, task_settings.maximum_bytes, configured_maximum, name, settings)
    if policy.maximum_bytes is not None:
        query["maximumBytesBilled"] = str(policy.maximum_bytes)  # BigQuery enforces it server-side too
    reservation = task_reservation(task.custom, configuration, identity, settings, name)
    if task.timeout_seconds and configuration.get("jobTimeoutMs") is None:
        configuration["jobTimeoutMs"] = str(int(task.timeout_seconds * 1000))
    fingerprint = ids.query_fingerprint(sql, parameters, task_settings.job_config)
    job_id = ids.job_id(identity, fingerprint) if identity.is_known else ids.local_job_id()
    results = managed_results(task_settings.results_dataset, task_settings.project, name, settings)
    results = results if task.output_name else None
    if results is not None and not query.get("destinationTable") and not configuration.get("dryRun"):
        query["destinationTable"] = results.table(job_id).to_api_repr()
        query["writeDisposition"] = "WRITE_TRUNCATE"
        if orders_result(sql):  # readers of an ordered result read it through one stream (.ordering)
            properties = query["destinationTableProperties"] = dict(query.get("destinationTableProperties") or {})
            properties["labels"] = {**(properties.get("labels") or {}), ORDERED_LABEL: "true"}
    reference = {"projectId": access.execution_project, "jobId": job_id}
    if task_settings.location:
        reference["location"] = task_settings.location
    return QueryPlan(
        task=name,
        settings=task_settings,
        identity=identity,
        resource={"jobReference": reference, "configuration": configuration},
        policy=policy,
        fingerprint=fingerprint,
        job_id=job_id,
        output_name=task.output_name,
        deadline=now + task.timeout_seconds if task.timeout_seconds else None,
        results=results,
        row_result=row_result,
        access=access,
        reservation=reservation,
    )


def _configured_maximum_bytes(query: Mapping[str, Any]) -> int | None:
    """The QueryJobConfig's ``maximumBytesBilled`` (an int64 as a decimal string in REST), if set."""
    raw = query.get("maximumBytesBilled")
    if raw is None:
        return None
    try:
        return int(str(raw))
    except ValueError:
        raise InvalidTaskError("QueryJobConfig.maximum_bytes_billed is not a whole number of bytes") from None
