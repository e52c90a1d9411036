"""The command line ``python -m flyte_bigquery_core.testing.emulator run|serve`` (used by ``make demo``)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from types import FrameType

from flyte_bigquery_core.testing._emulator_env import DEFAULT_PROJECT
from flyte_bigquery_core.testing._emulator_errors import EmulatorError
from flyte_bigquery_core.testing._emulator_process import Emulator
from flyte_bigquery_core.testing._emulator_signals import _HANDLED_SIGNALS
from flyte_bigquery_core.testing._gcs_process import GcsEmulator

__all__ = ["main"]

_SEEDS = {"demo": Emulator.seed_demo}


# Exit codes of the wrapper itself, following env(1)/timeout(1): 125 = we failed, 126/127 = CMD could not run.
_EXIT_HARNESS_FAILED = 125
_EXIT_NOT_EXECUTABLE = 126
_EXIT_NOT_FOUND = 127


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flyte_bigquery_core.testing.emulator",
        description="Run the offline BigQuery emulator (local-bigquery) around a command.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("run", "start an emulator, run `-- CMD ARGS...` against it, stop it, exit with CMD's code"),
        ("serve", "start an emulator, print the export lines for a shell, run until interrupted"),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--project", default=DEFAULT_PROJECT, help=f"project id to serve (default {DEFAULT_PROJECT})")
        sub.add_argument("--seed", choices=sorted(_SEEDS), action="append", default=[], help="load a data set")
        sub.add_argument(
            "--gcs-bucket",
            action="append",
            default=[],
            metavar="NAME",
            help="also run a local GCS (gs:// for load/extract jobs and flytekit) with this bucket",
        )
        sub.add_argument("--startup-timeout", type=float, default=60.0, metavar="SECONDS")
    return parser


def _run_command(env: Mapping[str, str], command: Sequence[str]) -> int:
    """Run ``command`` in the foreground with the emulator's environment and return its exit code.

    Ctrl-C in a terminal reaches the command directly (same process group), so here SIGINT is swallowed
    and we simply wait for the command to finish; SIGTERM/SIGHUP sent to us are passed on to it. (A
    Python handler rather than SIG_IGN, because an ignored SIGINT would be inherited by the command.)
    """
    child: subprocess.Popen[bytes] | None = None
    pending: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        if child is None:
            pending.append(signum)
        else:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    def swallow(signum: int, frame: FrameType | None) -> None:
        pass

    previous = {signum: signal.signal(signum, forward) for signum in _HANDLED_SIGNALS}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, swallow)
    try:
        try:
            child = subprocess.Popen(list(command), env={**os.environ, **env})
        except FileNotFoundError:
            print(f"emulator run: command not found: {command[0]}", file=sys.stderr)
            return _EXIT_NOT_FOUND
        except PermissionError:
            print(f"emulator run: command not executable: {command[0]}", file=sys.stderr)
            return _EXIT_NOT_EXECUTABLE
        for signum in pending:
            child.send_signal(signum)
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code


def _serve(emulator: Emulator, env: Mapping[str, str]) -> int:
    for key, value in env.items():
        print(f"export {key}={value}")
    print(f"# local-bigquery pid {emulator.pid} serving project {emulator.project}; Ctrl-C to stop", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while emulator.running:
            time.sleep(0.5)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m flyte_bigquery_core.testing.emulator``; returns the exit code."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in args_in:
        split = args_in.index("--")
        args_in, command = args_in[:split], args_in[split + 1 :]
    parser = _parser()
    args = parser.parse_args(args_in)
    if args.command == "run" and not command:
        parser.error("run needs a command after `--`, e.g. `run --seed demo -- pyflyte run wf.py wf`")
    if args.command == "serve" and command:
        parser.error("serve takes no command")

    try:
        with contextlib.ExitStack() as stack:
            gcs = stack.enter_context(GcsEmulator()) if args.gcs_bucket else None
            for bucket in args.gcs_bucket:
                assert gcs is not None
                gcs.create_bucket(bucket)
            emulator = stack.enter_context(
                Emulator(
                    args.project,
                    startup_timeout=args.startup_timeout,
                    storage_emulator_host=gcs.url if gcs is not None else None,
                )
            )
            for seed in dict.fromkeys(args.seed):
                _SEEDS[seed](emulator)
            env = {**emulator.env(), **(gcs.env() if gcs is not None else {})}
            return _run_command(env, command) if args.command == "run" else _serve(emulator, env)
    except EmulatorError as error:
        print(f"emulator: {error}", file=sys.stderr)
        return _EXIT_HARNESS_FAILED
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
