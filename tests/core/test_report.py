"""Custom info, log lines and metrics from documented job resource shapes."""

from typing import Any

import pytest
from flyte_bigquery_core.report import (
    CUSTOM_INFO_KEYS,
    child_job_lines,
    human_bytes,
    job_log_lines,
    job_metrics,
    job_summary,
)

_DONE = {
    "jobReference": {"projectId": "p", "jobId": "j1", "location": "US"},
    "status": {"state": "DONE"},
    "configuration": {"query": {"destinationTable": {"projectId": "p", "datasetId": "_r", "tableId": "t"}}},
    "statistics": {
        "creationTime": "1000",
        "startTime": "1500",
        "endTime": "4000",
        "totalBytesProcessed": "1288490188",
        "query": {
            "statementType": "SELECT",
            "totalBytesProcessed": "1288490188",
            "totalBytesBilled": "1288490188",
            "totalSlotMs": "412000",
            "cacheHit": False,
            "queryPlan": [{"completedParallelInputs": "3"}, {"completedParallelInputs": "2"}],
        },
    },
}


def test_human_bytes_uses_binary_units() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(1288490188) == "1.2 GiB"


# Every key of custom_info, in order; a dashboard or parser may rely on each being present.
_ALL_KEYS = [
    "job_id",
    "location",
    "state",
    "statement_type",
    "total_bytes_processed",
    "total_bytes_billed",
    "total_slot_ms",
    "cache_hit",
    "num_dml_affected_rows",
    "estimated_bytes_processed",
    "destination",
    "total_rows",
    "reused_from_attempt",
    "job_type",
    "input_files",
    "input_bytes",
    "output_rows",
    "output_bytes",
    "bad_records",
    "output_files",
    "execution_project",
    "reservation",
    "principal",
    "quota_project",
]
_NULLS = dict.fromkeys(_ALL_KEYS)
# A cache hit as BigQuery reports it: nothing billed, no slots, no totalSlotMs at all.
_CACHE_HIT = {
    "jobReference": {"projectId": "p", "jobId": "j3", "location": "EU"},
    "status": {"state": "DONE"},
    "statistics": {"query": {"statementType": "SELECT", "totalBytesProcessed": "0", "cacheHit": True}},
}
# A dry run's resource: the estimate, no job id, nothing billed.
_DRY_RUN = {
    "jobReference": {"projectId": "p", "location": "US"},
    "status": {"state": "DONE"},
    "statistics": {"totalBytesProcessed": "2048", "query": {"statementType": "SELECT", "totalBytesProcessed": "2048"}},
}


@pytest.mark.parametrize(
    ("resource", "estimated_bytes", "expected"),
    [
        pytest.param(
            _DONE,
            None,
            {
                **_NULLS,
                "job_id": "j1",
                "location": "US",
                "state": "DONE",
                "statement_type": "SELECT",
                "total_bytes_processed": 1288490188,
                "total_bytes_billed": 1288490188,
                "total_slot_ms": 412000,
                "cache_hit": False,
                "destination": "p:_r.t",
                "job_type": "QUERY",
                "execution_project": "p",
            },
            id="finished-query",
        ),
        pytest.param(
            _CACHE_HIT,
            None,
            {
                **_NULLS,
                "job_id": "j3",
                "location": "EU",
                "state": "DONE",
                "statement_type": "SELECT",
                "total_bytes_processed": 0,
                "cache_hit": True,
                "execution_project": "p",
            },
            id="cache-hit-without-slot-ms",
        ),
        pytest.param(
            _DONE,
            4096,
            {
                **_NULLS,
                "job_id": "j1",
                "location": "US",
                "state": "DONE",
                "statement_type": "SELECT",
                "total_bytes_processed": 1288490188,
                "total_bytes_billed": 1288490188,
                "total_slot_ms": 412000,
                "cache_hit": False,
                "destination": "p:_r.t",
                "job_type": "QUERY",
                "estimated_bytes_processed": 4096,
                "execution_project": "p",
            },
            id="with-estimate",
        ),
        pytest.param(
            _DRY_RUN,
            None,
            {
                **_NULLS,
                "location": "US",
                "state": "DONE",
                "statement_type": "SELECT",
                "total_bytes_processed": 2048,
                "execution_project": "p",
            },
            id="dry-run",
        ),
        pytest.param(
            {
                "jobReference": {"jobId": "j4"},
                "status": {"state": "DONE"},
                "statistics": {"query": {"statementType": "UPDATE", "numDmlAffectedRows": "17"}},
            },
            None,
            {**_NULLS, "job_id": "j4", "state": "DONE", "statement_type": "UPDATE", "num_dml_affected_rows": 17},
            id="dml",
        ),
        pytest.param(
            {
                "jobReference": {"projectId": "exec", "jobId": "j5", "location": "US"},
                "configuration": {"reservation": "none"},
                "status": {"state": "RUNNING"},
            },
            None,
            {
                **_NULLS,
                "job_id": "j5",
                "location": "US",
                "state": "RUNNING",
                "execution_project": "exec",
                "reservation": "none",
            },
            id="on-demand-in-an-execution-project",
        ),
        pytest.param({}, None, _NULLS, id="empty-resource"),
    ],
)
def test_summary_has_every_key_with_null_for_what_bigquery_did_not_report(
    resource: dict[str, Any], estimated_bytes: int | None, expected: dict[str, Any]
) -> None:
    summary = job_summary(resource, estimated_bytes)
    assert list(summary) == _ALL_KEYS
    assert summary == expected


