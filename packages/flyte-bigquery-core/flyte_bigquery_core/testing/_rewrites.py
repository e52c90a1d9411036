"""Transforms for the fault proxy's ``rewrite`` action: answers the local BigQuery cannot give."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["dry_run_estimate", "partitions_summary"]


def dry_run_estimate(n_bytes: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A ``rewrite`` transform making a dry-run answer report ``n_bytes`` (the local BigQuery estimates every
    query at 0 bytes)."""

    def transform(job: dict[str, Any]) -> dict[str, Any]:
        if (job.get("configuration") or {}).get("dryRun"):
            stats = job.setdefault("statistics", {})
            stats["totalBytesProcessed"] = str(n_bytes)
            stats.setdefault("query", {})["totalBytesProcessed"] = str(n_bytes)
        return job

    return transform


def partitions_summary(*ids: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A ``rewrite`` transform answering ``tabledata.list`` of ``table$__PARTITIONS_SUMMARY__`` as BigQuery does,
    listing partitions ``ids`` (the local BigQuery has no meta-tables and answers 404; rewrite with status 200)."""

    def transform(body: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "bigquery#tableDataList", "totalRows": str(len(ids)), "rows": [{"f": [{"v": i}]} for i in ids]}

    return transform
