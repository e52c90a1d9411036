"""JobHandle encoding, pinned byte for byte: running tasks must survive a rolling upgrade.

Flyte's backend keeps the encoded handle of every running task and hands it back to whichever release of the
connector answers next. So the bytes below are exactly what the release before the core split (flytekit's
``BigQueryMetadata``: compact JSON, fields in declaration order, ``None`` fields left out, ASCII-escaped) and
the upstream plugin ``flytekitplugins-bigquery`` 1.16.31 (``json.dumps(asdict(...))``, default separators,
``location`` possibly ``null``) wrote; each must decode to the handle beside it, and encoding that handle must
give the same bytes back. Change a byte here only together with a decoder that still reads the old one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

import pytest
from flyte_bigquery_core.errors import InvalidMetadataError
from flyte_bigquery_core.handle import JobHandle

JOB = "flyte-x-n0-a0-0123456789abcdef"
# The prefix every job-referencing encoding starts with (job_id, project, location come first, in that order).
HEAD = b'{"job_id":"flyte-x-n0-a0-0123456789abcdef","project":"local-project","location":"US"'


@dataclass(frozen=True)
class Pinned:
    id: str
    data: bytes
    handle: JobHandle


# What the previous release wrote, one row per optional field (and all of them together).
PREVIOUS_RELEASE = (
    Pinned("required-fields-only", HEAD + b"}", JobHandle(JOB, "local-project", "US")),
    Pinned(
        "output_name",
        HEAD + b',"output_name":"results"}',
        JobHandle(JOB, "local-project", "US", output_name="results"),
    ),
    Pinned(
        "error-permanent",
        b'{"job_id":"","project":"local-project","location":"","output_name":"results",'
        b"\"error\":\"task 'sql.q': input 'n' expected int\"}",
        JobHandle("", "local-project", "", output_name="results", error="task 'sql.q': input 'n' expected int"),
    ),
    Pinned(
        "error-retryable",
        b'{"job_id":"","project":"local-project","location":"","error":"BigQuery unavailable","retryable":true}',
        JobHandle("", "local-project", "", error="BigQuery unavailable", retryable=True),
    ),
    Pinned(
        "error-non-ascii-is-escaped",
        b'{"job_id":"","project":"","location":"","error":"caf\\u00e9 \\u2192 \\"x\\""}',
        JobHandle("", "", "", error='caf\u00e9 \u2192 "x"'),
    ),
    Pinned(
        "reused_from_attempt-zero",
        HEAD + b',"reused_from_attempt":0}',
        JobHandle(JOB, "local-project", "US", reused_from_attempt=0),
    ),
    Pinned(
        "dry_run",
        b'{"job_id":"","project":"local-project","location":"EU","output_name":"results",'
        b'"dry_run":{"state":"DONE","total_bytes_processed":1024,"cache_hit":false}}',
        JobHandle(
            "",
            "local-project",
            "EU",
            output_name="results",
            dry_run={"state": "DONE", "total_bytes_processed": 1024, "cache_hit": False},
        ),
    ),
    Pinned(
        "estimated_bytes",
        HEAD + b',"estimated_bytes":10485760}',
        JobHandle(JOB, "local-project", "US", estimated_bytes=10485760),
    ),
    Pinned(
        "deadline-float",
        HEAD + b',"deadline":1700000123.25}',
        JobHandle(JOB, "local-project", "US", deadline=1700000123.25),
    ),
    Pinned(
        "deadline-whole-float",
        HEAD + b',"deadline":1700000000.0}',
        JobHandle(JOB, "local-project", "US", deadline=1700000000.0),
    ),
    Pinned(
        "every-field-in-declaration-order",
        HEAD + b',"output_name":"results","error":"e","retryable":false,"reused_from_attempt":2,'
        b'"dry_run":{},"estimated_bytes":0,"deadline":1.5}',
        JobHandle(
            JOB,
            "local-project",
            "US",
            output_name="results",
            error="e",
            retryable=False,
            reused_from_attempt=2,
            dry_run={},
            estimated_bytes=0,
            deadline=1.5,
        ),
    ),
)

# What this release adds: ``destination`` (the result table BigQuery reported at create), after every earlier
# field, so each encoding above is unchanged. The previous release drops it on decode (it keeps known keys only).
THIS_RELEASE = (
    Pinned(
        "destination",
        HEAD + b',"output_name":"results","destination":"local-project:flyte_results.flyte-x-n0-a0-0123456789abcdef"}',
        JobHandle(JOB, "local-project", "US", output_name="results", destination=f"local-project:flyte_results.{JOB}"),
    ),
    Pinned(
        "destination-anonymous-domain-scoped",
        HEAD + b',"output_name":"results","deadline":1.5,"destination":"example.com:analytics:_a1b2c3.anon9f8e"}',
        JobHandle(
            JOB,
            "local-project",
            "US",
            output_name="results",
            deadline=1.5,
            destination="example.com:analytics:_a1b2c3.anon9f8e",
        ),
    ),
    Pinned(
        "output_prefix",
        HEAD + b',"output_prefix":"s3://bucket/metadata/n0/data/0"}',
        JobHandle(JOB, "local-project", "US", output_prefix="s3://bucket/metadata/n0/data/0"),
    ),
    Pinned(
        "row_result-typed-outputs",
        HEAD + b',"row_result":{"task":"wf.q","outputs":{"types":{"n":"INT64"},"nullable":[]}}}',
        JobHandle(
            JOB,
            "local-project",
            "US",
            row_result={"task": "wf.q", "outputs": {"types": {"n": "INT64"}, "nullable": []}},
        ),
    ),
    # Per-task identity and capacity: whom the calls run as, the reservation, a throttled job's insert body.
    Pinned(
        "caller-and-reservation",
        HEAD + b',"principal":"etl@p.iam.gserviceaccount.com","delegates":["hop@p.iam.gserviceaccount.com"],'
        b'"quota_project":"billing-q","reservation":"none"}',
        JobHandle(
            JOB,
            "local-project",
            "US",
            principal="etl@p.iam.gserviceaccount.com",
            delegates=["hop@p.iam.gserviceaccount.com"],
            quota_project="billing-q",
            reservation="none",
        ),
    ),
    Pinned(
        "pending_insert",
        HEAD + b',"pending_insert":{"jobReference":{"projectId":"local-project","jobId":"j"},'
        b'"configuration":{"query":{"query":"SELECT 1"}}}}',
        JobHandle(
            JOB,
            "local-project",
            "US",
            pending_insert={
                "jobReference": {"projectId": "local-project", "jobId": "j"},
                "configuration": {"query": {"query": "SELECT 1"}},
            },
        ),
    ),
)

# What the upstream plugin 1.16.31 wrote: its three fields, json.dumps's default separators.
UPSTREAM = (
    Pinned(
        "upstream",
        b'{"job_id": "3f1c2a9e-5b7d-4c1e-9a0b-8d6f4e2c1b0a", "project": "my-gcp-project", "location": "US"}',
        JobHandle("3f1c2a9e-5b7d-4c1e-9a0b-8d6f4e2c1b0a", "my-gcp-project", "US"),
    ),
    Pinned(
        "upstream-null-location",
        b'{"job_id": "3f1c2a9e-5b7d-4c1e-9a0b-8d6f4e2c1b0a", "project": "my-gcp-project", "location": null}',
        JobHandle("3f1c2a9e-5b7d-4c1e-9a0b-8d6f4e2c1b0a", "my-gcp-project", ""),
    ),
    Pinned(
        "upstream-domain-scoped-project",
        b'{"job_id": "job_1", "project": "example.com:analytics", "location": "europe-west2"}',
        JobHandle("job_1", "example.com:analytics", "europe-west2"),
    ),
)


def _ids(rows: tuple[Pinned, ...]) -> list[object]:
    return [pytest.param(row, id=row.id) for row in rows]


@pytest.mark.parametrize("row", _ids(PREVIOUS_RELEASE + THIS_RELEASE + UPSTREAM))
def test_earlier_encodings_decode_to_the_same_handle(row: Pinned) -> None:
    assert JobHandle.decode(row.data) == row.handle


@pytest.mark.parametrize("row", _ids(PREVIOUS_RELEASE + THIS_RELEASE))
def test_encoding_is_byte_for_byte_the_previous_releases(row: Pinned) -> None:
    assert row.handle.encode() == row.data


def test_the_pinned_table_covers_every_field() -> None:
    """A field added to JobHandle needs its own pinned row (and a decoder that accepts handles without it)."""
    rows = PREVIOUS_RELEASE + THIS_RELEASE
    pinned = {f.name for row in rows for f in fields(row.handle) if getattr(row.handle, f.name) is not None}
    assert pinned == {f.name for f in fields(JobHandle)}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            HEAD + b',"future_field":{"a":1}}', JobHandle(JOB, "local-project", "US"), id="unknown-key-ignored"
        ),
        pytest.param(b'{"job_id":"j","project":"p"}', JobHandle("j", "p", ""), id="missing-location-is-empty"),
        pytest.param(
            HEAD + b',"deadline":1700000000}',
            JobHandle(JOB, "local-project", "US", deadline=1700000000),
            id="int-deadline",
        ),
        pytest.param(
            HEAD + b',"output_name":null,"error":null}', JobHandle(JOB, "local-project", "US"), id="explicit-nulls"
        ),
        pytest.param(
            b'{"error":"refused"}', JobHandle("", "", "", error="refused"), id="error-without-a-job-reference"
        ),
        pytest.param(b'{"dry_run":{}}', JobHandle("", "", "", dry_run={}), id="dry-run-without-a-job-reference"),
    ],
)
def test_tolerated_variations_decode(data: bytes, expected: JobHandle) -> None:
    assert JobHandle.decode(data) == expected


# --- refused: never a bare JSONDecodeError/KeyError/TypeError ------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[1, 2]", id="json-list"),
        pytest.param(b'"flyte-x-n0-a0"', id="json-string"),
        pytest.param(b"null", id="json-null"),
        pytest.param(b"{}", id="empty-object"),
        pytest.param(b'{"project": "p"}', id="missing-job-id"),
        pytest.param(b'{"job_id": "j"}', id="missing-project"),
        pytest.param(b'{"job_id": "", "project": "p"}', id="empty-job-id"),
        pytest.param(b'{"job_id": null, "project": "p"}', id="null-job-id"),
        pytest.param(b'{"job_id": 5, "project": "p"}', id="numeric-job-id"),
        pytest.param(HEAD[: len(HEAD) // 2], id="truncated"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deeply-nested"),
    ],
)
def test_malformed_metadata_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidMetadataError, match="resource_meta"):
        JobHandle.decode(data)


def _with(field: str, value: object) -> bytes:
    """A valid job reference with one field replaced (or added)."""
    return json.dumps({"job_id": JOB, "project": "local-project", "location": "US", field: value}).encode()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("location", 5),
        ("output_name", []),
        ("error", {"a": 1}),
        ("retryable", "yes"),
        ("retryable", 1),
        ("reused_from_attempt", True),
        ("reused_from_attempt", 1.5),
        ("dry_run", []),
        ("estimated_bytes", "1024"),
        ("estimated_bytes", False),
        ("deadline", "soon"),
        ("deadline", True),
        ("destination", {"projectId": "p", "datasetId": "d", "tableId": "t"}),
    ],
)
def test_field_of_the_wrong_type_is_refused(field: str, value: object) -> None:
    with pytest.raises(InvalidMetadataError, match=f"field '{field}' has the wrong type"):
        JobHandle.decode(_with(field, value))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("job_id", "../../projects/other/jobs/x"),
        ("job_id", "a/b"),
        ("job_id", "job id"),
        ("job_id", "job?alt=media"),
        ("job_id", "x" * 1025),
        ("project", "p/jobs/x"),
        ("project", "p#frag"),
        ("project", "p%2F"),
    ],
)
def test_ids_unsafe_in_a_rest_path_are_refused(field: str, value: str) -> None:
    with pytest.raises(InvalidMetadataError, match=f"field '{field}' is not a BigQuery"):
        JobHandle.decode(_with(field, value))
