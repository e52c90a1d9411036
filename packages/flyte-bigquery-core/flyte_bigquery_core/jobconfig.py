"""The job configuration a task asks for, read back from its serialized template.

Upstream serializes ``BigQueryConfig.QueryJobConfig`` by flattening the API representation's ``query``
section into the task's custom fields (beside ``ProjectID``, ``Location`` and ``Domain``), and drops the
job-level fields (``labels``, ``dryRun``, ``jobTimeoutMs``). We write the same flattened fields, so either
connector can run our templates, plus the complete representation under :data:`FULL_CONFIG_KEY`; when
reading we prefer the complete one and fall back to the flattened fields for upstream templates. The
client's own ``to_api_repr``/``from_api_repr`` carry the fields; nothing here re-types the API.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidTaskError
from .identity import sanitize_labels
from .params import BigQueryType, parse_input_types

__all__ = [
    "ACCESS_KEYS",
    "DELEGATES_KEY",
    "ESTIMATE_KEY",
    "EXECUTION_PROJECT_KEY",
    "FULL_CONFIG_KEY",
    "IMPERSONATE_KEY",
    "INPUT_ENUMS_KEY",
    "INPUT_TYPES_KEY",
    "MAXIMUM_BYTES_KEY",
    "QUOTA_PROJECT_KEY",
    "RAW_TEMPLATE_INPUTS_KEY",
    "RESERVATION_KEY",
    "RESERVED_KEYS",
    "RESULTS_DATASET_KEY",
    "SECRETS_KEY",
    "TaskSettings",
    "check_project_id",
    "job_configuration",
    "require_project",
    "settings_from_custom",
]

#: Our additions to the custom fields; upstream's connector ignores keys it does not know.
FULL_CONFIG_KEY = "QueryJobConfig"
INPUT_TYPES_KEY = "InputTypes"
RESULTS_DATASET_KEY = "ResultsDataset"
ESTIMATE_KEY = "Estimate"
MAXIMUM_BYTES_KEY = "MaximumBytes"
#: Inputs whose ``{{ .inputs.name }}`` text is pasted as raw SQL: ``true`` (all) or a list of names. Absent
#: (upstream's and older templates): none, so every rendered value must be an identifier path.
RAW_TEMPLATE_INPUTS_KEY = "RawTemplateInputs"
#: ``{input: {member name: value}}`` for enum inputs: Flyte 2 carries an enum as its member's name. Absent (flytekit
#: 1 templates, which carry the value; upstream's): values are used as they arrive.
INPUT_ENUMS_KEY = "InputEnums"
#: Flyte 2's connection secrets (``{"google_application_credentials": "<secret name>"}``), written by upstream's
#: Flyte 2 task and ours: for the platform, never part of the job configuration.
SECRETS_KEY = "secrets"
#: Who runs the job, where, and on which slots (read by :mod:`.access` and :mod:`.reservations`).
IMPERSONATE_KEY = "ImpersonateServiceAccount"
DELEGATES_KEY = "Delegates"
EXECUTION_PROJECT_KEY = "ExecutionProject"
QUOTA_PROJECT_KEY = "QuotaProject"
RESERVATION_KEY = "Reservation"
ACCESS_KEYS = frozenset({IMPERSONATE_KEY, DELEGATES_KEY, EXECUTION_PROJECT_KEY, QUOTA_PROJECT_KEY, RESERVATION_KEY})
RESERVED_KEYS = frozenset(
    {
        "ProjectID",
        "Location",
        "Domain",
        FULL_CONFIG_KEY,
        INPUT_TYPES_KEY,
        RESULTS_DATASET_KEY,
        ESTIMATE_KEY,
        MAXIMUM_BYTES_KEY,
        RAW_TEMPLATE_INPUTS_KEY,
        INPUT_ENUMS_KEY,
        SECRETS_KEY,
        # A typed-result task's outputs and a check task's checks (:mod:`.typed_results`, :mod:`.checks`).
        "TypedOutputs",
        "Checks",
    }
    | ACCESS_KEYS
)

#: Google Cloud project ids: letters, digits and hyphens, optionally behind a ``domain:`` prefix. Checked
#: because the id becomes part of REST paths.
_MALFORMED_CONFIG = "the QueryJobConfig in the task template is malformed"
_PROJECT_ID = re.compile(r"^(?:[a-z][a-z0-9.-]*[a-z0-9]:)?[A-Za-z0-9][A-Za-z0-9-]{0,62}$")


@dataclass(frozen=True)
class TaskSettings:
    """What a serialized task asks of BigQuery, independent of any one run."""

    project: str
    location: str | None
    domain: str | None
    job_config: dict[str, Any] = field(default_factory=dict)
    #: The recorded type of each input (none for upstream templates: the values decide).
    input_types: dict[str, BigQueryType] = field(default_factory=dict)
    results_dataset: str | None = None
    estimate: bool | None = None
    maximum_bytes: str | int | None = None
    #: Inputs rendered as raw SQL fragments: ``True`` for all, else their names (see :mod:`.template`).
    raw_template_inputs: bool | frozenset[str] = frozenset()
    #: ``{input: {member name: value}}`` of enum inputs (see :data:`INPUT_ENUMS_KEY`).
    input_enums: dict[str, dict[str, Any]] = field(default_factory=dict)


def require_project(project: object, task_name: str) -> str:
    """``BigQueryConfig.ProjectID``, checked present (when a task is defined and when it runs); raises
    :class:`InvalidTaskError` naming the task."""
    if not isinstance(project, str) or not project.strip():
        raise InvalidTaskError(
            "BigQueryConfig.ProjectID is missing or empty; "
            "expected the Google Cloud project id that runs (and is billed for) the query",
            task=task_name,
        )
    return project


def check_project_id(project: str, field: str, task_name: str) -> str:
    """``project`` if it is a Google Cloud project id (it becomes part of REST paths); else
    :class:`InvalidTaskError` naming the task and ``BigQueryConfig.<field>``."""
    if not _PROJECT_ID.match(project):
        raise InvalidTaskError(
            f"BigQueryConfig.{field} {project[:80]!r} is not a project id; expected "
            "letters, digits, '-', '.' and ':' (e.g. 'my-project' or 'example.com:my-project')",
            task=task_name,
        )
    return project


def settings_from_custom(custom: dict[str, Any] | None, task_name: str) -> TaskSettings:
    """Read a task template's custom fields, written by this plugin or by the upstream one."""
    custom = dict(custom or {})
    project = require_project(custom.get("ProjectID"), task_name)
    location = custom.get("Location") or None
    if location is not None and not isinstance(location, str):
        raise InvalidTaskError("BigQueryConfig.Location must be a string such as 'US'", task=task_name)
    full = custom.get(FULL_CONFIG_KEY)
    if isinstance(full, dict):
        job_config = copy.deepcopy(full)
    else:
        job_config = {"query": {k: copy.deepcopy(v) for k, v in custom.items() if k not in RESERVED_KEYS}}
    check_project_id(project.strip(), "ProjectID", task_name)
    if not isinstance(job_config.get("query", {}), dict):
        raise InvalidTaskError(_MALFORMED_CONFIG, task=task_name)
    input_types = parse_input_types(custom.get(INPUT_TYPES_KEY), task_name)  # refuses unknown types, naming the input
    raw = custom.get(RAW_TEMPLATE_INPUTS_KEY)
    if raw is None or isinstance(raw, bool):
        raw_template_inputs: bool | frozenset[str] = bool(raw)
    elif isinstance(raw, list) and all(isinstance(name, str) for name in raw):
        raw_template_inputs = frozenset(raw)
    else:
        raise InvalidTaskError(
            f"BigQueryConfig.{RAW_TEMPLATE_INPUTS_KEY} must be true, false or a list of input names", task=task_name
        )
    enums = custom.get(INPUT_ENUMS_KEY) or {}
    if not isinstance(enums, dict) or not all(isinstance(members, dict) for members in enums.values()):
        raise InvalidTaskError(
            f"the task template's {INPUT_ENUMS_KEY} is malformed; expected a map of input names to "
            "{member name: value} maps",
            task=task_name,
        )
    return TaskSettings(
        project=project.strip(),
        location=location,
        domain=custom.get("Domain") or None,
        job_config=job_config,
        input_types=input_types,
        results_dataset=custom.get(RESULTS_DATASET_KEY) or None,
        estimate=custom.get(ESTIMATE_KEY),
        maximum_bytes=custom.get(MAXIMUM_BYTES_KEY),
        raw_template_inputs=raw_template_inputs or frozenset(),
        # A protobuf Struct holds numbers as doubles: an IntEnum's values come back as 2.0.
        input_enums={
            name: {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in members.items()}
            for name, members in enums.items()
        },
    )


