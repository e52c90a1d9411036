"""Import cost of the plugin module: ``python -c "import flytekitplugins.bigquery"`` in each side's venv.

Each run is a fresh interpreter (wall time of the whole process, its CPU time, user + system, and its peak RSS,
``VmHWM``, at exit); the variants alternate run by run and each figure is the median. CPU time is the steadier
figure on a shared machine, where wall time also counts waiting for a core. Variants:

* ``ours``: this checkout in ``.venv`` (the dev venv, which has pandas, pyarrow and polars; the plugin imports
  none of them, nor google-cloud-bigquery, until they are used);
* ``ours-no-polars``: the same with polars made unimportable, as after ``pip install flytekitplugins-bigquery``
  without the ``[polars]`` extra;
* ``upstream``: ``.venv-peer``, which has pandas and pyarrow like ours (google-cloud-bigquery imports its
  pandas/Arrow helpers eagerly whenever they are installed, so this is the like-for-like figure);
* ``upstream-bare``: the same interpreter with pandas and pyarrow made unimportable, i.e. what importing
  costs in a venv holding only upstream's declared dependencies.

A run counts only if the import succeeded and loaded the side's plugin (checked by its ``__file__``: ours
from this checkout, upstream from the peer's site-packages).

    python -m benchmarks.import_bench [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import time
from typing import Any

from benchmarks.peer import OURS, PEER_VENV, UPSTREAM, clean_env, python_for
from benchmarks.service_bench import ROOT

MODULE = "flytekitplugins.bigquery"
#: variant -> (side, code run before the import)
VARIANTS = {
    "ours": (OURS, ""),
    "ours-no-polars": (OURS, "import sys; sys.modules['polars'] = None; "),
    "upstream": (UPSTREAM, ""),
    "upstream-bare": (UPSTREAM, "import sys; sys.modules.update(pandas=None, pyarrow=None); "),
}


#: Printed by the child after the import: its own peak RSS. (``ru_maxrss`` from wait4 would not do: it keeps
#: the peak of the image that ``exec`` replaced, i.e. of this larger parent.)
_REPORT = "; print(m.__file__); print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0])"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _one(variant: str) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak RSS MB, module file) of one fresh interpreter importing the plugin."""
    side, prelude = VARIANTS[variant]
    code = f"{prelude}import {MODULE} as m{_REPORT}"
    cpu_before = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(
        [python_for(side), "-c", code], env=clean_env(side), cwd="/", capture_output=True, text=True, timeout=120
    )
    wall = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before
    if proc.returncode != 0:
        raise RuntimeError(f"{variant}: `import {MODULE}` failed: {proc.stderr[-2000:]}")
    path, hwm_kib = proc.stdout.split()[-2:]
    return wall, cpu, int(hwm_kib) / 1024, path


def _check_origin(variant: str, path: str) -> None:
    side = VARIANTS[variant][0]
    expected = ROOT / "flytekitplugins" if side == OURS else PEER_VENV
    if not path.startswith(str(expected)):
        raise RuntimeError(f"{variant}: imported the wrong plugin: {path}")


def run(runs: int = 7, log: Any = print) -> dict[str, Any]:
    samples: dict[str, list[tuple[float, float, float]]] = {v: [] for v in VARIANTS}
    for variant in VARIANTS:  # one unmeasured run each: the first start after an install writes .pyc files
        _one(variant)
    order = list(VARIANTS)
    for i in range(runs):
        for variant in order if i % 2 == 0 else order[::-1]:
            wall, cpu, rss, path = _one(variant)
            _check_origin(variant, path)
            samples[variant].append((wall, cpu, rss))
    rows = []
    for variant, values in samples.items():
        rows.append(
            {
                "variant": variant,
                "side": VARIANTS[variant][0],
                "wall_s": statistics.median(v[0] for v in values),
                "cpu_s": statistics.median(v[1] for v in values),
                "peak_rss_mb": statistics.median(v[2] for v in values),
                "runs_wall_s": [round(v[0], 3) for v in values],
                "runs_cpu_s": [round(v[1], 3) for v in values],
            }
        )
        row = rows[-1]
        log(f"  import {variant:<14} {row['wall_s']:.3f} s wall  {row['cpu_s']:.3f} s CPU  {row['peak_rss_mb']:.0f} MB")
    return {"setup": "fresh interpreter per run, variants alternating, median of runs", "runs": runs, "results": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.runs), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
