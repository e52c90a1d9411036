"""Declared input types the type tests share (tests/core and the flytekit tests alike: this module imports
no Flyte SDK). Each test module keeps the dataclasses whose fields its expectations spell out."""

from __future__ import annotations

import dataclasses
import enum
from typing import NamedTuple, Optional


class Color(enum.Enum):
    """All str values: STRING."""

    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    """All int values: INT64."""

    LOW = 1
    HIGH = 3


class Mixed(enum.Enum):
    """str and int values: refused."""

    A = "a"
    B = 2


class Pair(NamedTuple):
    """A NamedTuple: refused (it would arrive as a pickle)."""

    a: int
    b: str


@dataclasses.dataclass
class Node:
    """A dataclass that contains itself: refused."""

    value: int
    child: Optional[Node] = None


@dataclasses.dataclass
class Empty:
    """A dataclass without fields: refused."""
