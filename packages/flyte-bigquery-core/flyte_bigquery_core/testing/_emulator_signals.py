"""Teardown on SIGTERM/SIGHUP: the live emulators, and the handlers that stop them before the process dies."""

from __future__ import annotations

import os
import signal
import threading
import weakref
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flyte_bigquery_core.testing._emulator_process import Emulator

# Every started, not yet stopped emulator; the signal handler stops them before the process dies.
_LIVE: weakref.WeakSet[Emulator] = weakref.WeakSet()
_HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _stop_all_and_redeliver(signum: int, frame: FrameType | None) -> None:
    """Stop every live emulator, then die of the same signal as we would have without the handler."""
    for emulator in list(_LIVE):
        emulator.stop()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_signal_handlers() -> None:
    """Make SIGTERM/SIGHUP stop the emulators first (the default action skips ``atexit``).

    Only signals still at their default disposition are touched, and only from the main thread (Python
    allows nothing else), so an application's own handlers always win.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in _HANDLED_SIGNALS:
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _stop_all_and_redeliver)
