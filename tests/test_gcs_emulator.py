"""The GCS stand-in of the offline harness: loopback only, buckets, the S3 listing DuckDB's ``gs://`` reader
needs, and nothing left running after ``stop``. Needs no local BigQuery."""

from __future__ import annotations

import urllib.request

from flyte_bigquery_core.testing.sockets import is_loopback, listening_addresses

from flytekitplugins.bigquery.testing import GcsEmulator

from . import helpers as h


def _get(url: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        return bytes(response.read())


def _put(url: str, data: bytes) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    opener.open(urllib.request.Request(url, data=data, method="POST"), timeout=10).close()


def test_it_listens_on_loopback_only_and_stops_without_a_trace() -> None:
    with GcsEmulator() as gcs:
        pid = gcs.pid
        addresses = listening_addresses(pid)
        assert addresses and all(is_loopback(address) for address, _ in addresses)
        assert gcs.url == f"http://127.0.0.1:{gcs.port}"
    assert not h.group_pids(pid)
    assert gcs.returncode == 0  # SIGTERM is a clean stop


def test_objects_are_listed_the_way_duckdb_expands_a_wildcard() -> None:
    with GcsEmulator() as gcs:
        gcs.create_bucket("bkt")
        gcs.create_bucket("bkt")  # an existing bucket is fine
        for name in ("dir/a.parquet", "dir/b.parquet", "other/c.parquet"):
            _put(f"{gcs.url}/upload/storage/v1/b/bkt/o?uploadType=media&name={name}", b"1234")
        listing = _get(f"{gcs.url}/bkt/?encoding-type=url&list-type=2&prefix=dir%2F").decode()
        assert listing.count("<Key>") == 2 and "<Key>dir/a.parquet</Key>" in listing and "<Size>4</Size>" in listing
        assert _get(f"{gcs.url}/bkt/dir/b.parquet") == b"1234"


def test_clients_get_what_gcsfs_needs() -> None:
    with GcsEmulator() as gcs:
        env = gcs.env()
    assert env["STORAGE_EMULATOR_HOST"] == gcs.url
    assert env["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] == "false" and env["NO_GCE_CHECK"] == "true"
