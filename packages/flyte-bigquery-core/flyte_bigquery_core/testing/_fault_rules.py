"""The fault proxy's script: the :data:`ACTIONS` it can take and the :class:`Rule` that says when."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ACTIONS", "Rule"]

#: ``status``: answer without forwarding; ``reset``: RST before forwarding; ``drop``: forward, then close
#: without answering; ``delay``: wait, then behave normally; ``truncate``: forward, send part of the body;
#: ``rewrite``: forward, then pass the JSON response through ``transform`` (a job BigQuery would report
#: differently than the emulator does, e.g. cancelled, or a dry run with a real byte estimate).
ACTIONS = ("status", "reset", "drop", "delay", "truncate", "rewrite")


@dataclass
class Rule:
    """Apply ``action`` to the next ``count`` requests matching ``method`` and ``path`` (a regex, searched).

    ``count=None`` applies to every match. ``status``/``retry_after`` configure the ``status`` action;
    ``seconds``/``after`` the ``delay`` action (``after``: forward first, then wait before answering);
    ``keep`` is how many body bytes ``truncate`` sends (default: half); ``transform`` is what ``rewrite``
    applies to the decoded JSON response body, and ``rewrite_status`` the status it answers with instead of the
    emulator's (to play an answer BigQuery gives and the emulator cannot, e.g. a meta-table it does not serve).
    ``reason``/``message`` set the BigQuery error the ``status`` action answers with (default: the usual
    reason for the status, e.g. ``backendError`` for 503), so a
    rejection BigQuery makes and the emulator does not (``invalid`` labels, say) can be played.
    """

    action: str
    method: str | None = None
    path: str = ""
    count: int | None = 1
    status: int = 503
    retry_after: float | None = None
    seconds: float = 0.0
    after: bool = False
    keep: int | None = None
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    rewrite_status: int | None = None
    reason: str | None = None
    message: str | None = None
    applied: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; expected one of {', '.join(ACTIONS)}")
        self._pattern = re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and bool(self._pattern.search(path))

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.applied >= self.count

    @property
    def kind(self) -> str:
        """The counter key of the fault: ``status:503``, ``reset``, ``drop``, ``delay``, ``truncate``."""
        return f"status:{self.status}" if self.action == "status" else self.action
