"""Deterministic job ids and Flyte labels, derived from the task execution's identity.

Why deterministic: Flyte retries a ``CreateTask`` whose response was lost. With a random job id each retry
starts (and bills) another job; with an id derived from the execution, node, task, attempt and a hash of
the query and its parameters, the retry's ``jobs.insert`` answers 409 and we adopt the job already running.
The hash makes the id change when the query or its parameters change, so an id is never reused for
different work. Free of flytekit: the connector converts Flyte's metadata into :class:`ExecutionIdentity`.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidTaskError

__all__ = [
    "ExecutionIdentity",
    "LabelCollisionError",
    "flyte_labels",
    "job_id",
    "local_job_id",
    "query_fingerprint",
    "sanitize_labels",
]

_JOB_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
#: Unicode categories of the letters BigQuery allows in labels: lowercase and caseless ("international").
_LABEL_LETTERS = frozenset({"Ll", "Lo"})
_PART_MAX = 80  # keeps ids readable; uniqueness comes from the hash, not the parts
_LABEL_MAX = 63


@dataclass(frozen=True)
class ExecutionIdentity:
    """Who is running: one attempt of one node of one Flyte execution."""

    project: str
    domain: str
    execution: str
    node: str
    task: str
    attempt: int

    @property
    def is_known(self) -> bool:
        """Local runs and some tests carry no execution identity; those get unique ids instead."""
        return bool(self.execution and self.node)

    def with_attempt(self, attempt: int) -> ExecutionIdentity:
        return ExecutionIdentity(self.project, self.domain, self.execution, self.node, self.task, attempt)


def query_fingerprint(query: str, parameters: list[dict[str, Any]], config: dict[str, Any] | None = None) -> str:
    """A short stable hash of what the job will do: the SQL, its parameters and its job configuration."""
    payload = json.dumps([query, parameters, config or {}], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _part(value: str) -> str:
    return _JOB_ID_UNSAFE.sub("_", value)[:_PART_MAX].strip("_") or "x"


def job_id(identity: ExecutionIdentity, fingerprint: str) -> str:
    """The job id for one attempt: ``flyte-<exec>-<node>-a<attempt>-<hash>``, within BigQuery's rules
    (letters, digits, ``_`` and ``-``; at most 1,024 characters). The hash also covers the raw identity, so
    two executions whose names sanitize alike still get different ids."""
    raw = json.dumps([identity.project, identity.domain, identity.execution, identity.node, identity.task, fingerprint])
    digest = hashlib.sha256(raw.encode()).hexdigest()[:16]
    return f"flyte-{_part(identity.execution)}-{_part(identity.node)}-a{identity.attempt}-{digest}"


def local_job_id() -> str:
    """A unique id for runs without a Flyte execution identity (local ``pyflyte run``)."""
    return f"flyte-local-{uuid.uuid4().hex}"


def _label_char(char: str) -> str:
    category = unicodedata.category(char)
    return char if char in "_-" or category in _LABEL_LETTERS or category.startswith("N") else "_"


def _label_value(value: str) -> str:
    """Lowercase, then every character BigQuery does not allow in a label becomes ``_``; at most 63 characters."""
    text = unicodedata.normalize("NFC", value.lower())
    return "".join(_label_char(c) for c in text)[:_LABEL_MAX]


def _label_key(key: str) -> str:
    k = _label_value(key)
    if k and unicodedata.category(k[0]) not in _LABEL_LETTERS:
        k = ("l" + k)[:_LABEL_MAX]
    return k


class LabelCollisionError(InvalidTaskError, ValueError):
    """Two label keys become the same BigQuery key once sanitized (``Team`` and ``team``): one would be lost."""

    def __init__(self, first: str, second: str, key: str) -> None:
        super().__init__(f"labels {first!r} and {second!r} both become the BigQuery label {key!r}; rename one of them")
        self.keys = (first, second)
        self.key = key


def sanitize_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """Make labels acceptable to BigQuery, whose rule is: keys and values hold only lowercase letters, numeric
    characters, ``_`` and ``-``, international characters included (Unicode ``Ll``, ``Lo`` and ``N*``);
    keys start with a lowercase or international letter; at most 63 characters each.

    Letters are lowercased (``str.lower``, Unicode-aware), other characters become ``_``, a key that does not
    start with a letter gets an ``l`` in front, and both are cut at 63 characters. Keys that end up empty are
    dropped. Two keys that end up the same raise :class:`LabelCollisionError` (an :class:`InvalidTaskError`
    naming both original keys) rather than silently keeping one value.
    """
    out: dict[str, str] = {}
    origin: dict[str, str] = {}
    for key, value in labels.items():
        k = _label_key(str(key))
        if not k:
            continue
        if k in origin:
            raise LabelCollisionError(origin[k], str(key), k)
        origin[k] = str(key)
        out[k] = _label_value(str(value))
    return out


def flyte_labels(identity: ExecutionIdentity) -> dict[str, str]:
    """Labels that let anyone find a Flyte attempt's jobs in BigQuery (and let tests count them)."""
    if not identity.is_known:
        return {"flyte_execution": "local"}
    return sanitize_labels(
        {
            "flyte_project": identity.project,
            "flyte_domain": identity.domain,
            "flyte_execution": identity.execution,
            "flyte_node": identity.node,
            "flyte_task": identity.task.rsplit(".", 1)[-1],
            "flyte_attempt": str(identity.attempt),
        }
    )
