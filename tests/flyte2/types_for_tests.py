"""Types the Flyte 2 tests declare inputs with (module level, so Flyte's type engine and dataclass transport
can find them)."""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass


class Color(str, enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 9


@dataclass
class Window:
    label: str
    start: datetime.date
    seen: datetime.datetime
