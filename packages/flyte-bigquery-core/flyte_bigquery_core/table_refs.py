"""Table names as load, extract and copy tasks take them: ``project.dataset.table``, ``project:dataset.table``,
``dataset.table`` (in the task's project) or ``bq://project:dataset.table``, each optionally with a partition
decorator (``events$20240101``). Parsed in one place, before anything is submitted."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import InvalidTaskError
from .io.uri import PROTOCOL

__all__ = ["TableRef", "parse_table"]

_TABLE = re.compile(
    r"^(?:bq://)?"
    r"(?:(?P<project>(?:[a-z][a-z0-9.-]*[a-z0-9]:)?[A-Za-z0-9][A-Za-z0-9-]{0,62})[:.])?"
    r"(?P<dataset>\w{1,1024})\.(?P<table>[\w-]{1,1024})(?:\$(?P<decorator>\w+))?$"
)


@dataclass(frozen=True)
class TableRef:
    """A table, and the partition a job reads or writes when ``decorator`` is set (``20240101``)."""

    project: str
    dataset: str
    table: str
    decorator: str | None = None

    def to_api_repr(self) -> dict[str, str]:
        """REST ``TableReference``; the decorator stays in ``tableId`` (``events$20240101``), as BigQuery wants it."""
        table = f"{self.table}${self.decorator}" if self.decorator else self.table
        return {"projectId": self.project, "datasetId": self.dataset, "tableId": table}

    @property
    def uri(self) -> str:
        """``bq://project:dataset.table`` of the whole table (a partition is read through its table)."""
        return f"{PROTOCOL}://{self.project}:{self.dataset}.{self.table}"


def parse_table(text: Any, default_project: str, what: str) -> TableRef:
    """The table ``text`` names; ``what`` (``"LoadJob.destination"``) names the setting or input in the
    :class:`InvalidTaskError` raised for anything else."""
    match = _TABLE.match(text.strip()) if isinstance(text, str) else None
    if not match:
        # A setting is quoted back to whoever wrote it; an input's value never is.
        quotable = isinstance(text, str) and not what.startswith("input")
        shown = f"{text.strip()[:120]!r}" if quotable else f"a {type(text).__name__}"
        raise InvalidTaskError(
            f"{what} is {shown}, not a table; expected 'dataset.table', 'project.dataset.table' or "
            "bq://project:dataset.table, optionally with a partition decorator such as 'events$20240101'"
        )
    return TableRef(match["project"] or default_project, match["dataset"], match["table"], match["decorator"])
