"""When an SDK's ``bq://`` handlers get registered: for each dataframe library once it is really imported.

Both Flyte adapters register one encoder and one decoder per dataframe library (pandas, Arrow, polars), all
sharing one :class:`~.tables.BigQueryIO`, and must not import any library themselves: registering pandas'
handler would import pandas. :class:`HandlerRegistration` holds that bookkeeping; the adapter gives it the SDK's
``register(kind, io)`` and calls :meth:`~HandlerRegistration.register_imported` from the SDK's lazy handler
loader (three dictionary lookups when nothing new was imported).
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable, Mapping

from .frames import FrameKind, arrow_kind, pandas_kind, polars_kind
from .tables import BigQueryIO

__all__ = ["LIBRARIES", "HandlerRegistration", "imported", "installed_kinds"]

#: The dataframe libraries the ``bq`` handlers speak (by module name), and the kind for each.
LIBRARIES: dict[str, Callable[[], FrameKind]] = {"pandas": pandas_kind, "pyarrow": arrow_kind, "polars": polars_kind}


def imported(module: str) -> bool:
    """Whether ``module`` has really been imported: in ``sys.modules`` and not a lazy placeholder (flytekit's
    ``_LazyModule``, or any module type named lazy)."""
    found = sys.modules.get(module)
    return found is not None and "lazy" not in type(found).__name__.lower()


def installed_kinds() -> dict[str, FrameKind]:
    """The kind of every installed library, by module name (imports each; polars only with its extra)."""
    return {library: kind() for library, kind in LIBRARIES.items() if importlib.util.find_spec(library) is not None}


class HandlerRegistration:
    """One SDK's ``bq`` handlers: which libraries have them, and the :class:`BigQueryIO` they share.
    ``register(kind, io)`` puts the SDK's encoder and decoder for one kind in place (overriding the SDK's)."""

    def __init__(self, register: Callable[[FrameKind, BigQueryIO], None]) -> None:
        self._register = register
        self._registered: set[str] = set()
        self._io: BigQueryIO | None = None
        self._lock = threading.RLock()

    @property
    def io(self) -> BigQueryIO:
        """The :class:`BigQueryIO` the handlers share (made on first use)."""
        with self._lock:
            if self._io is None:
                self._io = BigQueryIO()
            return self._io

    def register_imported(self) -> None:
        """Register the handlers of each library imported since the last call."""
        if all(library in self._registered or not imported(library) for library in LIBRARIES):
            return
        with self._lock:
            for library, kind in LIBRARIES.items():
                if library not in self._registered and imported(library):
                    self._register(kind(), self.io)
                    self._registered.add(library)

    def register(self, kinds: Mapping[str, FrameKind], *, fresh_io: bool = False) -> BigQueryIO:
        """Register the handlers of these kinds (by module name, as :func:`installed_kinds` gives them) now,
        sharing a new :class:`BigQueryIO` when ``fresh_io``; returns the one they share."""
        with self._lock:
            if fresh_io:
                self._io = BigQueryIO()
            io = self.io
            for library, kind in kinds.items():
                self._register(kind, io)
                self._registered.add(library)
            return io
