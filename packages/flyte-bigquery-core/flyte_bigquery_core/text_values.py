"""Settings' text → typed values: the parsers :mod:`.settings` builds its table from, and :func:`parse_size`.

Each parser takes the stripped, non-empty text of an environment variable and returns the value, or raises
``ValueError``; a :class:`Malformed` says what was wrong without quoting free text (it could be a credential
pasted into the wrong variable).
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Callable

from .identity import LabelCollisionError, sanitize_labels

__all__ = [
    "Malformed",
    "choice",
    "dataset",
    "flag",
    "host_port",
    "labels",
    "number",
    "parse_size",
    "present",
    "url",
    "verbatim",
    "whole",
]


class Malformed(ValueError):
    """A parser's explanation, added to the one-line message (never carries the raw value of a string)."""


_SIZE = re.compile(r"^\s*(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?\s*(?P<unit>[a-zA-Z]*)\s*$")
_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "pb": 10**15,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "pib": 2**50,
}
_WHOLE = re.compile(r"^[+-]?[0-9]+$")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_size(text: str) -> int:
    """``"10737418240"``, ``"10 GiB"``, ``"1.5 TiB"``, ``"500MB"`` → bytes, exactly (integer arithmetic, no
    float: ``"9007199254740993"`` stays 9007199254740993). Binary units are powers of 1024, SI of 1000; a
    fraction of a byte is dropped. Raises ``ValueError`` for anything else."""
    match = _SIZE.match(text)
    unit = match.group("unit").lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size")
    scale = _SIZE_UNITS[unit]
    fraction = match.group("fraction") or ""
    return int(match.group("whole")) * scale + int(fraction or "0") * scale // 10 ** len(fraction)


def whole(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not _WHOLE.match(text):
            raise ValueError(text)
        value = int(text)
        if value < minimum:
            raise Malformed(f"at least {minimum}")
        return value

    return parse


def number(minimum: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise Malformed("a finite number")
        if value < minimum:
            raise Malformed(f"at least {minimum:g}")
        return value

    return parse


def flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


def choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.upper() not in options:
            raise ValueError(text)
        return text.upper()

    return parse


def verbatim(text: str) -> str:
    return text


def present(text: str) -> bool:
    return True


def url(text: str) -> str:
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(text)
    return text


def host_port(text: str) -> str:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(text)
    return text


def dataset(text: str) -> str:
    parts = text.split(".")
    if len(parts) > 2 or not all(parts) or any(c.isspace() for c in text):
        raise ValueError(text)
    return text


def labels(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for position, item in enumerate(text.split(","), start=1):
        if not item.strip():
            continue  # "a=1," and "a=1,,b=2" are fine
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise Malformed(f"item {position} is not key=value")
        if key.strip() in pairs:
            raise Malformed(f"key {key.strip()!r} is given twice")
        pairs[key.strip()] = value.strip()
    try:
        return sanitize_labels(pairs)
    except LabelCollisionError as e:
        first, second = e.keys
        raise Malformed(f"keys {first!r} and {second!r} both become the BigQuery label {e.key!r}") from None
