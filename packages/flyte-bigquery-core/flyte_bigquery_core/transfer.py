"""Planning one run of a load, extract or copy task: the same kind of plan as a query's
(:class:`~.planning.QueryPlan`), so :class:`~.engine.QueryEngine` submits, adopts (409), reuses an earlier
attempt's job, observes, reports and cancels it exactly as it does a query.

:func:`plan_transfer` is synchronous and pure, over plain values like :func:`~.planning.plan_query`: the task as
serialized (:class:`TransferTask`: its kind and its custom fields, which hold ``ProjectID``, ``Location`` and the
kind's spec under :data:`JOB_KINDS`' key), the value of its ``source`` input, who runs, and the connector's
settings. Every user error surfaces here, naming the task, before anything is submitted.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from . import identity as ids
from .access import task_access
from .cost import CostPolicy
from .errors import InvalidTaskError, UnsupportedInputError, about_task
from .extract import ExtractSpec, extract_configuration
from .jobconfig import DELEGATES_KEY, IMPERSONATE_KEY, TaskSettings, settings_from_custom
from .load import LoadSpec, load_configuration
from .planning import QueryPlan, task_reservation
from .settings import Settings
from .table_copy import CopySpec, copy_configuration

__all__ = [
    "JOB_KINDS",
    "LABELS_KEY",
    "PARTITION_INPUT",
    "SOURCE_INPUT",
    "JobKind",
    "TransferTask",
    "check_definition",
    "plan_transfer",
]

#: The input a transfer task reads its source from (a file, directory, dataset, table or URIs), if declared.
SOURCE_INPUT = "source"
#: The input that picks a load's destination partition for the run (a date, an integer or a decorator).
PARTITION_INPUT = "partition"
#: The task's own labels (a JSON object), beside the spec; sanitized like a query's.
LABELS_KEY = "Labels"


@dataclass(frozen=True)
class JobKind:
    """One kind of job: the custom field holding its spec, how the spec is read back, how it becomes the job
    configuration's section (``load``, ``extract``, ``copy``) for one run from the run's input values, and the
    inputs it reads."""

    section: str
    custom_key: str
    read_spec: Callable[[Any], Any]
    configuration: Callable[[Any, Mapping[str, Any], str], dict[str, Any]]
    inputs: tuple[str, ...] = (SOURCE_INPUT,)


#: What stands for the ``source`` input when a definition is checked (its value is only known at run time).
_PLACEHOLDER_SOURCES = {"load": "gs://bucket/object", "extract": "_definition._source", "copy": "_definition._source"}

#: Task kind → how its job is built.
JOB_KINDS: dict[str, JobKind] = {
    "load": JobKind(
        "load",
        "LoadJob",
        LoadSpec.from_api_repr,
        lambda spec, values, project: load_configuration(
            spec, values.get(SOURCE_INPUT), project, values.get(PARTITION_INPUT)
        ),
        (SOURCE_INPUT, PARTITION_INPUT),
    ),
    "extract": JobKind(
        "extract",
        "ExtractJob",
        ExtractSpec.from_api_repr,
        lambda spec, values, project: extract_configuration(spec, values.get(SOURCE_INPUT), project),
    ),
    "copy": JobKind(
        "copy",
        "CopyJob",
        CopySpec.from_api_repr,
        lambda spec, values, project: copy_configuration(spec, values.get(SOURCE_INPUT), project),
    ),
}


@dataclass(frozen=True)
class TransferTask:
    """A load, extract or copy task as its SDK serialized it: name, ``kind`` (a key of :data:`JOB_KINDS`),
    custom fields, its declared output (``None``: none) and its timeout in seconds."""

    name: str
    kind: str
    custom: Mapping[str, Any]
    output_name: str | None = None
    timeout_seconds: float | None = None


def plan_transfer(
    task: TransferTask, values: Mapping[str, Any], identity: ids.ExecutionIdentity, settings: Settings, now: float
) -> QueryPlan:
    """Plan one run of ``task``; ``values`` holds its ``source`` (and a load's ``partition``) input if declared (any
    other input is refused). Raises :class:`~.errors.PermanentError` subclasses whose ``task`` is the task's name."""
    with about_task(task.name):
        kind = JOB_KINDS.get(task.kind)
        if kind is None:
            raise InvalidTaskError(f"unknown job kind {task.kind!r}; expected one of {', '.join(JOB_KINDS)}")
        unread = sorted(set(values) - set(kind.inputs))
        if unread:
            expected = ", ".join(repr(name) for name in kind.inputs)
            raise UnsupportedInputError(
                f"input(s) {', '.join(unread)} are not read by a {task.kind} task; it reads {expected}"
            )
        custom = dict(task.custom)
        spec = kind.read_spec(custom.pop(kind.custom_key, None))
        labels = custom.pop(LABELS_KEY, None) or {}
        base = settings_from_custom({k: custom.get(k) for k in ("ProjectID", "Location", "Domain")}, task.name)
        # Who runs it and where, as for a query (:mod:`.access`): a principal the operator does not allow refuses
        # the task, with nothing submitted.
        access = task_access(custom, base.project, identity, settings, task.name)
        section = kind.configuration(spec, values, base.project)
        if not isinstance(labels, Mapping):
            raise InvalidTaskError(f"{LABELS_KEY} must be an object of label keys to values")
        try:
            own_labels = ids.sanitize_labels(labels)
        except InvalidTaskError as e:
            raise InvalidTaskError(f"{LABELS_KEY}: {e}") from None
        configuration: dict[str, Any] = {
            kind.section: section,
            "labels": {**settings.default_labels, **ids.flyte_labels(identity), **own_labels},
        }
        reservation = task_reservation(custom, configuration, identity, settings, task.name)
        if task.timeout_seconds:
            configuration["jobTimeoutMs"] = str(int(task.timeout_seconds * 1000))
        # The work, without who runs it: the kind and its section (the job id adds the identity).
        fingerprint = ids.query_fingerprint(kind.section, [], {kind.section: section})
        job_id = ids.job_id(identity, fingerprint) if identity.is_known else ids.local_job_id()
        reference = {"projectId": access.execution_project, "jobId": job_id}
        if base.location:
            reference["location"] = base.location
        return QueryPlan(
            task=task.name,
            settings=TaskSettings(project=base.project, location=base.location, domain=base.domain),
            identity=identity,
            resource={"jobReference": reference, "configuration": configuration},
            policy=CostPolicy(),
            fingerprint=fingerprint,
            job_id=job_id,
            output_name=task.output_name,
            deadline=now + task.timeout_seconds if task.timeout_seconds else None,
            results=None,
            access=access,
            reservation=reservation,
        )


