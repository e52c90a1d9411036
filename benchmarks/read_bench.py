"""Read benchmark: our ``bq://`` decoders versus flytekit's built-in ones, against a local BigQuery.

    .venv/bin/python -m benchmarks.read_bench [--rows 10000 100000 1000000] [--repeats 3] [--rest]

Creates ``bench.rows_<n>`` tables of 10 columns (INT64, FLOAT64, STRING, BOOL, TIMESTAMP, DATE, NUMERIC) with
SQL in a fresh emulator, then reads each into pandas and Arrow once per fresh subprocess, so that every
measurement has its own peak RSS (``ru_maxrss`` of that child) and pays its own client start-up, as a task
would. The time is the ``decode`` call alone (imports excluded). The two implementations alternate run by
run and each figure is the median of ``--repeats`` runs (all runs are kept in the JSON): the emulator shares
the machine's CPUs with the reader, so single runs are noisy. Row counts are checked before anything is
reported. Prints a table with ratios and writes ``benchmarks/results/read.json``.

``--rest`` compares the REST fallback instead (reads without a Storage Read API): our ``bq://`` decoder with no
Storage endpoint (``tabledata.list`` ranges read in parallel) against google-cloud-bigquery's own
``list_rows(...).to_arrow(create_bqstorage_client=False)`` (implementation ``library``), into Arrow only.

Keep in mind what the emulator is: it serves one stream per 100,000 rows and sends each stream as a single
message, so its own work (a DuckDB query and an Arrow serialization per stream) sets a floor under every
read, and flytekit's per-message overhead is smaller than against real BigQuery's many small messages.

flytekit's handlers build ``bigquery_storage.BigQueryReadClient()`` from Application Default Credentials,
which cannot reach the emulator, so in *their* child process ``BigQueryReadClient`` is replaced by a factory
for a client on the emulator's gRPC channel (the benchmark may patch; the tests may not). Both paths talk
to the same server over the same kind of channel.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "read.json"
DATASET = "bench"
DEFAULT_ROWS = (10_000, 100_000, 1_000_000)
IMPLEMENTATIONS = ("ours", "flytekit")
REST_IMPLEMENTATIONS = ("ours-rest", "library")
FRAMES = ("pandas", "arrow")

# Ten columns of the kinds real result tables have; values vary so nothing compresses to nothing.
_SELECT = """
SELECT
  n AS id,
  MOD(n * 7919, 1000003) AS customer_id,
  n * 0.5 AS price,
  SQRT(n) AS score,
  CONCAT('customer-', CAST(MOD(n, 50000) AS STRING)) AS name,
  CONCAT('category-', CAST(MOD(n, 97) AS STRING)) AS category,
  MOD(n, 3) = 0 AS flag,
  TIMESTAMP_ADD(TIMESTAMP '2024-01-01 00:00:00+00', INTERVAL n SECOND) AS created_at,
  DATE_ADD(DATE '2020-01-01', INTERVAL MOD(n, 3650) DAY) AS day,
  CAST(MOD(n, 100000) AS NUMERIC) / 100 AS amount
FROM UNNEST(GENERATE_ARRAY(1, {rows})) AS n
"""


@dataclass(frozen=True)
class Measurement:
    rows: int
    frame: str
    impl: str
    seconds: float
    peak_rss_mb: float
    baseline_rss_mb: float
    rows_read: int
    runs_seconds: list[float]


# --- child process: one read ----------------------------------------------------------------------------


def _rss_mb() -> float:
    """Peak resident set size of this process so far, in MB.

    ``VmHWM`` (this memory image only), not ``ru_maxrss``: the latter keeps the peak of the image replaced by
    ``exec``, i.e. of the parent that forked this child, so a large parent would mask the child's own peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _patch_flytekit_storage_client(target: str) -> None:
    """Make flytekit's ``bigquery_storage.BigQueryReadClient()`` return a client on the emulator's channel."""
    import grpc
    from google.cloud import bigquery_storage
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

    real = bigquery_storage.BigQueryReadClient
    options = [("grpc.max_receive_message_length", -1)]

    def emulator_client(*args: Any, **kwargs: Any) -> Any:
        channel = grpc.insecure_channel(target, options=options)
        return real(transport=BigQueryReadGrpcTransport(channel=channel))

    bigquery_storage.BigQueryReadClient = emulator_client  # type: ignore[misc,assignment]


