"""Test support for flytekitplugins-bigquery: an offline BigQuery emulator harness.

``from flyte_bigquery_core.testing import Emulator`` starts a throw-away ``local-bigquery`` server
(see :mod:`flyte_bigquery_core.testing.emulator`). Nothing here is imported by the plugin itself.

The names are resolved lazily so that ``python -m flyte_bigquery_core.testing.emulator`` does not
import the module twice (runpy warns when a package's ``__init__`` pre-imports the module it runs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flyte_bigquery_core.testing.emulator import (
        DEFAULT_PROJECT,
        DEMO_DATASET,
        DEMO_ROWS,
        DEMO_TABLE,
        Emulator,
        EmulatorError,
        GcsEmulator,
        find_binary,
    )

__all__ = [
    "DEFAULT_PROJECT",
    "DEMO_DATASET",
    "DEMO_ROWS",
    "DEMO_TABLE",
    "Emulator",
    "EmulatorError",
    "GcsEmulator",
    "find_binary",
]


def __getattr__(name: str) -> Any:
    """Import :mod:`.emulator` on first use of one of its public names."""
    if name in __all__:
        from flyte_bigquery_core.testing import emulator

        return getattr(emulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
