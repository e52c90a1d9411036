"""``python -m flyte_bigquery_core.testing.gcs_server``: the GCS stand-in the offline harness runs.

It is ``gcp-storage-emulator`` (PyPI; pure Python, in-memory), the GCS JSON API that flytekit's ``gs://``
access (gcsfs) and the local BigQuery's extract jobs (media uploads) talk to, plus the one request it does not
answer: the S3-style object listing (``GET /<bucket>/?list-type=2&prefix=...``, XML) with which DuckDB — the
local BigQuery's engine — expands the wildcard of a load job's ``gs://bucket/dir/*``. Reads of single objects
(ranged ``GET /<bucket>/<object>``) it serves already.

Run with the project's interpreter (the package is a dev dependency); it binds ``--host`` (127.0.0.1) and
``--port`` (0: a free one) and prints ``gcs emulator listening on HOST:PORT`` once it serves; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

__all__ = ["LISTING_ROUTE", "list_objects_xml", "main"]

#: The S3 ``ListObjectsV2`` request DuckDB's ``gs://`` reader sends (path style, trailing slash).
LISTING_ROUTE = r"^/(?P<bucket_name>[-.\w]+)/$"
_S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"


def list_objects_xml(bucket: str, prefix: str, objects: list[dict[str, Any]], url_encoded: bool) -> bytes:
    """An S3 ``ListBucketResult`` for ``objects`` (GCS object resources: ``name``, ``size``, ``updated``,
    ``md5Hash``), keys URL-encoded when the request asked for ``encoding-type=url``."""

    def key(name: str) -> str:
        return quote(name, safe="/") if url_encoded else name

    contents = "".join(
        f"<Contents><Key>{escape(key(o['name']))}</Key><LastModified>{escape(str(o.get('updated', '')))}"
        f'</LastModified><ETag>"{escape(str(o.get("md5Hash", "")))}"</ETag><Size>{int(o.get("size", 0))}</Size>'
        "<StorageClass>STANDARD</StorageClass></Contents>"
        for o in objects
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{_S3_NAMESPACE}">'
        f"<Name>{escape(bucket)}</Name><Prefix>{escape(key(prefix))}</Prefix><KeyCount>{len(objects)}</KeyCount>"
        f"<MaxKeys>{max(len(objects), 1000)}</MaxKeys><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
    ).encode()


def _list_objects(request: Any, response: Any, storage: Any) -> None:
    from http import HTTPStatus

    from gcp_storage_emulator.exceptions import NotFound

    bucket = request.params["bucket_name"]
    prefix = (request.query.get("prefix") or [""])[0]
    try:
        objects, _ = storage.get_file_list(bucket, prefix or None)
    except NotFound:
        response.status = HTTPStatus.NOT_FOUND
        return
    url_encoded = (request.query.get("encoding-type") or [""])[0] == "url"
    response.write_file(list_objects_xml(bucket, prefix, objects, url_encoded), "application/xml")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flyte_bigquery_core.testing.gcs_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port, printed when serving")
    args = parser.parse_args(argv)
    from gcp_storage_emulator import server as gcs

    gcs.HANDLERS = (*gcs.HANDLERS, (LISTING_ROUTE, {gcs.GET: _list_objects}))
    server = gcs.create_server(args.host, args.port, in_memory=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    server.start()
    host, port = server._api._httpd.server_address[:2]  # the port bound (a free one for --port 0)
    print(f"gcs emulator listening on {host}:{port}", flush=True)
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