class _LibraryRest:
    """google-cloud-bigquery's own REST read, shaped like a decoder."""

    def decode(self, ctx: Any, literal: Any, metadata: Any) -> Any:
        from flyte_bigquery_core.io.uri import TableId
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        table = TableId.parse(literal.uri)
        client = bigquery.Client(project=table.project, credentials=AnonymousCredentials())
        return client.list_rows(table.reference).to_arrow(create_bqstorage_client=False)


def _decoder(impl: str, frame: str) -> Any:
    if impl == "library":
        return _LibraryRest()
    if impl == "ours-rest":
        os.environ.pop("FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST", None)  # no Storage API: REST
        impl = "ours"
    if impl == "ours":
        from flytekitplugins.bigquery.io import BigQueryIO, BigQueryToArrowDecoder, BigQueryToPandasDecoder

        ours = {"pandas": BigQueryToPandasDecoder, "arrow": BigQueryToArrowDecoder}[frame]
        return ours(BigQueryIO())
    from flytekit.types.structured.bigquery import BQToArrowDecodingHandler, BQToPandasDecodingHandler

    _patch_flytekit_storage_client(os.environ["FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST"])
    return {"pandas": BQToPandasDecodingHandler, "arrow": BQToArrowDecodingHandler}[frame]()


def child(impl: str, frame: str, uri: str) -> dict[str, Any]:
    """Read ``uri`` once with ``impl``'s decoder for ``frame``; report time, rows and memory."""
    import warnings

    from flytekit import FlyteContextManager
    from flytekit.models import literals
    from flytekit.models.types import StructuredDatasetType

    warnings.simplefilter("ignore")  # flytekit's path triggers google-cloud-bigquery's deprecation notices
    decoder = _decoder(impl, frame)
    metadata = literals.StructuredDatasetMetadata(StructuredDatasetType(format=""))
    literal = literals.StructuredDataset(uri=uri, metadata=metadata)
    ctx = FlyteContextManager.current_context()
    baseline = _rss_mb()
    start = time.perf_counter()
    result = decoder.decode(ctx, literal, metadata)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": len(result), "peak_rss_mb": _rss_mb(), "baseline_rss_mb": baseline}


# --- parent process: tables, runs, report -----------------------------------------------------------------


def _create_tables(emulator: Any, sizes: list[int]) -> dict[int, str]:
    client = emulator.client()
    try:
        client.create_dataset(DATASET, exists_ok=True)
        uris = {}
        for rows in sizes:
            table = f"rows_{rows}"
            client.query(f"CREATE OR REPLACE TABLE {DATASET}.{table} AS {_SELECT.format(rows=rows)}").result()
            count = next(iter(client.query(f"SELECT COUNT(*) FROM {DATASET}.{table}").result()))[0]
            if count != rows:
                raise SystemExit(f"{DATASET}.{table} has {count} rows, expected {rows}")
            uris[rows] = f"bq://{emulator.project}:{DATASET}.{table}"
        return uris
    finally:
        client.close()


