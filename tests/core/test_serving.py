"""settle_heap_once: freezes the heap the first time, and only the first time."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import gc
from flyte_bigquery_core.serving import settle_heap_once
assert gc.get_freeze_count() == 0, "frozen before the call"
settle_heap_once()
first = gc.get_freeze_count()
import sys
kept = [[i] for i in range(1000)]  # new tracked objects, after the freeze
settle_heap_once()
print(first, gc.get_freeze_count(), "google.cloud.bigquery" in sys.modules)
"""


def test_the_first_call_freezes_the_heap_and_loads_the_client_library() -> None:
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True).stdout.split()
    first, second, loaded = int(out[0]), int(out[1]), out[2]
    assert first > 10_000  # the interpreter and google-cloud-bigquery's objects
    assert loaded == "True"
    assert second == first  # the second call freezes nothing more
