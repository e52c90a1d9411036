"""Declared columns as field paths (``detail.age``), and the Arrow cast that prunes a struct to them."""

from __future__ import annotations

import pyarrow as pa
import pytest
from flyte_bigquery_core.errors import PermanentError
from flyte_bigquery_core.io.arrow_types import conform, target_schema
from flyte_bigquery_core.io.fields import field_paths, project, requested_paths
from google.cloud.bigquery import SchemaField

SCHEMA = [
    SchemaField("name", "STRING"),
    SchemaField(
        "detail",
        "RECORD",
        fields=[
            SchemaField("age", "INTEGER"),
            SchemaField("sex", "STRING"),
            SchemaField("home", "RECORD", fields=[SchemaField("city", "STRING"), SchemaField("zip", "STRING")]),
        ],
    ),
    SchemaField("items", "RECORD", "REPEATED", fields=[SchemaField("a", "INTEGER"), SchemaField("b", "STRING")]),
]


def _shape(fields: list[SchemaField]) -> list[object]:
    """``name`` for a leaf, ``(name, [children])`` for a record: the shape a read delivers."""
    return [(f.name, _shape(list(f.fields))) if f.fields else f.name for f in fields]


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (None, []),
        ([], []),
        (["name", "detail.age"], ["name", "detail.age"]),
        (["detail.age", "detail.age"], ["detail.age"]),
        (["detail", "detail.age"], ["detail"]),
        (["detail.age", "detail"], ["detail"]),
        (["detail.home.city", "name"], ["detail.home.city", "name"]),
    ],
)
def test_requested_paths_drop_repeats_and_paths_inside_whole_columns(
    columns: list[str] | None, expected: list[str]
) -> None:
    assert requested_paths(columns) == expected


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (None, ["name", ("detail", ["age", "sex", ("home", ["city", "zip"])]), ("items", ["a", "b"])]),
        (["name", "detail.age"], ["name", ("detail", ["age"])]),
        (["detail.sex", "name", "detail.age"], [("detail", ["sex", "age"]), "name"]),
        (["detail.home.zip"], [("detail", [("home", ["zip"])])]),
        (["detail.age", "detail"], [("detail", ["age", "sex", ("home", ["city", "zip"])])]),
        (["items.b"], [("items", ["b"])]),
        (["NAME", "Detail.AGE"], ["name", ("detail", ["age"])]),
    ],
)
def test_a_projection_keeps_the_declared_paths_in_declared_order(
    columns: list[str] | None, expected: list[object]
) -> None:
    assert _shape(project(SCHEMA, columns, "bq://p:d.t").fields) == expected


def test_a_projection_lists_its_columns_in_the_tables_order_too() -> None:
    projection = project(SCHEMA, ["items.a", "detail.age", "name"], "bq://p:d.t")
    assert projection.names == ["items", "detail", "name"]
    assert [f.name for f in projection.table_order] == ["name", "detail", "items"]
    assert _shape(projection.whole) == _shape(SCHEMA)


@pytest.mark.parametrize(
    ("columns", "missing"),
    [
        (["detail.height"], "detail.height"),
        (["name.first"], "name.first"),
        (["detail.home.street", "colour"], "detail.home.street, colour"),
        (["nope.a", "nope.b"], "nope.a, nope.b"),
    ],
)
def test_a_missing_path_is_named_with_the_tables_paths(columns: list[str], missing: str) -> None:
    with pytest.raises(PermanentError) as raised:
        project(SCHEMA, columns, "bq://p:d.t")
    assert str(raised.value) == (
        f"bq://p:d.t has no column(s) {missing}; its columns are name, detail, detail.age, detail.sex, "
        "detail.home, detail.home.city, detail.home.zip, items, items.a, items.b"
    )


def test_field_paths_name_parents_before_their_sub_fields() -> None:
    assert list(field_paths(SCHEMA[2:])) == ["items", "items.a", "items.b"]


WIRE = pa.schema(
    [
        ("name", pa.string()),
        (
            "detail",
            pa.struct(
                [
                    ("age", pa.int32()),
                    ("sex", pa.string()),
                    ("home", pa.struct([("city", pa.string()), ("zip", pa.string())])),
                ]
            ),
        ),
        ("items", pa.list_(pa.struct([("a", pa.int64()), ("b", pa.string())]))),
    ]
)
WHOLE_ROW = {
    "name": "ann",
    "detail": {"age": 34, "sex": "f", "home": {"city": "oslo", "zip": "0150"}},
    "items": [{"a": 1, "b": "x"}],
}


@pytest.mark.parametrize(
    ("columns", "row"),
    [
        (["name", "detail.age"], {"name": "ann", "detail": {"age": 34}}),
        (["detail.home.zip", "detail.sex"], {"detail": {"home": {"zip": "0150"}, "sex": "f"}}),
        (["items.b"], {"items": [{"b": "x"}]}),
        (["detail"], {"detail": WHOLE_ROW["detail"]}),
    ],
)
def test_whole_records_sent_by_a_server_are_pruned_to_the_declared_paths(
    columns: list[str], row: dict[str, object]
) -> None:
    projection = project(SCHEMA, columns, "bq://p:d.t")
    batch = pa.RecordBatch.from_pylist([WHOLE_ROW], schema=WIRE).select(projection.names)
    target = target_schema(batch.schema, projection.fields)
    assert conform(batch, target).to_pylist() == [row]


def test_pruned_structs_take_the_bigquery_types() -> None:
    projection = project(SCHEMA, ["detail.age"], "bq://p:d.t")
    target = target_schema(pa.schema([WIRE.field("detail")]), projection.fields)
    assert target.field("detail").type == pa.struct([("age", pa.int64())])
