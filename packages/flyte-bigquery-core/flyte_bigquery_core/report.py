"""What a person (and Flyte's UI) learns about a job: custom info, log lines and metrics.

All three read the REST job resource (``jobs.get`` JSON) that BigQuery documents, so they are tested on
resource shapes alone and work from a :class:`~.handle.JobHandle` in a stateless service.
"""

from __future__ import annotations

from typing import Any

from .status import describe_error

__all__ = [
    "CUSTOM_INFO_KEYS",
    "CUSTOM_INFO_SCHEMA",
    "child_job_lines",
    "console_url",
    "destination_of",
    "extracted_folder",
    "human_bytes",
    "job_log_lines",
    "job_metrics",
    "job_summary",
    "table_name",
]

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(n: int | float) -> str:
    """``1288490188`` → ``'1.2 GiB'``."""
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def console_url(project: str, location: str | None, job_id: str) -> str:
    """The job's page in the BigQuery console (``j=bq:<location>:<job id>``; no ``None`` ever reaches it)."""
    return (
        f"https://console.cloud.google.com/bigquery?project={project}&j=bq:{location or ''}:{job_id}&page=queryresults"
    )


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


#: The schema of ``custom_info``: every key, where its value comes from, and its JSON type. Every key is
#: present in every summary, ``None`` (JSON ``null``) when BigQuery did not report it — a cache hit or a local
#: BigQuery has no ``totalSlotMs``, a dry run no ``totalBytesBilled`` — so parsers and dashboards can rely on
#: the keys. ``total_rows`` and ``reused_from_attempt`` are filled in by the engine after the job: ``total_rows``
#: for a succeeded query with a result table whose row count could be read, ``reused_from_attempt`` when an
#: earlier attempt's job was adopted; ``principal`` and ``quota_project`` (and ``reservation`` when BigQuery does
#: not echo it) from the job's handle.
CUSTOM_INFO_SCHEMA: tuple[tuple[str, str, str], ...] = (
    ("job_id", "jobReference.jobId", "string"),
    ("location", "jobReference.location", "string"),
    ("state", "status.state", "string"),
    ("statement_type", "statistics.query.statementType", "string"),
    ("total_bytes_processed", "statistics.query.totalBytesProcessed (else statistics.totalBytesProcessed)", "integer"),
    ("total_bytes_billed", "statistics.query.totalBytesBilled", "integer"),
    ("total_slot_ms", "statistics.query.totalSlotMs (else statistics.totalSlotMs)", "integer"),
    ("cache_hit", "statistics.query.cacheHit", "boolean"),
    ("num_dml_affected_rows", "statistics.query.numDmlAffectedRows", "integer"),
    ("estimated_bytes_processed", "the dry run taken before submission (Estimate, MaximumBytes)", "integer"),
    ("destination", "configuration.query (.load, .copy).destinationTable, as project:dataset.table", "string"),
    ("total_rows", "numRows of the destination table, read after success", "integer"),
    ("reused_from_attempt", "the earlier Flyte attempt whose job this attempt adopted", "integer"),
    # Load, extract and copy jobs (null for queries).
    ("job_type", "configuration.jobType (else the configuration's section: QUERY, LOAD, EXTRACT, COPY)", "string"),
    ("input_files", "statistics.load.inputFiles", "integer"),
    ("input_bytes", "statistics.load.inputFileBytes (else statistics.extract.inputBytes)", "integer"),
    ("output_rows", "statistics.load.outputRows (else statistics.copy.copiedRows)", "integer"),
    ("output_bytes", "statistics.load.outputBytes (else statistics.copy.copiedLogicalBytes)", "integer"),
    ("bad_records", "statistics.load.badRecords", "integer"),
    ("output_files", "the sum of statistics.extract.destinationUriFileCounts", "integer"),
    ("execution_project", "jobReference.projectId: where the job ran and was billed (ExecutionProject)", "string"),
    ("reservation", "configuration.reservation (else as submitted); 'none': on demand, null: by assignment", "string"),
    ("principal", "the service account the job ran as (ImpersonateServiceAccount); null: the connector's", "string"),
    ("quota_project", "the project charged for API quota (QuotaProject, the x-goog-user-project header)", "string"),
)
CUSTOM_INFO_KEYS: tuple[str, ...] = tuple(key for key, _, _ in CUSTOM_INFO_SCHEMA)
#: The configuration sections naming the table a job writes, in the order they are looked for.
_DESTINATION_SECTIONS = ("query", "load", "copy")
#: The configuration section of each kind of job.
_JOB_SECTIONS = ("query", "load", "extract", "copy")


