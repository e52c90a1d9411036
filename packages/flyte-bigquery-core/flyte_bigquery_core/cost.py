"""Cost guards: estimate before, refuse over a limit, and say what a query cost. Free of flytekit.

BigQuery bills on-demand queries by bytes scanned. A dry run (free, instant) tells how many bytes a
query would scan; with a limit configured we dry-run first and refuse an over-limit query before anything
is spent, and we also pass the limit on as ``maximum_bytes_billed`` so BigQuery enforces it server-side.
A configurable price per TiB turns bytes into an approximate cost in messages (on-demand list price
differs by region and contract, so there is no default price).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import InvalidTaskError, PermanentError, about_task
from .report import human_bytes
from .settings import ESTIMATE_ENV, MAXIMUM_BYTES_ENV, PRICE_PER_TIB_ENV, Settings, current_settings, parse_size

__all__ = [
    "ESTIMATE_ENV",
    "MAXIMUM_BYTES_ENV",
    "PRICE_PER_TIB_ENV",
    "CostLimitExceeded",
    "CostPolicy",
    "Estimate",
    "check_estimate",
    "cost_text",
    "estimate_from_job",
    "parse_bytes",
]

_TIB = 2**40


def parse_bytes(value: int | float | str, what: str = "byte limit") -> int:
    """``10737418240``, ``"10 GiB"``, ``"500MB"`` → bytes, exactly (no float detour for text: see
    :func:`~.settings.parse_size`). Binary units are powers of 1024, SI of 1000."""
    if isinstance(value, bool):
        raise InvalidTaskError(f"{what} must be a number of bytes or a size such as '10 GiB', not a bool")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise InvalidTaskError(f"{what} must be a finite number of bytes, not negative")
        return int(value)
    try:
        return parse_size(str(value))
    except ValueError:
        raise InvalidTaskError(
            f"{what} {value!r} is not a size; expected e.g. 10737418240, '10 GiB' or '500 MB'"
        ) from None


def cost_text(n_bytes: int, price_per_tib: float | None) -> str:
    """``'1.2 GiB'``, or ``'1.2 GiB (≈ $0.01)'`` when a price is configured."""
    text = human_bytes(n_bytes)
    if price_per_tib is not None:
        text += f" (≈ ${n_bytes / _TIB * price_per_tib:,.2f})"
    return text


@dataclass(frozen=True)
class CostPolicy:
    """Whether to dry-run first, the byte limit (if any) and the price used in messages."""

    estimate: bool = False
    maximum_bytes: int | None = None
    price_per_tib: float | None = None

    @property
    def dry_run_first(self) -> bool:
        return self.estimate or self.maximum_bytes is not None

    @classmethod
    def resolve(
        cls,
        task_estimate: Any,
        task_maximum: Any,
        config_maximum: int | None,
        task: str,
        settings: Settings | None = None,
    ) -> CostPolicy:
        """Task settings win over the connector's defaults (``settings``, else the process's
        :func:`~.settings.current_settings`); the smaller of the task's limit and the ``QueryJobConfig``'s
        ``maximum_bytes_billed`` is the one enforced."""
        defaults = settings if settings is not None else current_settings()
        estimate = bool(task_estimate) if task_estimate is not None else defaults.estimate
        if task_maximum not in (None, ""):
            with about_task(task):
                maximum: int | None = parse_bytes(task_maximum, "maximum bytes")
        else:
            maximum = defaults.maximum_bytes
        limits = [b for b in (config_maximum, maximum) if b is not None]
        maximum = min(limits) if limits else None
        return cls(estimate=estimate, maximum_bytes=maximum, price_per_tib=defaults.price_per_tib)


@dataclass(frozen=True)
class Estimate:
    """What a dry run says the query would do."""

    bytes_processed: int
    statement_type: str | None
    referenced_tables: tuple[str, ...]

    def to_info(self) -> dict[str, Any]:
        return {
            "estimated_bytes_processed": self.bytes_processed,
            "estimated_statement_type": self.statement_type,
            "referenced_tables": list(self.referenced_tables),
        }


def estimate_from_job(resource: dict[str, Any]) -> Estimate:
    """Read a dry-run job resource (``statistics.query``)."""
    stats = resource.get("statistics") or {}
    query = stats.get("query") or {}
    tables = tuple(
        f"{t.get('projectId')}.{t.get('datasetId')}.{t.get('tableId')}" for t in query.get("referencedTables") or []
    )
    raw = query.get("totalBytesProcessed") or stats.get("totalBytesProcessed") or 0
    return Estimate(int(raw), query.get("statementType"), tables)


class CostLimitExceeded(PermanentError):
    """The dry run's estimate is over the task's byte limit: nothing was submitted."""


def check_estimate(estimate: Estimate, policy: CostPolicy, task: str) -> None:
    """Refuse a query whose estimate exceeds the limit, showing estimate versus limit."""
    limit = policy.maximum_bytes
    if limit is not None and estimate.bytes_processed > limit:
        raise CostLimitExceeded(
            f"the query would process {cost_text(estimate.bytes_processed, policy.price_per_tib)}, "
            f"over the limit of {cost_text(limit, policy.price_per_tib)}; nothing was run. Narrow the query "
            "(select fewer columns, filter on partitions) or raise the limit",
            task=task,
        )