def job_configuration(
    settings: TaskSettings,
    sql: str,
    parameters: list[dict[str, Any]],
    labels: dict[str, str],
    task_name: str,
) -> dict[str, Any]:
    """The job's ``configuration`` resource for one run: the task's own configuration (as the client library's
    ``QueryJobConfig.to_api_repr`` wrote it), the statement as written, the run's parameters (REST
    ``queryParameters`` entries, :func:`~.params.query_parameters`) and the labels.

    ``labels`` (connector defaults < Flyte's labels) lie under the task's own labels, which are sanitized to
    BigQuery's rules (two that sanitize alike are refused, naming both). Parameters declared in the task's
    configuration are replaced by those built from the inputs: the inputs are the source of values. Raises
    :class:`InvalidTaskError` for a malformed configuration and for legacy SQL with parameters.
    """
    configuration = copy.deepcopy(settings.job_config)
    query = configuration.setdefault("query", {})
    # The statement and its parameters come from the template and the inputs, never from stale config.
    query.pop("query", None)
    query.pop("queryParameters", None)
    from google.cloud import bigquery  # imports pandas, pyarrow and the Storage client: loaded on first use

    try:  # the client library's own reading is the test of a well-formed configuration
        task_labels = dict(bigquery.QueryJobConfig.from_api_repr(configuration).labels or {})
    except (AttributeError, TypeError, ValueError, KeyError):
        raise InvalidTaskError(_MALFORMED_CONFIG, task=task_name) from None
    if parameters:
        if query.get("useLegacySql"):
            raise InvalidTaskError(
                "legacy SQL does not support named query parameters; "
                "remove use_legacy_sql=True from the QueryJobConfig (GoogleSQL is the default)",
                task=task_name,
            )
        query["parameterMode"] = "NAMED"
        query["queryParameters"] = parameters
    query["query"] = sql
    query.setdefault("useLegacySql", False)
    try:
        configuration["labels"] = {**labels, **sanitize_labels(task_labels)}
    except InvalidTaskError as e:
        raise InvalidTaskError(f"QueryJobConfig.labels: {e}", task=task_name) from None
    return configuration
