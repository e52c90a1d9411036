"""Settle a long-lived serving process's heap once, so that garbage collection under load stays cheap.

A connector service imports flytekit (or flyte), grpc, google-cloud-bigquery and pyarrow: hundreds of
thousands of objects that live as long as the process. Python's cyclic collector re-scans all of them on each
full (generation 2) collection, which under load comes every few seconds and holds the event loop meanwhile.
:func:`gc.freeze` moves everything alive into a permanent generation that the collector skips.

Our launchers freeze before they serve. Under a server they do not start (``pyflyte serve connector``), the
adapter calls :func:`settle_heap_once` from its first served call; the adapter decides when it is being
served, this module only acts. No collection runs first, so no call waits: ``gc.freeze`` is a constant-time
list splice. Nothing is freed any later for it: objects are still released by reference counting, and only
cyclic garbage alive at that moment is kept, once.
"""

from __future__ import annotations

import gc
import importlib
import threading

__all__ = ["settle_heap_once"]

_settled = False
_lock = threading.Lock()


def settle_heap_once() -> None:
    """Import google-cloud-bigquery (the adapters load it lazily, and a service will use it) and freeze the
    heap, the first time this is called in the process; afterwards, nothing."""
    global _settled
    if _settled:
        return
    with _lock:
        if not _settled:
            importlib.import_module("google.cloud.bigquery")
            gc.freeze()
            _settled = True