def destination_of(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The ``destinationTable`` a job resource reports (``configuration.query``, ``.load`` or ``.copy``), if any."""
    configuration = resource.get("configuration") or {}
    for section in _DESTINATION_SECTIONS:
        destination = (configuration.get(section) or {}).get("destinationTable")
        if isinstance(destination, dict):
            return destination
    return None


def extracted_folder(resource: dict[str, Any]) -> str | None:
    """The ``gs://`` folder an extract job writes its files to (that of its first destination URI), if any."""
    uris = ((resource.get("configuration") or {}).get("extract") or {}).get("destinationUris") or []
    first = uris[0] if uris and isinstance(uris[0], str) else None
    return first.rsplit("/", 1)[0] if first and "/" in first.removeprefix("gs://") else None


def _job_type(configuration: dict[str, Any]) -> str | None:
    declared = configuration.get("jobType")
    if isinstance(declared, str) and declared:
        return declared
    return next((section.upper() for section in _JOB_SECTIONS if configuration.get(section)), None)


def table_name(ref: dict[str, Any] | None) -> str | None:
    """``project:dataset.table`` of a table reference; ``None`` unless all three parts are there."""
    if not ref:
        return None
    parts = (ref.get("projectId"), ref.get("datasetId"), ref.get("tableId"))
    if not all(isinstance(p, str) and p for p in parts):
        return None
    return f"{parts[0]}:{parts[1]}.{parts[2]}"


def job_summary(resource: dict[str, Any], estimated_bytes: int | None = None) -> dict[str, Any]:
    """Statistics for Flyte's ``custom_info``: a JSON-safe dict with exactly the keys of
    :data:`CUSTOM_INFO_SCHEMA`, in its order; counts are ``int`` (bytes, milliseconds, rows), ``None`` where
    the resource does not report them. ``estimated_bytes`` is the dry-run estimate taken before submission,
    if any. ``total_rows``, ``reused_from_attempt``, ``principal`` and ``quota_project`` are ``None`` here (the
    caller knows them)."""
    stats = resource.get("statistics") or {}
    query = stats.get("query") or {}
    load, extract, copy = (stats.get(k) or {} for k in ("load", "extract", "copy"))
    ref = resource.get("jobReference") or {}
    file_counts = [_int(n) for n in extract.get("destinationUriFileCounts") or []]
    return {
        "job_id": ref.get("jobId"),
        "location": ref.get("location"),
        "state": (resource.get("status") or {}).get("state"),
        "statement_type": query.get("statementType"),
        "total_bytes_processed": _int(query.get("totalBytesProcessed") or stats.get("totalBytesProcessed")),
        "total_bytes_billed": _int(query.get("totalBytesBilled")),
        "total_slot_ms": _int(query.get("totalSlotMs") or stats.get("totalSlotMs")),
        "cache_hit": query.get("cacheHit") if isinstance(query.get("cacheHit"), bool) else None,
        "num_dml_affected_rows": _int(query.get("numDmlAffectedRows")),
        "estimated_bytes_processed": estimated_bytes,
        "destination": table_name(destination_of(resource)),
        "total_rows": None,
        "reused_from_attempt": None,
        "job_type": _job_type(resource.get("configuration") or {}),
        "input_files": _int(load.get("inputFiles")),
        "input_bytes": _int(load.get("inputFileBytes") or extract.get("inputBytes")),
        "output_rows": _int(load.get("outputRows") or copy.get("copiedRows")),
        "output_bytes": _int(load.get("outputBytes") or copy.get("copiedLogicalBytes")),
        "bad_records": _int(load.get("badRecords")),
        "output_files": sum(n for n in file_counts if n is not None) if file_counts else None,
        "execution_project": ref.get("projectId"),
        "reservation": (resource.get("configuration") or {}).get("reservation"),
        "principal": None,
        "quota_project": None,
    }


#: The statistics of load, extract and copy jobs, in the order log lines and metrics show them.
_TRANSFER_KEYS = ("input_files", "input_bytes", "output_rows", "output_bytes", "bad_records", "output_files")


def job_log_lines(resource: dict[str, Any], estimated_bytes: int | None = None) -> list[str]:
    """Readable lines: state, statement type, a one-line cost summary, and every error with its location."""
    summary = job_summary(resource, estimated_bytes)
    status = resource.get("status") or {}
    lines = [f"job {summary['job_id'] or '?'} ({summary['location'] or 'default location'}): {status.get('state')}"]
    if summary["statement_type"] is not None:
        lines.append(f"statement type: {summary['statement_type']}")
    scanned = summary.get("total_bytes_processed")
    if scanned is not None:
        billed = summary.get("total_bytes_billed")
        slot_ms = summary.get("total_slot_ms")
        parts = [f"scanned {human_bytes(scanned)}"]
        if estimated_bytes is not None:
            parts[0] += f" (est. {human_bytes(estimated_bytes)})"
        if billed is not None:
            parts.append(f"billed {human_bytes(billed)}")
        if slot_ms is not None:
            parts.append(f"{slot_ms / 1000:.0f} slot-s")
        if summary["cache_hit"] is not None:
            parts.append("cache hit" if summary["cache_hit"] else "cache miss")
        lines.append(", ".join(parts))
    if summary["destination"] is not None:
        lines.append(f"results: {summary['destination']}")
    moved = [f"{summary[k]} {k.replace('_', ' ')}" for k in _TRANSFER_KEYS if summary[k] is not None]
    if moved:
        lines.append(f"{(summary['job_type'] or 'job').lower()}: " + ", ".join(moved))
    folder = extracted_folder(resource)
    if folder is not None:
        lines.append(f"files: {folder}/")
    if summary["reservation"] is not None:
        lines.append(f"reservation: {summary['reservation']} (project {summary['execution_project']})")
    error = status.get("errorResult")
    if error:
        lines.append("error: " + describe_error(error))
    for extra in status.get("errors") or []:
        if extra != error:
            lines.append("  " + describe_error(extra))
    return lines


def child_job_lines(children: list[dict[str, Any]]) -> list[str]:
    """One line per statement of a script (its child jobs, oldest first): statement type, state, error."""
    ordered = sorted(children, key=lambda c: _int((c.get("statistics") or {}).get("creationTime")) or 0)
    lines = []
    for number, child in enumerate(ordered, 1):
        stats = child.get("statistics") or {}
        status = child.get("status") or {}
        kind = (stats.get("query") or {}).get("statementType") or "statement"
        line = f"  statement {number}: {kind} {status.get('state') or '?'}"
        error = status.get("errorResult")
        if error:
            line += " - " + describe_error(error)
        lines.append(line)
    return lines


def job_metrics(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Metric name → data, for flyteidl ``ExecutionMetricResult``: the timeline and the statistics."""
    stats = resource.get("statistics") or {}
    created, started, ended = (_int(stats.get(k)) for k in ("creationTime", "startTime", "endTime"))
    timeline: dict[str, Any] = {}
    if created is not None:
        timeline["created_ms"] = created
    if started is not None:
        timeline["started_ms"] = started
        if created is not None:
            timeline["queued_ms"] = started - created
    if ended is not None:
        timeline["ended_ms"] = ended
        if started is not None:
            timeline["elapsed_ms"] = ended - started
    summary = job_summary(resource)
    statistics: dict[str, Any] = {
        k: summary[k]
        for k in (
            "total_bytes_processed",
            "total_bytes_billed",
            "total_slot_ms",
            "cache_hit",
            "num_dml_affected_rows",
            "estimated_bytes_processed",
            *_TRANSFER_KEYS,
        )
        if summary[k] is not None
    }
    query = stats.get("query") or {}
    plan = query.get("queryPlan") or []
    completed = sum(_int(stage.get("completedParallelInputs")) or 0 for stage in plan)
    if plan:
        statistics["completed_units"] = completed
        statistics["stages"] = len(plan)
    return {"BIGQUERY_JOB_TIMELINE": timeline, "BIGQUERY_JOB_STATISTICS": statistics}