def check_definition(task: TransferTask, inputs: Collection[str]) -> None:
    """Refuse a task definition whose spec cannot work whatever its ``inputs`` (their names) hold (the adapter
    calls this when the task is defined, so the mistake surfaces then, not at run time); the same checks as
    :func:`plan_transfer`, and inputs the kind does not read are refused."""
    kind = JOB_KINDS.get(task.kind)
    unknown = sorted(set(inputs) - set(kind.inputs)) if kind is not None else []
    if kind is not None and unknown:
        expected = ", ".join(repr(name) for name in kind.inputs)
        raise InvalidTaskError(
            f"input(s) {', '.join(unknown)} are not read by a {task.kind} task; it reads {expected}", task=task.name
        )
    placeholders = {SOURCE_INPUT: _PLACEHOLDER_SOURCES.get(task.kind), PARTITION_INPUT: "__UNPARTITIONED__"}
    values = {name: placeholders.get(name) for name in inputs}
    # Who may run as whom is the operator's decision, made by the connector at run time: not checked here.
    custom = {k: v for k, v in task.custom.items() if k not in (IMPERSONATE_KEY, DELEGATES_KEY)}
    checked = TransferTask(task.name, task.kind, custom, task.output_name, task.timeout_seconds)
    plan_transfer(checked, values, ids.ExecutionIdentity("", "", "", "", task.name, 0), Settings(), 0.0)
