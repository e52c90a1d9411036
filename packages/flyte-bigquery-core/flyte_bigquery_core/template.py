"""Flyte-style ``{{ .inputs.name }}`` placeholders in a query template, rendered before submission.

Rendering pastes text into SQL, so it is for identifiers (a table, dataset or column name), never values:
values belong in ``@name`` query parameters, which BigQuery keeps apart from the statement. A rendered value
must therefore be an identifier path (GoogleSQL's rules, below); anything else is refused before submission,
naming the input (never quoting the value, which may be secret). A task opts named inputs, or all, into raw
SQL fragments with ``BigQueryConfig.RawTemplateInputs``; their text is pasted as it is. The same function
runs for local ``pyflyte run`` and in the connector service, so both submit the same SQL. Line breaks and
comments are left exactly as written.

An identifier path is one or more parts joined by ``.``; a part is an unquoted identifier (ASCII letters,
digits and ``_``, not starting with a digit, not a reserved keyword) or a backtick-quoted one (any
characters but backticks, backslashes and control characters), e.g. ``dataset.table``,
```my-project`.dataset.table`` or ```my-project.dataset.table```. A placeholder written inside the
template's own backticks (```{{ .inputs.project }}.dataset.table```) takes a part's text without the quotes:
letters, digits, ``_``, ``-``, ``.`` and ``:`` (as in ``example.com:my-project``).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Collection, Mapping
from typing import Any

from .errors import InvalidTaskError

__all__ = ["PLACEHOLDER", "is_identifier_path", "render_query"]

#: ``{{ .inputs.name }}`` (Flyte's Go-template form, spacing and case of ``inputs`` as Flyte accepts).
PLACEHOLDER = re.compile(r"\{\{\s*\.(?P<scope>[A-Za-z]+)\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ANY_BRACES = re.compile(r"\{\{.*?\}\}", re.DOTALL)

_UNQUOTED = r"[A-Za-z_][A-Za-z0-9_]*"
_QUOTED = r"`[^`\\\x00-\x1f\x7f]+`"
_PART = re.compile(rf"(?:{_UNQUOTED}|{_QUOTED})")
_PATH = re.compile(rf"{_PART.pattern}(?:\.{_PART.pattern})*")
#: What may stand inside backticks the template itself wrote: a part's text, or several joined by dots.
_INSIDE_BACKTICKS = re.compile(r"[\w.:-]+")

#: GoogleSQL's reserved keywords, which an unquoted identifier cannot be
#: (https://cloud.google.com/bigquery/docs/reference/standard-sql/lexical#reserved_keywords).
RESERVED_KEYWORDS = frozenset(
    """
    ALL AND ANY ARRAY AS ASC ASSERT_ROWS_MODIFIED AT BETWEEN BY CASE CAST COLLATE CONTAINS CREATE CROSS CUBE
    CURRENT DEFAULT DEFINE DESC DISTINCT ELSE END ENUM ESCAPE EXCEPT EXCLUDE EXISTS EXTRACT FALSE FETCH
    FOLLOWING FOR FROM FULL GROUP GROUPING GROUPS HASH HAVING IF IGNORE IN INNER INTERSECT INTERVAL INTO IS
    JOIN LATERAL LEFT LIKE LIMIT LOOKUP MERGE NATURAL NEW NO NOT NULL NULLS OF ON OR ORDER OUTER OVER
    PARTITION PRECEDING PROTO QUALIFY RANGE RECURSIVE RESPECT RIGHT ROLLUP ROWS SELECT SET SOME STRUCT
    TABLESAMPLE THEN TO TREAT TRUE UNBOUNDED UNION UNNEST USING WHEN WHERE WINDOW WITH WITHIN
    """.split()  # noqa: SIM905  (the documented list, as the documentation prints it)
)

#: Where a placeholder stands in the statement.
_CODE, _BACKTICKS = "code", "backticks"


def _text(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def is_identifier_path(text: str) -> bool:
    """Whether ``text`` is a GoogleSQL identifier path (see the module docstring): ``dataset.table`` and
    ```my-project`.dataset.table`` are; ``my-project.dataset.table`` (unquoted dash), ``t; DROP TABLE x``,
    ``select`` (a reserved keyword) and ``''`` are not."""
    if not _PATH.fullmatch(text):
        return False
    return not any(part.upper() in RESERVED_KEYWORDS for part in _PART.findall(text) if not part.startswith("`"))


def _contexts(template: str) -> dict[int, str]:
    """The context of each offset where ``{{`` starts: inside the template's backticks, or anywhere else.

    A small GoogleSQL lexer: ``--``/``#``/``/* */`` comments and ``'``/``"``/triple-quoted string literals
    (backslash escapes skipped) are stepped over, so a backtick inside them opens nothing.
    """
    out: dict[int, str] = {}
    i, n = 0, len(template)
    while i < n:
        c = template[i]
        if template.startswith("{{", i):
            out[i] = _CODE
            i += 2
        elif c == "#" or template.startswith("--", i):
            end = template.find("\n", i)
            for start in _braces(template, i, n if end < 0 else end):
                out[start] = _CODE  # nothing rendered can contain a line break, so a comment stays one
            i = n if end < 0 else end
        elif template.startswith("/*", i):
            end = template.find("*/", i + 2)
            stop = n if end < 0 else end + 2
            for start in _braces(template, i, stop):
                out[start] = _CODE
            i = stop
        elif c in "'\"`":
            quote = template[i : i + 3] if c != "`" and template.startswith(c * 3, i) else c
            j = i + len(quote)
            while j < n and not template.startswith(quote, j):
                j += 2 if template[j] == "\\" else 1
            for start in _braces(template, i, j):
                out[start] = _BACKTICKS if c == "`" else _CODE
            i = j + len(quote)
        else:
            i += 1
    return out


def _braces(template: str, start: int, stop: int) -> list[int]:
    """Offsets of every ``{{`` in ``template[start:stop]``."""
    found, i = [], template.find("{{", start, stop)
    while i >= 0:
        found.append(i)
        i = template.find("{{", i + 2, stop)
    return found


def render_query(template: str, inputs: Mapping[str, Any], task: str, raw_inputs: bool | Collection[str] = ()) -> str:
    """Replace each ``{{ .inputs.name }}`` with the input's text and return the statement.

    ``raw_inputs`` (``BigQueryConfig.RawTemplateInputs``): input names whose text is pasted as raw SQL, or
    ``True`` for all; every other rendered value must be an identifier path (module docstring). Raises
    :class:`InvalidTaskError` for a value that is not, naming the input and pointing to ``@name`` parameters;
    for an unknown name or a malformed placeholder, naming the placeholder and the declared inputs.
    """
    if "{{" not in template:
        return template
    for candidate in _ANY_BRACES.finditer(template):
        if not PLACEHOLDER.fullmatch(candidate.group(0)):
            raise InvalidTaskError(
                f"malformed placeholder {candidate.group(0)[:60]!r}; expected {{{{ .inputs.<name> }}}}", task=task
            )
    contexts = _contexts(template)

    def replace(match: re.Match[str]) -> str:
        scope, name = match.group("scope"), match.group("name")
        if scope.lower() != "inputs":
            raise InvalidTaskError(
                f"placeholder {match.group(0)!r} is not supported; only {{{{ .inputs.<name> }}}}", task=task
            )
        if name not in inputs:
            declared = ", ".join(sorted(inputs)) or "none"
            raise InvalidTaskError(
                f"placeholder {match.group(0)!r} names no input; declared inputs: {declared}", task=task
            )
        text = _text(inputs[name])
        if raw_inputs is True or (not isinstance(raw_inputs, bool) and name in raw_inputs):
            return text
        inside = contexts.get(match.start()) == _BACKTICKS
        if _INSIDE_BACKTICKS.fullmatch(text) if inside else is_identifier_path(text):
            return text
        where = (
            "inside backticks, a name part (letters, digits, _ - . :)"
            if inside
            else "an identifier path such as dataset.table or `my-project`.dataset.table"
        )
        raise InvalidTaskError(
            f"input {name!r} rendered by {match.group(0)} is not {where}. Placeholders paste text into the "
            f"statement, so they take names only: pass a table or dataset name that is one, and a value as a "
            f"query parameter (write @{name} instead); or list {name!r} in BigQueryConfig.RawTemplateInputs to "
            "paste it as raw SQL",
            task=task,
        )

    return PLACEHOLDER.sub(replace, template)
