"""Where the ``local-bigquery`` executable is: :func:`find_binary`."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from flyte_bigquery_core.testing._emulator_env import ENV_BINARY
from flyte_bigquery_core.testing._emulator_errors import EmulatorError

__all__ = ["find_binary"]


def find_binary(explicit: str | None = None) -> str:
    """Locate the ``local-bigquery`` executable.

    Order: ``explicit`` (a path or a name on PATH), ``$LOCAL_BIGQUERY_BIN``, ``.venv-emulator`` next to
    the running virtualenv (``make emulator-venv`` puts it there), then ``local-bigquery`` on PATH. An
    explicit choice that does not work is an error rather than a silent fallback, so a typo cannot make
    the tests run against a different emulator than intended.
    """
    chosen, origin = (explicit, "binary argument") if explicit else (os.environ.get(ENV_BINARY), f"${ENV_BINARY}")
    if chosen:
        resolved = shutil.which(chosen)
        if resolved is None:
            problem = "does not exist" if not os.path.exists(chosen) else "is not an executable file"
            raise EmulatorError(
                f"local-bigquery binary {chosen!r} (from {origin}) {problem}; run `make emulator-venv` "
                f"or point {ENV_BINARY} at .venv-emulator/bin/local-bigquery"
            )
        return resolved
    sibling = Path(sys.prefix).parent / ".venv-emulator" / "bin" / "local-bigquery"
    if os.access(sibling, os.X_OK):
        return str(sibling)
    on_path = shutil.which("local-bigquery")
    if on_path:
        return on_path
    raise EmulatorError(
        f"cannot find the local-bigquery emulator: not at {sibling}, not on PATH and {ENV_BINARY} is unset; "
        "run `make emulator-venv` (it needs Python >= 3.13) or set "
        f"{ENV_BINARY}=/path/to/.venv-emulator/bin/local-bigquery"
    )
