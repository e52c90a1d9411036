"""Whether a query's result is ordered, and how a reader learns it from the result table.

Why: BigQuery's Storage Read API keeps no row order across the streams of one read session, so a result whose
outermost statement ends in ``ORDER BY`` must be read through one stream (google-cloud-bigquery does the same
for such query results). The connector sees the statement; a reader in another task sees only the table. So the
planner labels the managed results table of an ordered query with :data:`ORDERED_LABEL` (through the job's
``destinationTableProperties``, applied when the job creates the table) and the reader, which looks the table up
anyway, asks for one stream when it finds the label.

:func:`orders_result` reads the SQL with a small tokenizer: comments, string and bytes literals (raw and
triple-quoted too) and backtick-quoted names are skipped, and only an ``ORDER BY`` at parenthesis depth 0 of
the last statement of a script counts, so a window's ``OVER (ORDER BY …)``, an ``ARRAY_AGG(x ORDER BY y)`` or
a subquery's ``ORDER BY`` do not; a ``LIMIT``/``OFFSET`` after it keeps the result ordered. A statement that is
not a query (DDL, DML, ``EXPORT DATA``…) writes no ordered result.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from itertools import pairwise

__all__ = ["ORDERED_LABEL", "is_ordered", "orders_result"]

#: The label a result table carries when its rows are in a meaningful order.
ORDERED_LABEL = "flyte_ordered"

# Skipped: comments and quoted text (longest quotes first). Kept: words, and the punctuation that matters.
_TOKEN = re.compile(
    r"""
    (?P<skip>
        --[^\n]*|\#[^\n]*|/\*.*?(?:\*/|\Z)
      | '''.*?(?:'''|\Z)|\"\"\".*?(?:\"\"\"|\Z)
      | '(?:\\.|[^'\\])*(?:'|\Z)|"(?:\\.|[^"\\])*(?:"|\Z)
      | `(?:\\.|[^`\\])*(?:`|\Z)
      | \s+
    )
    | (?P<word>[A-Za-z_][A-Za-z_0-9]*)
    | (?P<punct>[();])
    | (?P<other>.)
    """,
    re.DOTALL | re.VERBOSE,
)
_QUERY_STARTS = frozenset({"SELECT", "WITH", "FROM", "("})


def _tokens(sql: str) -> Iterator[str]:
    """Upper-cased words and ``(``, ``)``, ``;``, other characters as themselves; nothing quoted or commented."""
    for match in _TOKEN.finditer(sql):
        if match.lastgroup == "word":
            yield match.group().upper()
        elif match.lastgroup in ("punct", "other"):
            yield match.group()


def _last_statement(sql: str) -> list[tuple[int, str]]:
    """``(depth, token)`` of the last non-empty statement of a script."""
    statements: list[list[tuple[int, str]]] = [[]]
    depth = 0
    for token in _tokens(sql):
        if token == ";" and depth == 0:
            statements.append([])
            continue
        if token == ")":
            depth = max(0, depth - 1)
        statements[-1].append((depth, token))
        if token == "(":
            depth += 1
    return next((statement for statement in reversed(statements) if statement), [])


def orders_result(sql: str) -> bool:
    """Whether the outermost (last) statement of ``sql`` is a query ending in ``ORDER BY`` (``LIMIT`` after it
    allowed)."""
    statement = _last_statement(sql)
    if not statement or statement[0][1] not in _QUERY_STARTS:
        return False
    outer = [token for depth, token in statement if depth == 0]
    return any(pair == ("ORDER", "BY") for pair in pairwise(outer))


def is_ordered(labels: Mapping[str, str] | None) -> bool:
    """Whether a table's labels say its rows are ordered."""
    return (labels or {}).get(ORDERED_LABEL) == "true"
