"""Custom info, log lines and metrics from documented job resource shapes."""

from flyte_bigquery_core.report import child_job_lines, human_bytes, job_log_lines, job_metrics, job_summary

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


def test_summary_keeps_statistics_as_numbers() -> None:
    summary = job_summary(_DONE)
    assert summary["total_bytes_billed"] == 1288490188
    assert summary["total_slot_ms"] == 412000
    assert summary["cache_hit"] is False
    assert summary["destination"] == "p:_r.t"


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
