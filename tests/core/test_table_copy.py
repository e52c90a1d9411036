"""Copy specs → ``configuration.copy``: copies of tables and partitions, snapshots, clones, and refusals."""

from __future__ import annotations

from typing import Any

import pytest
from flyte_bigquery_core.errors import InvalidTaskError
from flyte_bigquery_core.table_copy import CopySpec, copy_configuration


def _copy(source: Any = None, **spec: Any) -> dict[str, Any]:
    return copy_configuration(CopySpec(**{"destination": "ds.dst", "sources": ("ds.src",), **spec}), source, "proj")


def _ref(table: str, dataset: str = "ds", project: str = "proj") -> dict[str, str]:
    return {"projectId": project, "datasetId": dataset, "tableId": table}


BUILT = [
    pytest.param({}, None, {"sourceTables": [_ref("src")], "destinationTable": _ref("dst")}, id="copy"),
    pytest.param(
        {"sources": ("ds.a", "other.ds.b")},
        None,
        {"sourceTables": [_ref("a"), _ref("b", project="other")]},
        id="several-sources",
    ),
    pytest.param(
        {"sources": ("ds.src$20240101",), "destination": "ds.dst$20240101", "write_disposition": "WRITE_TRUNCATE"},
        None,
        {
            "sourceTables": [_ref("src$20240101")],
            "destinationTable": _ref("dst$20240101"),
            "writeDisposition": "WRITE_TRUNCATE",
        },
        id="partition-to-partition",
    ),
    pytest.param(
        {"operation": "snapshot", "expiration_time": "2030-01-01T00:00:00Z"},
        None,
        {"operationType": "SNAPSHOT", "destinationExpirationTime": "2030-01-01T00:00:00Z"},
        id="expiring-snapshot",
    ),
    pytest.param({"operation": "CLONE"}, None, {"operationType": "CLONE"}, id="clone"),
    pytest.param({"operation": "RESTORE"}, None, {"operationType": "RESTORE"}, id="restore"),
    pytest.param({"sources": ()}, "bq://proj:ds.from_input", {"sourceTables": [_ref("from_input")]}, id="input-table"),
    pytest.param({"sources": ()}, ["ds.x", "ds.y"], {"sourceTables": [_ref("x"), _ref("y")]}, id="input-tables"),
]


@pytest.mark.parametrize(("spec", "source", "expected"), BUILT)
def test_the_copy_configuration_holds_what_the_spec_says(
    spec: dict[str, Any], source: Any, expected: dict[str, Any]
) -> None:
    configuration = _copy(source, **spec)
    assert {k: configuration.get(k) for k in expected} == expected


def test_a_plain_copy_leaves_the_operation_and_dispositions_to_bigquery() -> None:
    assert set(_copy()) == {"sourceTables", "destinationTable"}


REFUSED = [
    pytest.param({"operation": "MOVE"}, None, "CopyJob.operation is 'MOVE'", id="unknown-operation"),
    pytest.param(
        {"operation": "SNAPSHOT", "sources": ("ds.a", "ds.b")},
        None,
        "a SNAPSHOT takes one source table, got 2",
        id="two-snapshot-sources",
    ),
    pytest.param(
        {"operation": "SNAPSHOT", "sources": ("ds.a$20240101",)},
        None,
        "not partition $20240101",
        id="snapshot-of-partition",
    ),
    pytest.param(
        {"operation": "CLONE", "write_disposition": "WRITE_TRUNCATE"},
        None,
        "must be WRITE_EMPTY",
        id="clone-over-table",
    ),
    pytest.param(
        {"expiration_time": "2030-01-01T00:00:00Z"}, None, "expiration time is for snapshots", id="expiring-copy"
    ),
    pytest.param({"destination": "ds.src"}, None, "the destination is also a source", id="onto-itself"),
    pytest.param(
        {"write_disposition": "REPLACE"}, None, "CopyJob.write_disposition is 'REPLACE'", id="bad-disposition"
    ),
    pytest.param({"create_disposition": "NEVER"}, None, "CopyJob.create_disposition", id="bad-create"),
    pytest.param({"sources": ()}, None, "CopyJob.sources is empty", id="no-source"),
    pytest.param({"sources": ()}, [], "holds no table", id="empty-input"),
    pytest.param(
        {"sources": ("nodataset",)}, None, "CopyJob.sources[0] is 'nodataset', not a table", id="bad-source-name"
    ),
    pytest.param({"sources": ("ds.a$soon",)}, None, "partition decorator $soon", id="bad-decorator"),
]


@pytest.mark.parametrize(("spec", "source", "message"), REFUSED)
def test_a_copy_that_cannot_work_is_refused(spec: dict[str, Any], source: Any, message: str) -> None:
    with pytest.raises(InvalidTaskError) as e:
        _copy(source, **spec)
    assert message in str(e.value)


def test_a_spec_survives_the_task_template() -> None:
    spec = CopySpec("ds.d", ("ds.a", "ds.b"), "COPY", "WRITE_APPEND", "CREATE_NEVER", None)
    assert CopySpec.from_api_repr(spec.to_api_repr()) == spec
