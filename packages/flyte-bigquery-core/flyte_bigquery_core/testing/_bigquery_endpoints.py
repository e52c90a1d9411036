"""Names of BigQuery REST endpoints (``jobs.insert``...) by method and path, for counters and readable rules."""

from __future__ import annotations

import re

__all__ = ["endpoint_of"]

# BigQuery REST endpoints by (method, path regex): names for counters and for readable rules.
_ENDPOINTS = (
    ("POST", re.compile(r"/projects/[^/]+/jobs/[^/]+/cancel$"), "jobs.cancel"),
    ("POST", re.compile(r"/projects/[^/]+/jobs$"), "jobs.insert"),
    ("GET", re.compile(r"/projects/[^/]+/jobs/[^/]+$"), "jobs.get"),
    ("GET", re.compile(r"/projects/[^/]+/jobs$"), "jobs.list"),
    ("GET", re.compile(r"/projects/[^/]+/queries/[^/]+$"), "jobs.getQueryResults"),
    ("POST", re.compile(r"/projects/[^/]+/queries$"), "jobs.query"),
    ("GET", re.compile(r"/tables/[^/]+/data$"), "tabledata.list"),
    ("GET", re.compile(r"/tables/[^/]+$"), "tables.get"),
)


def endpoint_of(method: str, path: str) -> str:
    """The BigQuery API method a request calls (``jobs.insert``...), or ``METHOD path`` when unknown."""
    for want, pattern, name in _ENDPOINTS:
        if method == want and pattern.search(path):
            return name
    return f"{method} {path}"
