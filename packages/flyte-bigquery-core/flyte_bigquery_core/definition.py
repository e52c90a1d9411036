"""Defining a query task: what a ``BigQueryConfig`` and the declared inputs become in the task's custom fields.

Both adapters (flytekit 1's and Flyte 2's) call :func:`define_task` when a task is defined, and write
:meth:`TaskDefinition.custom_fields` when it is serialized, so their templates carry the same fields and the
core reads them identically (:func:`~.jobconfig.settings_from_custom`). The fields are upstream's —
``Location``, ``ProjectID``, ``Domain`` and the ``QueryJobConfig``'s ``query`` section flattened in — so either
upstream connector can run our templates, plus our additions, which upstream ignores: the complete job
configuration, each input's BigQuery type (:data:`~.jobconfig.INPUT_TYPES_KEY`), the names of enum members
(:data:`~.jobconfig.INPUT_ENUMS_KEY`: Flyte 2 carries an enum by its member's name), and the results dataset,
cost guard and raw-template settings, and who the job runs as, where, and on which slots.

Every definition error is raised here, naming the task and the input: a missing project, a byte limit that is no
size, an input type with no BigQuery form, a ``RawTemplateInputs`` that names no input.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .cost import parse_bytes
from .errors import InvalidTaskError, about_task
from .jobconfig import (
    DELEGATES_KEY,
    ESTIMATE_KEY,
    EXECUTION_PROJECT_KEY,
    FULL_CONFIG_KEY,
    IMPERSONATE_KEY,
    INPUT_ENUMS_KEY,
    INPUT_TYPES_KEY,
    MAXIMUM_BYTES_KEY,
    QUOTA_PROJECT_KEY,
    RAW_TEMPLATE_INPUTS_KEY,
    RESERVATION_KEY,
    RESULTS_DATASET_KEY,
    require_project,
)
from .params import input_type
from .reservations import parse_reservation

if TYPE_CHECKING:  # google-cloud-bigquery imports pandas, pyarrow and the Storage client: loaded on first use
    from google.cloud import bigquery

__all__ = ["BigQueryConfig", "TaskDefinition", "define_task", "enum_members"]


@dataclasses.dataclass
class BigQueryConfig:
    """Where and how a BigQuery task runs (the ``BigQueryConfig`` of both plugins, flytekit's and Flyte 2's).

    ``ProjectID`` runs (and is billed for) the query. ``Location`` is the job's location (``US``, ``EU``,
    ``europe-west1``…); ``None`` lets BigQuery choose from the tables referenced. Every field of
    ``QueryJobConfig`` (labels, priority, maximum bytes billed, destination, dry run…) is honoured.

    ``ResultsDataset`` (``"dataset"`` or ``"project.dataset"``; our addition) writes the ``results`` output
    to a managed dataset instead of BigQuery's anonymous 24-hour table, so other identities can read it
    and it outlives the anonymous table's expiry (see :mod:`flyte_bigquery_core.results`).

    Cost guards (our addition, see :mod:`flyte_bigquery_core.cost`): ``Estimate=True`` dry-runs the
    query first and records the estimate; ``MaximumBytes`` (bytes, or a size such as ``"10 GiB"``) refuses
    a query whose estimate is larger, before anything is spent, and is passed on to BigQuery as
    ``maximum_bytes_billed``. ``None`` means the connector-wide default applies.

    ``RawTemplateInputs`` (our addition): the inputs whose ``{{ .inputs.name }}`` placeholders paste raw SQL
    fragments — a list of input names, or ``True`` for all. By default (``False``) a rendered value must be an
    identifier path such as ``dataset.table`` or ```my-project`.dataset.table``, and anything else is refused
    before submission: values belong in ``@name`` query parameters (see :mod:`flyte_bigquery_core.template`).

    Identity and capacity (our additions, see :mod:`flyte_bigquery_core.access` and
    :mod:`flyte_bigquery_core.reservations`): ``ImpersonateServiceAccount`` runs the job as that service account
    (through ``Delegates``, in order), if the connector's operator allows the execution's Flyte project and domain
    to use it; ``ExecutionProject`` runs and bills the job in another project than ``ProjectID`` (the data's);
    ``QuotaProject`` is charged for API quota; ``Reservation`` (a reservation's resource name, or ``"none"`` for
    on-demand) wins over the operator's defaults.
    """

    ProjectID: str
    Location: str | None = None
    QueryJobConfig: bigquery.QueryJobConfig | None = None
    ResultsDataset: str | None = None
    Estimate: bool | None = None
    MaximumBytes: int | str | None = None
    RawTemplateInputs: bool | list[str] = False
    ImpersonateServiceAccount: str | None = None
    Delegates: list[str] | None = None
    ExecutionProject: str | None = None
    QuotaProject: str | None = None
    Reservation: str | None = None


@dataclasses.dataclass(frozen=True)
class TaskDefinition:
    """A query task's configuration and inputs, checked; :meth:`custom_fields` is what the template records."""

    project: str
    location: str | None
    #: ``QueryJobConfig.to_api_repr()`` (the client library's REST form), if one was given.
    job_config: dict[str, Any] | None
    input_types: dict[str, str]
    input_enums: dict[str, dict[str, Any]]
    results_dataset: str | None = None
    estimate: bool | None = None
    maximum_bytes: int | None = None
    raw_template_inputs: bool | list[str] = False
    #: The identity and capacity fields that are set (``ImpersonateServiceAccount``… :data:`~.jobconfig.ACCESS_KEYS`).
    access: dict[str, Any] = dataclasses.field(default_factory=dict)

    def custom_fields(self, domain: str | None) -> dict[str, Any]:
        """The task template's custom fields (JSON values only; ``MaximumBytes`` as a decimal string, since a
        protobuf ``Struct`` number is a double and would round large limits)."""
        fields: dict[str, Any] = {"Location": self.location, "ProjectID": self.project, "Domain": domain}
        if self.job_config is not None:
            fields.update(self.job_config.get("query", {}))
            fields[FULL_CONFIG_KEY] = self.job_config
        if self.input_types:
            fields[INPUT_TYPES_KEY] = self.input_types
        if self.input_enums:
            fields[INPUT_ENUMS_KEY] = self.input_enums
        if self.results_dataset:
            fields[RESULTS_DATASET_KEY] = self.results_dataset
        if self.estimate is not None:
            fields[ESTIMATE_KEY] = bool(self.estimate)
        if self.maximum_bytes is not None:
            fields[MAXIMUM_BYTES_KEY] = str(self.maximum_bytes)
        if self.raw_template_inputs:
            fields[RAW_TEMPLATE_INPUTS_KEY] = self.raw_template_inputs
        fields.update(self.access)
        return fields


def enum_members(python_type: object) -> dict[str, Any] | None:
    """``{member name: value}`` of the Enum an input is declared as (also inside ``Optional`` and ``list``), else
    ``None``. Flyte 2 carries an enum input as its member's *name*; the value is what the query parameter holds."""
    while True:
        origin = typing.get_origin(python_type)
        args = [arg for arg in typing.get_args(python_type) if arg is not type(None)]
        if origin is typing.Annotated or (origin is not None and len(args) == 1):
            python_type = args[0]  # Annotated[T, ...], Optional[T], list[T]
            continue
        break
    if isinstance(python_type, type) and issubclass(python_type, enum.Enum):
        return {member.name: member.value for member in python_type}
    return None


def define_task(name: str, config: BigQueryConfig | None, inputs: Mapping[str, object] | None) -> TaskDefinition:
    """Check a task's configuration and declared inputs (``name → Python type``) and return its definition. Raises
    :class:`~.errors.InvalidTaskError` / :class:`~.errors.UnsupportedInputError` naming the task."""
    if config is None:
        require_project(None, name)  # raises, naming the task
    assert config is not None
    inputs = dict(inputs or {})
    project = require_project(config.ProjectID, name)
    limit = None
    if config.MaximumBytes not in (None, ""):
        with about_task(name):
            limit = parse_bytes(config.MaximumBytes, "BigQueryConfig.MaximumBytes")
    types = {n: input_type(t, name, n) for n, t in inputs.items()}  # refuses unmappable types, naming the input
    enums = {n: members for n, t in inputs.items() if (members := enum_members(t)) is not None}
    raw = config.RawTemplateInputs
    names = list(raw) if isinstance(raw, (list, tuple)) else None
    if not isinstance(raw, bool) and (names is None or not all(n in inputs for n in names)):
        raise InvalidTaskError(
            f"BigQueryConfig.RawTemplateInputs must be True, False or a list of the task's input names; "
            f"inputs: {', '.join(sorted(inputs)) or 'none'}",
            task=name,
        )
    return TaskDefinition(
        project=project,
        location=config.Location,
        job_config=config.QueryJobConfig.to_api_repr() if config.QueryJobConfig is not None else None,
        input_types=types,
        input_enums=enums,
        results_dataset=config.ResultsDataset or None,
        estimate=config.Estimate,
        maximum_bytes=limit,
        raw_template_inputs=sorted(names) if names is not None else bool(raw),
        access=access_fields(config, name),
    )


def access_fields(config: BigQueryConfig, name: str) -> dict[str, Any]:
    """The custom fields of a task's identity and capacity (any kind of job: query, load, extract, copy), the
    ones set only. Raises :class:`~.errors.InvalidTaskError` naming the task for a malformed ``Reservation``."""
    if config.Reservation not in (None, ""):
        try:
            parse_reservation(str(config.Reservation))
        except ValueError as e:
            raise InvalidTaskError(f"BigQueryConfig.Reservation is not a reservation: {e}", task=name) from None
    fields = {
        IMPERSONATE_KEY: config.ImpersonateServiceAccount,
        DELEGATES_KEY: list(config.Delegates) if config.Delegates else None,
        EXECUTION_PROJECT_KEY: config.ExecutionProject,
        QUOTA_PROJECT_KEY: config.QuotaProject,
        RESERVATION_KEY: config.Reservation,
    }
    return {key: value for key, value in fields.items() if value not in (None, "")}
