"""Running a stdlib HTTP server of a test harness on a thread, and stopping it (the fault proxy, the IAM stand-in)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from socketserver import BaseServer

__all__ = ["serve", "shut"]


def serve(server: BaseServer, name: str) -> threading.Thread:
    """Serve ``server`` on a daemon thread named ``name`` (polling for shutdown every 50 ms); return the thread."""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=name, daemon=True)
    thread.start()
    return thread


def shut(server: BaseServer | None, thread: threading.Thread | None, abort: Callable[[], None] | None = None) -> None:
    """Stop accepting, close the listening socket, run ``abort`` (e.g. to close open connections) and join the
    serving thread. ``server=None`` (never started, or stopped already) does nothing."""
    if server is None:
        return
    server.shutdown()
    server.server_close()
    if abort is not None:
        abort()
    if thread is not None:
        thread.join(timeout=5)
