"""Become another program: lets :class:`~flytekitplugins.bigquery.testing.service_process.ServiceProcess`
(which runs ``python -m MODULE --host 127.0.0.1 --port 0 ARGS``) start a service with any command line.

    python -m benchmarks.exec_command --host 127.0.0.1 --port 0 -- /path/to/python launcher.py

replaces itself (``os.execve``: same pid, session and log, so stopping and measuring it reach the service) with
``/path/to/python launcher.py --host 127.0.0.1 --port 0``, run in ``/``. This process needs ``PYTHONPATH`` to
import this module; the program gets :data:`PYTHONPATH_ENV` instead (none when it is empty). With
:data:`NO_ARGS_ENV` set the ``--host``/``--port`` arguments are dropped (for ``pyflyte serve connector``, which
takes neither a host nor port 0; the caller puts a fixed port in the command itself).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

__all__ = ["NO_ARGS_ENV", "PYTHONPATH_ENV", "exec_env"]

#: The ``PYTHONPATH`` the program runs with (empty: none).
PYTHONPATH_ENV = "BENCH_EXEC_PYTHONPATH"
#: Set (to anything): run the program without the arguments before ``--``.
NO_ARGS_ENV = "BENCH_EXEC_NO_ARGS"
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def exec_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment that runs this module so that the program it becomes gets ``env``."""
    return {**env, "PYTHONPATH": _ROOT, PYTHONPATH_ENV: env.get("PYTHONPATH", "")}


def main(argv: list[str]) -> None:
    split = argv.index("--")
    env = dict(os.environ)
    command = argv[split + 1 :] + ([] if env.pop(NO_ARGS_ENV, "") else argv[:split])
    pythonpath = env.pop(PYTHONPATH_ENV, "")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    else:
        env.pop("PYTHONPATH", None)
    os.chdir("/")
    os.execve(command[0], command, env)


if __name__ == "__main__":
    main(sys.argv[1:])
