"""Operator-supplied JSON documents in settings: inline (``{...}``/``[...]``) or the path of a file holding one.

The allow-list of principals (:mod:`.access_policy`) and the reservation defaults (:mod:`.reservations`) are
structured, so their variables hold JSON, either written in the variable itself or kept in a mounted file (a
Kubernetes ConfigMap, say). :func:`json_document` reads either, once, when the settings are read; anything
wrong is a :class:`~.text_values.Malformed` explaining what (never quoting the text), which
:class:`~.settings.Variable` turns into a :class:`~.errors.SettingsError` naming the variable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .text_values import Malformed

__all__ = ["json_document"]


def json_document(text: str) -> Any:
    """The JSON value of ``text`` (it starts with ``{`` or ``[``), else of the file ``text`` names.

    Raises :class:`Malformed` for unreadable files and invalid JSON, naming the line and column of the error.
    """
    stripped = text.strip()
    source = "the value"
    if not stripped.startswith(("{", "[")):
        path = Path(stripped).expanduser()
        try:
            stripped = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise Malformed(f"not inline JSON, and the file it names cannot be read: {type(e).__name__}") from None
        source = f"file {path}"
    try:
        return json.loads(stripped)
    except json.JSONDecodeError as e:
        raise Malformed(f"{source} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