def test_the_documented_schema_lists_every_key_in_order() -> None:
    assert list(CUSTOM_INFO_KEYS) == _ALL_KEYS


def test_log_lines_of_a_sparse_resource_have_no_none() -> None:
    lines = job_log_lines(_CACHE_HIT)
    assert lines == ["job j3 (EU): DONE", "statement type: SELECT", "scanned 0 B, cache hit"]


def test_log_lines_name_the_reservation_and_the_project_it_ran_in() -> None:
    resource = {**_CACHE_HIT, "configuration": {"reservation": "projects/a/locations/EU/reservations/etl"}}
    assert "reservation: projects/a/locations/EU/reservations/etl (project p)" in job_log_lines(resource)


def test_metrics_leave_out_statistics_bigquery_did_not_report() -> None:
    assert job_metrics(_CACHE_HIT)["BIGQUERY_JOB_STATISTICS"] == {"total_bytes_processed": 0, "cache_hit": True}


def test_log_lines_read_like_a_person_wrote_them() -> None:
    lines = job_log_lines(_DONE)
    assert "scanned 1.2 GiB, billed 1.2 GiB, 412 slot-s, cache miss" in lines
    assert "statement type: SELECT" in lines


def test_log_lines_list_the_error_with_its_location() -> None:
    failed = {
        "jobReference": {"jobId": "j2"},
        "status": {
            "state": "DONE",
            "errorResult": {"reason": "invalidQuery", "message": "Syntax error", "location": "query"},
            "errors": [
                {"reason": "invalidQuery", "message": "Syntax error", "location": "query"},
                {"reason": "invalid", "message": "secondary"},
            ],
        },
    }
    lines = job_log_lines(failed)
    assert "error: invalidQuery: Syntax error (at query)" in lines
    assert "  invalid: secondary" in lines


def test_metrics_carry_the_timeline_and_completed_units() -> None:
    metrics = job_metrics(_DONE)
    assert metrics["BIGQUERY_JOB_TIMELINE"]["elapsed_ms"] == 2500
    assert metrics["BIGQUERY_JOB_TIMELINE"]["queued_ms"] == 500
    assert metrics["BIGQUERY_JOB_STATISTICS"]["completed_units"] == 5


def test_metrics_of_a_pending_job_are_empty_but_valid() -> None:
    metrics = job_metrics({"status": {"state": "PENDING"}})
    assert metrics["BIGQUERY_JOB_TIMELINE"] == {}


def test_script_children_are_listed_in_order_with_errors() -> None:
    children = [
        {
            "statistics": {"creationTime": "20", "query": {"statementType": "INSERT"}},
            "status": {"state": "DONE", "errorResult": {"reason": "invalidQuery", "message": "bad", "location": "q"}},
        },
        {"statistics": {"creationTime": "10", "query": {"statementType": "CREATE_TABLE"}}, "status": {"state": "DONE"}},
    ]
    assert child_job_lines(children) == [
        "  statement 1: CREATE_TABLE DONE",
        "  statement 2: INSERT DONE - invalidQuery: bad (at q)",
    ]
