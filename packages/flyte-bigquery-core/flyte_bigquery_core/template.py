"""Flyte-style ``{{ .inputs.name }}`` placeholders in a query template, rendered before submission.

Rendering pastes text into SQL, so it suits identifiers (a table or dataset name), never values: values
belong in ``@name`` query parameters, which BigQuery keeps apart from the statement. The same function runs
for local ``pyflyte run`` and in the connector service, so both submit the same SQL. Line breaks and
comments are left exactly as written.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any

from .errors import InvalidTaskError

__all__ = ["PLACEHOLDER", "render_query"]

#: ``{{ .inputs.name }}`` (Flyte's Go-template form, spacing and case of ``inputs`` as Flyte accepts).
PLACEHOLDER = re.compile(r"\{\{\s*\.(?P<scope>[A-Za-z]+)\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ANY_BRACES = re.compile(r"\{\{.*?\}\}", re.DOTALL)


def _text(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_query(template: str, inputs: Mapping[str, Any], task: str) -> str:
    """Replace each ``{{ .inputs.name }}`` with the input's text; unknown names and malformed placeholders
    are errors naming the placeholder and the declared inputs."""

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
        return _text(inputs[name])

    if "{{" not in template:
        return template
    for candidate in _ANY_BRACES.finditer(template):
        if not PLACEHOLDER.fullmatch(candidate.group(0)):
            raise InvalidTaskError(
                f"malformed placeholder {candidate.group(0)[:60]!r}; expected {{{{ .inputs.<name> }}}}", task=task
            )
    return PLACEHOLDER.sub(replace, template)
