"""Who a task's BigQuery calls run as, and which projects they run in and charge quota to.

A task's custom fields (written by an adapter from ``BigQueryConfig``) may say:

* ``ImpersonateServiceAccount`` — the service account the job runs as, through google-auth's impersonated
  credentials (:mod:`.impersonation`), with ``Delegates`` — the accounts of a delegation chain, in order.
  Allowed only when the operator's allow-list (:mod:`.access_policy`) lets tasks of the execution's Flyte
  project and domain use it; checked here, at planning, so a refused task submits nothing.
* ``ExecutionProject`` — the project the job runs in and is billed to (``jobReference.projectId``), apart from
  ``ProjectID``, the data's project (the managed results dataset's; BigQuery resolves unqualified
  ``dataset.table`` names in the *execution* project, so qualify them as ```project`.dataset.table``).
* ``QuotaProject`` — the project charged for API quota (the ``x-goog-user-project`` header).

:class:`Caller` is what the call layer needs (principal, delegates, quota project): it keys the credentials and
transports of :class:`~.clients.ClientPool`, travels in the job's handle so ``get``/``delete`` call as the same
principal, and in the ``bq://`` URI of the task's output so downstream readers read the result table as the
principal that wrote it (:func:`uri_with_caller`, :func:`caller_of_uri`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from .errors import InvalidTaskError
from .identity import ExecutionIdentity
from .jobconfig import DELEGATES_KEY, EXECUTION_PROJECT_KEY, IMPERSONATE_KEY, QUOTA_PROJECT_KEY, check_project_id
from .settings import Settings

__all__ = ["Caller", "TaskAccess", "caller_of_uri", "task_access", "uri_with_caller"]

#: A service account's e-mail (it becomes part of the IAM URL, so nothing else is let through).
_SERVICE_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*@[A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9]$")
_URI_KEYS = ("principal", "delegates", "quota_project")


@dataclass(frozen=True)
class Caller:
    """Whom BigQuery calls run as: the connector's own identity (``principal=None``) or an impersonated
    service account reached through ``delegates``, with ``quota_project`` charged for API quota. Hashable."""

    principal: str | None = None
    delegates: tuple[str, ...] = ()
    quota_project: str | None = None

    @property
    def impersonates(self) -> bool:
        return self.principal is not None

    def handle_fields(self) -> dict[str, Any]:
        """The :class:`~.handle.JobHandle` fields that carry it (``None``: left out of the encoding)."""
        return {
            "principal": self.principal,
            "delegates": list(self.delegates) or None,
            "quota_project": self.quota_project,
        }

    @classmethod
    def of_handle(cls, handle: Any) -> Caller:
        """The caller a handle recorded (handles written before these fields existed: the default caller)."""
        return cls(
            getattr(handle, "principal", None),
            tuple(getattr(handle, "delegates", None) or ()),
            getattr(handle, "quota_project", None),
        )


@dataclass(frozen=True)
class TaskAccess:
    """What a task's run is allowed and asked to use: the caller, the execution project, the allow-list rule
    that let the principal through (``None`` without impersonation)."""

    caller: Caller
    execution_project: str
    rule: str | None = None


def _service_account(value: Any, field: str, task_name: str) -> str:
    if not isinstance(value, str) or not _SERVICE_ACCOUNT.match(value.strip()):
        raise InvalidTaskError(
            f"BigQueryConfig.{field} must be a service account's e-mail such as "
            "'etl@my-project.iam.gserviceaccount.com'",
            task=task_name,
        )
    return value.strip()


def _optional_project(value: Any, field: str, task_name: str) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InvalidTaskError(f"BigQueryConfig.{field} must be a project id (a string)", task=task_name)
    return check_project_id(value.strip(), field, task_name)


def task_access(
    custom: dict[str, Any], data_project: str, identity: ExecutionIdentity, settings: Settings, task_name: str
) -> TaskAccess:
    """Read and check a task's identity and project fields; authorize its principal against the operator's
    allow-list for the execution's Flyte project and domain.

    Raises :class:`InvalidTaskError` for a malformed field and :class:`~.access_policy.ImpersonationRefused`
    for a principal the allow-list does not allow (deny by default), both naming the task.
    """
    execution_project = _optional_project(custom.get(EXECUTION_PROJECT_KEY), EXECUTION_PROJECT_KEY, task_name)
    quota_project = _optional_project(custom.get(QUOTA_PROJECT_KEY), QUOTA_PROJECT_KEY, task_name)
    raw_principal = custom.get(IMPERSONATE_KEY)
    raw_delegates = custom.get(DELEGATES_KEY) or []
    if raw_principal in (None, ""):
        if raw_delegates:
            raise InvalidTaskError(
                f"BigQueryConfig.{DELEGATES_KEY} needs {IMPERSONATE_KEY}: delegates lead to an impersonated account",
                task=task_name,
            )
        return TaskAccess(Caller(quota_project=quota_project), execution_project or data_project)
    principal = _service_account(raw_principal, IMPERSONATE_KEY, task_name)
    if not isinstance(raw_delegates, list):
        raise InvalidTaskError(f"BigQueryConfig.{DELEGATES_KEY} must be a list of service accounts", task=task_name)
    delegates = tuple(_service_account(d, DELEGATES_KEY, task_name) for d in raw_delegates)
    rule = settings.impersonation_rules.authorize(principal, delegates, identity.project, identity.domain, task_name)
    return TaskAccess(Caller(principal, delegates, quota_project), execution_project or data_project, rule.name)


def uri_with_caller(uri: str, caller: Caller) -> str:
    """``bq://project:dataset.table`` with the caller as a query string when it impersonates
    (``?principal=...&delegates=a,b&quota_project=...``), so the reader uses the same principal."""
    if not caller.impersonates:
        return uri
    values = {
        "principal": caller.principal,
        "delegates": ",".join(caller.delegates) or None,
        "quota_project": caller.quota_project,
    }
    return uri + "?" + urlencode({k: v for k, v in values.items() if v}, safe="@,")


def caller_of_uri(uri: str | None) -> Caller:
    """The caller a ``bq://`` URI names (:func:`uri_with_caller`); the default caller when it names none."""
    query = (uri or "").partition("?")[2]
    if not query:
        return Caller()
    values = {k: v[-1] for k, v in parse_qs(query).items() if k in _URI_KEYS}
    principal = values.get("principal") or None
    if principal is None:
        return Caller(quota_project=values.get("quota_project") or None)
    delegates = tuple(d for d in (values.get("delegates") or "").split(",") if d)
    return Caller(principal, delegates, values.get("quota_project") or None)
