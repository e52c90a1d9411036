"""Table names as transfer tasks take them, with and without project and partition decorator."""

from __future__ import annotations

import pytest
from flyte_bigquery_core.errors import InvalidTaskError
from flyte_bigquery_core.table_refs import TableRef, parse_table


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ds.t", TableRef("dflt", "ds", "t")),
        ("p.ds.t", TableRef("p", "ds", "t")),
        ("my-proj:ds.t", TableRef("my-proj", "ds", "t")),
        ("example.com:proj.ds.t", TableRef("example.com:proj", "ds", "t")),
        ("bq://p:ds.t", TableRef("p", "ds", "t")),
        ("ds.events$20240101", TableRef("dflt", "ds", "events", "20240101")),
        ("p.ds.t$__UNPARTITIONED__", TableRef("p", "ds", "t", "__UNPARTITIONED__")),
        ("  ds.t  ", TableRef("dflt", "ds", "t")),
    ],
)
def test_a_table_name_is_read_in_every_spelling(text: str, expected: TableRef) -> None:
    assert parse_table(text, "dflt", "x") == expected


@pytest.mark.parametrize("text", ["t", "a.b.c.d", "ds.t$", "gs://b/x", "ds.t@123", "", "p:ds.t.x"])
def test_anything_else_is_refused_naming_the_setting(text: str) -> None:
    with pytest.raises(InvalidTaskError, match=r"CopyJob\.destination"):
        parse_table(text, "dflt", "CopyJob.destination")


def test_the_decorator_stays_in_the_table_id_and_leaves_the_uri() -> None:
    ref = TableRef("p", "ds", "events", "2024")
    assert ref.to_api_repr() == {"projectId": "p", "datasetId": "ds", "tableId": "events$2024"}
    assert ref.uri == "bq://p:ds.events"