def _run_child(env: dict[str, str], impl: str, frame: str, uri: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.read_bench", "--child", impl, frame, uri]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"{impl}/{frame} child failed:\n{proc.stderr[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _summarise(rows: int, frame: str, impl: str, uri: str, runs: list[dict[str, Any]]) -> Measurement:
    wrong = [run["rows"] for run in runs if run["rows"] != rows]
    if wrong:
        raise SystemExit(f"{impl}/{frame} read {wrong[0]} rows from {uri}, expected {rows}")
    return Measurement(
        rows=rows,
        frame=frame,
        impl=impl,
        seconds=statistics.median(run["seconds"] for run in runs),
        peak_rss_mb=statistics.median(run["peak_rss_mb"] for run in runs),
        baseline_rss_mb=statistics.median(run["baseline_rss_mb"] for run in runs),
        rows_read=rows,
        runs_seconds=[round(run["seconds"], 3) for run in runs],
    )


def _measure_pair(
    env: dict[str, str], rows: int, uri: str, frame: str, repeats: int, pair: tuple[str, str] = IMPLEMENTATIONS
) -> list[Measurement]:
    """Both implementations, alternating run by run, so a slow spell of the shared server hits both."""
    runs: dict[str, list[dict[str, Any]]] = {impl: [] for impl in pair}
    for _ in range(repeats):
        for impl in pair:
            runs[impl].append(_run_child(env, impl, frame, uri))
    return [_summarise(rows, frame, impl, uri, runs[impl]) for impl in pair]


def _ratios(results: list[Measurement], pair: tuple[str, str] = IMPLEMENTATIONS) -> list[dict[str, Any]]:
    """Per (rows, frame): their time / our time (speed-up) and our peak RSS / theirs."""
    by_key = {(m.rows, m.frame, m.impl): m for m in results}
    out = []
    for rows, frame in sorted({(m.rows, m.frame) for m in results}):
        ours, theirs = by_key[(rows, frame, pair[0])], by_key[(rows, frame, pair[1])]
        out.append(
            {
                "rows": rows,
                "frame": frame,
                "speedup": theirs.seconds / ours.seconds,
                "peak_rss_ratio": ours.peak_rss_mb / theirs.peak_rss_mb,
                "read_rss_ratio": (ours.peak_rss_mb - ours.baseline_rss_mb)
                / max(theirs.peak_rss_mb - theirs.baseline_rss_mb, 1e-9),
            }
        )
    return out


def _print_table(
    results: list[Measurement], ratios: list[dict[str, Any]], pair: tuple[str, str] = IMPLEMENTATIONS
) -> None:
    by_key = {(m.rows, m.frame, m.impl): m for m in results}
    header = (
        f"{'rows':>9} {'frame':<7} {'ours s':>8} {'their s':>10} {'speed-up':>9} "
        f"{'ours MB':>8} {'their MB':>11} {'RSS ratio':>9} {'read-RSS ratio':>14}"
    )
    print(f"ours = {pair[0]}, theirs = {pair[1]}")
    print(header)
    print("-" * len(header))
    for r in ratios:
        ours, theirs = by_key[(r["rows"], r["frame"], pair[0])], by_key[(r["rows"], r["frame"], pair[1])]
        print(
            f"{r['rows']:>9,} {r['frame']:<7} {ours.seconds:>8.3f} {theirs.seconds:>10.3f} {r['speedup']:>8.1f}x "
            f"{ours.peak_rss_mb:>8.0f} {theirs.peak_rss_mb:>11.0f} {r['peak_rss_ratio']:>9.2f} "
            f"{r['read_rss_ratio']:>14.2f}"
        )
    print("speed-up = their time / our time; RSS ratio = our peak RSS / theirs (lower is better);")
    print("read-RSS ratio = the same for the growth of peak RSS during the read (peak minus after-imports).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=list(DEFAULT_ROWS))
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per measurement (median)")
    parser.add_argument("--rest", action="store_true", help="our REST fallback vs the library's list_rows")
    parser.add_argument("--child", nargs=3, metavar=("IMPL", "FRAME", "URI"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0

    from flytekitplugins.bigquery.testing import Emulator

    with Emulator() as emulator:
        uris = _create_tables(emulator, args.rows)
        env = {**os.environ, **emulator.env(), "PYTHONPATH": str(ROOT)}
        results = []
        pair = REST_IMPLEMENTATIONS if args.rest else IMPLEMENTATIONS
        for rows, uri in uris.items():
            _run_child(env, "ours", "arrow", uri)  # warm the server's caches for this table
            for frame in ("arrow",) if args.rest else FRAMES:
                for measured in _measure_pair(env, rows, uri, frame, args.repeats, pair):
                    results.append(measured)
                    print(f"  {rows:,} rows {frame} {measured.impl}: {measured.runs_seconds} s", file=sys.stderr)
    ratios = _ratios(results, pair)
    _print_table(results, ratios, pair)
    output = RESULTS.with_name("read_rest.json") if args.rest else RESULTS
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps(
            {
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                },
                "repeats": args.repeats,
                "measurements": [asdict(m) for m in results],
                "ratios": ratios,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {output.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
