"""The connector's own Prometheus metrics, as named recording functions the engine and the call layer use.

Every metric lives in prometheus-client's default registry, so whatever exposes that registry serves them:
``python -m flytekitplugins.bigquery.service --prometheus-port PORT`` and ``pyflyte serve connector``'s own
endpoint alike. Names start with ``flyte_bigquery_`` (flytekit's are ``flyte_connector_``, and flytekit and
flyte register some of the same names, so a shared name would fail at import). The README's "The connector
service" lists each metric, its type, labels and meaning.

Why prometheus-client is a hard dependency of the core, not an optional import: it is small and pure Python
with no dependencies, so a recording function never needs an "is it installed?" branch, and the tests assert
the real samples in every venv (``.venv-core`` included).

Rules kept here:

* **Bounded labels only.** Label values are API method names, HTTP statuses, BigQuery error reasons
  (checked to be short identifiers), exception class names and Flyte phases: never a project, a job id, an
  input value or a token.
* **Cheap on the hot path.** Labelled children are looked up once and cached in plain dicts, so one
  recording is a dict lookup and an ``inc``/``observe`` (see the README for the measured cost).
* **Importing twice is harmless.** A module loaded a second time (``importlib.reload``, a second name on
  ``sys.path``) finds its metrics already registered and records into those instead of failing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from prometheus_client import REGISTRY, Counter, Histogram

__all__ = [
    "API_BUCKETS",
    "API_SECONDS",
    "BYTES_BILLED",
    "COST_REFUSALS",
    "JOBS",
    "JOB_RESULTS",
    "PHASES",
    "RETRIES",
    "api_call",
    "bytes_billed",
    "cost_guard_refused",
    "declare_phases",
    "job_submitted",
    "phase_returned",
    "retried",
    "retry_reason",
]

logger = logging.getLogger(__name__)

C = TypeVar("C", Counter, Histogram)

#: Seconds: BigQuery calls take tens of milliseconds to seconds; a try may last up to the 30 s request timeout.
API_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: How a submission got its job (the values of ``flyte_bigquery_job_submissions_total``'s ``result``).
JOB_RESULTS = ("created", "adopted", "reused")
#: A BigQuery error reason used as a label value must look like one (``rateLimitExceeded``), else the status.
_REASON = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,39}")


def _collector(kind: type[C], name: str, documentation: str, labelnames: Sequence[str] = (), **kw: Any) -> C:
    """``kind(name, ...)`` in the default registry, or the one registered already (a second import)."""
    try:
        return kind(name, documentation, labelnames, **kw)
    except ValueError:  # "Duplicated timeseries": registered by an earlier import of this module
        existing = getattr(REGISTRY, "_names_to_collectors", {}).get(name)
        if isinstance(existing, kind):
            return existing
        logger.warning("metric %s is registered by someone else; not exporting ours", name)
        return kind(name, documentation, labelnames, registry=None, **kw)


JOBS = _collector(
    Counter,
    "flyte_bigquery_job_submissions_total",
    "Submissions that got a BigQuery job: created by jobs.insert, adopted after a 409, reused from an earlier attempt",
    ["result"],
)
PHASES = _collector(Counter, "flyte_bigquery_phases_total", "Flyte phases returned by get", ["phase"])
API_SECONDS = _collector(
    Histogram,
    "flyte_bigquery_api_request_duration_seconds",
    "One HTTP try of a BigQuery API call, by method and HTTP status (or transport error class)",
    ["method", "status"],
    buckets=API_BUCKETS,
)
RETRIES = _collector(
    Counter,
    "flyte_bigquery_api_retries_total",
    "BigQuery API calls tried again, by method and reason (BigQuery's, else the HTTP status or error class)",
    ["method", "reason"],
)
COST_REFUSALS = _collector(
    Counter, "flyte_bigquery_cost_guard_refusals_total", "Queries refused because the dry run exceeded the byte limit"
)
BYTES_BILLED = _collector(
    Counter,
    "flyte_bigquery_bytes_billed_total",
    "statistics.query.totalBytesBilled of jobs observed finished by get (see the README for when a job counts)",
)

# Labelled children, cached: ``labels()`` takes a lock and builds a tuple on every call.
_jobs = {result: JOBS.labels(result) for result in JOB_RESULTS}
_phases: dict[str, Counter] = {}
_api: dict[tuple[str, int | str], Histogram] = {}


def job_submitted(result: str) -> None:
    """A submission got its job: ``created``, ``adopted`` (jobs.insert answered 409) or ``reused`` (an earlier
    attempt's)."""
    _jobs[result].inc()


def declare_phases(phases: Iterable[str]) -> None:
    """Export these phases at 0 before any is returned (a series that appears late hides its first rise)."""
    for phase in phases:
        _phase(phase)


def _phase(phase: str) -> Counter:
    child = _phases.get(phase)
    if child is None:
        child = _phases.setdefault(phase, PHASES.labels(phase))
    return child


def phase_returned(phase: str) -> None:
    """``get`` answered ``phase`` (Flyte's name: ``RUNNING``, ``SUCCEEDED``, ``FAILED``…)."""
    _phase(phase).inc()


def api_call(method: str, status: int | str, seconds: float) -> None:
    """One HTTP try of ``method`` (``jobs.get``…) ended with ``status`` (an HTTP status or an error class)."""
    key = (method, status)
    child = _api.get(key)
    if child is None:
        child = _api.setdefault(key, API_SECONDS.labels(method, str(status)))
    child.observe(seconds)


def retry_reason(exc: BaseException) -> str:
    """Why a call is tried again: BigQuery's first error reason, else the HTTP status, else the error class."""
    errors = getattr(exc, "errors", None) or ()
    first = errors[0] if errors else None
    reason = first.get("reason") if isinstance(first, dict) else None
    if isinstance(reason, str) and _REASON.fullmatch(reason):
        return reason
    code = getattr(exc, "code", None)
    return str(code) if isinstance(code, int) else exc.__class__.__name__


def retried(method: str, exc: BaseException) -> None:
    """``method`` failed with ``exc`` and is about to be tried again."""
    RETRIES.labels(method, retry_reason(exc)).inc()


def cost_guard_refused() -> None:
    """A query was refused before submission: its dry-run estimate is over the byte limit."""
    COST_REFUSALS.inc()


def bytes_billed(value: int | None) -> None:
    """Add a finished job's billed bytes (``None``: not reported, e.g. a cache hit or the local BigQuery)."""
    if value:
        BYTES_BILLED.inc(value)
