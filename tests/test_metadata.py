"""BigQueryMetadata encoding: compact, tolerant of upstream's, strict about garbage."""

import json

import pytest
from flyte_bigquery_core.errors import InvalidMetadataError

from flytekitplugins.bigquery.metadata import BigQueryMetadata


def test_round_trip_keeps_every_field() -> None:
    meta = BigQueryMetadata("job1", "proj", "EU", output_name="results", reused_from_attempt=0)
    assert BigQueryMetadata.decode(meta.encode()) == meta


def test_none_fields_are_omitted_from_the_encoding() -> None:
    assert json.loads(BigQueryMetadata("job1", "proj", "US").encode()) == {
        "job_id": "job1",
        "project": "proj",
        "location": "US",
    }


def test_upstream_metadata_with_null_location_decodes() -> None:
    meta = BigQueryMetadata.decode(b'{"job_id": "abc", "project": "p", "location": null}')
    assert (meta.job_id, meta.project, meta.location) == ("abc", "p", "")


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff\xfe", b"not json", b"[1, 2]", b'{"project": "p"}', b'{"job_id": "", "project": "p"}', b"{}"],
)
def test_garbage_is_refused_with_a_clear_error(data: bytes) -> None:
    with pytest.raises(InvalidMetadataError, match="resource_meta"):
        BigQueryMetadata.decode(data)


def test_unknown_keys_are_ignored() -> None:
    meta = BigQueryMetadata.decode(b'{"job_id": "a", "project": "p", "location": "US", "future": 1}')
    assert meta.job_id == "a"
