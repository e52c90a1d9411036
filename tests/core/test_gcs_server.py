"""The GCS stand-in's S3 listing, as DuckDB's gs:// reader parses it."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from flyte_bigquery_core.testing.gcs_server import LISTING_ROUTE, list_objects_xml

_NS = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}


def test_the_listing_names_every_object_with_its_size() -> None:
    objects = [{"name": "dir/a b.parquet", "size": "12", "md5Hash": "x"}, {"name": "dir/c.parquet", "size": "3"}]
    root = ET.fromstring(list_objects_xml("bkt", "dir/", objects, url_encoded=True))
    keys = [
        (c.findtext("s3:Key", namespaces=_NS), c.findtext("s3:Size", namespaces=_NS))
        for c in root.findall("s3:Contents", _NS)
    ]
    assert keys == [("dir/a%20b.parquet", "12"), ("dir/c.parquet", "3")]
    assert root.findtext("s3:IsTruncated", namespaces=_NS) == "false"


def test_the_route_is_a_bucket_with_a_trailing_slash_only() -> None:
    assert re.match(LISTING_ROUTE, "/bkt/")
    assert not re.match(LISTING_ROUTE, "/bkt/dir/x.parquet") and not re.match(LISTING_ROUTE, "/b")
