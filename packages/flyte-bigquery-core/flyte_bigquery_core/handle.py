"""What a connector remembers about a job: everything travels in a :class:`JobHandle`.

Flyte's backend stores the encoded handle (a connector's "resource meta") between calls and hands it back to
``get``/``delete``/``get_logs``/``get_metrics``. The connector keeps no other state, so any number of service
replicas can answer any call. The first three fields are the upstream plugins'; the optional ones default so
that metadata encoded by the upstream plugin still decodes. The encoding is compact JSON with ``None`` fields
left out; running tasks survive a rolling upgrade because decoding accepts every earlier form (pinned by
``tests/core/test_handle.py``). The adapters subclass it (flytekit's ``BigQueryMetadata``).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from typing_extensions import Self

from .errors import InvalidMetadataError

__all__ = ["JobHandle"]


#: Job ids are letters, digits, ``_`` and ``-``; project ids add ``.`` and ``:`` (domain-scoped projects).
#: Both become part of REST paths, so anything else is refused.
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,1024}$")


@dataclass
class JobHandle:
    """A reference to one BigQuery job, plus what ``get`` must know to report on it.

    ``output_name`` is the task's declared output (``"results"``) or ``None`` when the task declares none,
    so ``get`` returns outputs only when declared. ``error`` is set when ``create`` refused the task before
    submitting anything (bad input, bad template): ``get`` then reports a permanent failure with that
    message, which reaches the user instead of a gRPC traceback; ``retryable`` marks an error worth another
    attempt (BigQuery stayed unavailable through our retries). ``reused_from_attempt`` records that an
    earlier Flyte attempt's job was adopted instead of starting a second one. ``dry_run`` holds the
    statistics of a dry run: BigQuery answers it at once and keeps no job, so ``get`` has nothing to fetch.
    ``estimated_bytes`` is the dry-run estimate taken before submitting (cost guard), reported beside the
    actual figures. ``deadline`` (epoch seconds) comes from the task's timeout: past it, ``get`` cancels the
    job, so no orphaned job keeps billing after Flyte gives up. ``destination`` (``project:dataset.table``) is
    the result table BigQuery reported when the job was submitted (the managed results table, the user's own
    destination, or the anonymous one), recorded only for a task with an output: ``get`` then reads the job and
    the table's row count concurrently, and uses the count only if the finished job reports that same table.

    ``principal``, ``delegates`` and ``quota_project`` are whom the job's calls run as (:class:`~.access.Caller`):
    ``get``/``delete`` call as the same principal. ``reservation`` is the one the job was submitted with (or
    ``none``), for the report. ``pending_insert`` holds the ``jobs.insert`` body of a job whose submission
    BigQuery throttled past the create's budget: ``get`` submits it again, same job id (:mod:`.resubmission`).
    """

    job_id: str
    project: str
    location: str
    output_name: str | None = None
    error: str | None = None
    retryable: bool | None = None
    reused_from_attempt: int | None = None
    dry_run: dict[str, Any] | None = None
    estimated_bytes: int | None = None
    deadline: float | None = None
    destination: str | None = None
    #: What the result's single row must give (typed outputs or checks; :mod:`.single_row`), for such tasks.
    row_result: dict[str, Any] | None = None
    #: Where the orchestrator keeps the task's outputs (Flyte's output prefix), recorded only when an output must be
    #: written there as a file (a typed output Flyte carries as a pickle: ``Decimal``, ``bytes``, ``time``).
    output_prefix: str | None = None
    principal: str | None = None
    delegates: list[str] | None = None
    quota_project: str | None = None
    reservation: str | None = None
    pending_insert: dict[str, Any] | None = None

    def encode(self) -> bytes:
        """Compact JSON; ``None`` fields are omitted so the common case stays small."""
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode metadata written by this plugin or by the upstream one.

        Raises :class:`InvalidMetadataError` (never a bare ``JSONDecodeError``/``KeyError``) for bytes that
        are not a BigQuery job reference.
        """
        try:
            raw: Any = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise InvalidMetadataError(
                f"resource_meta is not BigQuery job metadata (expected JSON, got {len(data)} undecodable bytes)"
            ) from e
        if not isinstance(raw, dict):
            raise InvalidMetadataError("resource_meta is not BigQuery job metadata (expected a JSON object)")
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("job_id", "project") if not isinstance(raw.get(k), str) or not raw.get(k)]
        if missing and raw.get("error") is None and raw.get("dry_run") is None:
            raise InvalidMetadataError(
                f"resource_meta is missing {', '.join(missing)}; expected keys job_id, project, location"
            )
        values = {k: v for k, v in raw.items() if k in known}
        for name, value in values.items():
            expected = _FIELD_TYPES[name]
            if value is not None and (not isinstance(value, expected) or isinstance(value, bool) != (bool in expected)):
                raise InvalidMetadataError(f"resource_meta field {name!r} has the wrong type")
        references_a_job = values.get("error") is None and values.get("dry_run") is None
        for name in ("job_id", "project") if references_a_job else ():
            if not _SAFE_ID.match(values.get(name) or ""):
                raise InvalidMetadataError(f"resource_meta field {name!r} is not a BigQuery {name.replace('_', ' ')}")
        values.setdefault("job_id", "")
        values.setdefault("project", "")
        # Upstream writes the task's Location, which may be null.
        values["location"] = values.get("location") or ""
        return cls(**values)


#: The JSON types each field may hold (``bool`` is kept apart from ``int``, which it subclasses).
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "job_id": (str,),
    "project": (str,),
    "location": (str,),
    "output_name": (str,),
    "error": (str,),
    "retryable": (bool,),
    "reused_from_attempt": (int,),
    "dry_run": (dict,),
    "estimated_bytes": (int,),
    "deadline": (int, float),
    "destination": (str,),
    "row_result": (dict,),
    "output_prefix": (str,),
    "principal": (str,),
    "delegates": (list,),
    "quota_project": (str,),
    "reservation": (str,),
    "pending_insert": (dict,),
}
