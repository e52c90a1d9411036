"""Every declarable Flyte input type, sent through the connector as a query parameter and selected back.

Each row goes the whole way a real run goes: Python value → Flyte literal (flytekit's own type engine,
pickles included) → connector (descriptor-guided, never unpickling) → BigQuery parameter → the local
BigQuery → result table read back with the real client.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import typing
from pathlib import Path
from typing import Any

import pytest
from flyte_bigquery_core.errors import UnsupportedInputError
from flyte_bigquery_core.inputs import describe_type
from flyteidl.core.execution_pb2 import TaskExecution
from flytekit import StructuredDataset
from google.cloud import bigquery

from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask
from flytekitplugins.bigquery.connector import BigQueryConnector

from .helpers import run


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: int
    label: str
    seen: datetime.date


_UTC = datetime.timezone.utc

# (id, declared type, value, expected BigQuery column type, expected value read back)
ROWS: list[tuple[str, Any, Any, str, Any]] = [
    ("bool", bool, False, "BOOLEAN", False),
    ("int", int, 2**63 - 1, "INTEGER", 2**63 - 1),
    ("float", float, -0.125, "FLOAT", -0.125),
    ("str", str, "héllo\nworld", "STRING", "héllo\nworld"),
    (
        "str-injection",
        str,
        "'; DROP TABLE samples.daily_downloads; --",
        "STRING",
        "'; DROP TABLE samples.daily_downloads; --",
    ),
    ("bytes", bytes, bytes(range(256)), "BYTES", bytes(range(256))),
    ("date", datetime.date, datetime.date(1999, 12, 31), "DATE", datetime.date(1999, 12, 31)),
    ("time", datetime.time, datetime.time(23, 59, 58, 123456), "TIME", datetime.time(23, 59, 58, 123456)),
    (
        "datetime-aware",
        datetime.datetime,
        datetime.datetime(2024, 6, 1, 12, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
        "TIMESTAMP",
        datetime.datetime(2024, 6, 1, 17, 0, tzinfo=_UTC),
    ),
    (
        "decimal-numeric",
        decimal.Decimal,
        decimal.Decimal("12345.678901234"),
        "NUMERIC",
        decimal.Decimal("12345.678901234"),
    ),
    (
        "decimal-bignumeric",
        decimal.Decimal,
        decimal.Decimal("0.1234567890123"),
        "BIGNUMERIC",
        decimal.Decimal("0.1234567890123"),
    ),
    # timedelta → INTERVAL is covered in test_params.py only: the local BigQuery cannot parse BigQuery's
    # canonical interval text ("0-0 2 3:0:0"), which real BigQuery accepts.
    ("float-inf", float, float("inf"), "FLOAT", float("inf")),
    ("enum", Color, Color.BLUE, "STRING", "blue"),
    ("optional-none", typing.Optional[int], None, "INTEGER", None),
    ("optional-value", typing.Optional[str], "x", "STRING", "x"),
    ("list-int", list[int], [3, 1, 2], "INTEGER", [3, 1, 2]),
    ("list-empty", list[str], [], "STRING", []),
    ("list-date", list[datetime.date], [datetime.date(2024, 1, 1)], "DATE", [datetime.date(2024, 1, 1)]),
    ("list-bytes", list[bytes], [b"a", b"\x00"], "BYTES", [b"a", b"\x00"]),
    ("dict-json", dict, {"a": [1, 2], "b": None}, "JSON", {"a": [1, 2], "b": None}),
    (
        "dataclass-struct",
        Point,
        Point(x=1, label="p", seen=datetime.date(2024, 5, 6)),
        "RECORD",
        {"x": 1, "label": "p", "seen": datetime.date(2024, 5, 6)},
    ),
]


@pytest.fixture(scope="module")
def connector(emulator: Any) -> BigQueryConnector:
    return BigQueryConnector()


def _selected(client: bigquery.Client, uri: str) -> tuple[bigquery.SchemaField, Any]:
    table = client.get_table(uri.removeprefix("bq://").replace(":", "."))
    rows = list(client.list_rows(table))
    return table.schema[0], rows[0]["v"]


@pytest.mark.parametrize(("declared", "value", "bq_type", "expected"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_input_round_trips_as_a_typed_parameter(
    connector: BigQueryConnector, emulator: Any, bq_client: Any, declared: Any, value: Any, bq_type: str, expected: Any
) -> None:
    task = BigQueryTask(
        name="round_trip",
        query_template="SELECT @p AS v",
        task_config=BigQueryConfig(ProjectID=emulator.project),
        inputs={"p": declared},
        output_structured_dataset_type=StructuredDataset,
    )
    _, resource = run(connector, task, p=value)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    field, got = _selected(bq_client, resource.outputs["results"].uri)
    assert field.field_type == bq_type
    if bq_type == "JSON" and isinstance(got, str):
        import json

        got = json.loads(got)
    assert got == expected


@pytest.mark.parametrize(
    "declared",
    [typing.Any, set[int], list[list[int]], typing.Union[int, str], object],
    ids=["any", "set", "array-of-arrays", "union", "object"],
)
def test_unmappable_declared_type_is_refused_when_the_task_is_defined(declared: Any) -> None:
    with pytest.raises(UnsupportedInputError) as e:
        BigQueryTask(
            name="refused",
            query_template="SELECT @p",
            task_config=BigQueryConfig(ProjectID="p"),
            inputs={"p": declared},
        )
    assert "'refused'" in str(e.value)
    assert "'p'" in str(e.value)


def test_flyte_file_input_is_refused_naming_task_and_input() -> None:
    from flytekit.types.file import FlyteFile

    with pytest.raises(UnsupportedInputError, match=r"'files'.*'f'.*supported types"):
        BigQueryTask(
            name="files", query_template="SELECT @f", task_config=BigQueryConfig(ProjectID="p"), inputs={"f": FlyteFile}
        )


@pytest.mark.parametrize(
    ("declared", "descriptor"),
    [
        (datetime.date, "date"),
        (list[typing.Optional[int]], {"array": {"optional": "int"}}),
        (Color, {"enum": "str"}),
        (Point, {"struct": [["x", "int"], ["label", "str"], ["seen", "date"]]}),
    ],
)
def test_declared_types_are_recorded_as_json_descriptors(declared: Any, descriptor: Any) -> None:
    assert describe_type(declared) == descriptor


def test_pickled_input_of_another_type_is_refused_naming_the_input(tmp_path: Any) -> None:
    """A pickle that would run code (here os.system) is refused without being executed."""
    import os
    import pickle

    from flyte_bigquery_core.inputs import decode_inputs
    from flytekit.models.core.types import BlobType
    from flytekit.models.literals import Blob, BlobMetadata, Literal, Scalar

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    path = tmp_path / "input.pkl"
    path.write_bytes(pickle.dumps(Evil()))
    blob_type = BlobType(format="PythonPickle", dimensionality=BlobType.BlobDimensionality.SINGLE)
    literal = Literal(scalar=Scalar(blob=Blob(metadata=BlobMetadata(type=blob_type), uri=str(path))))
    with pytest.raises(UnsupportedInputError, match=r"task 'evil': input 'b'.*refus"):
        decode_inputs({"b": literal}, {"b": "bytes"}, lambda uri: Path(uri).read_bytes(), "evil")
    assert not (tmp_path / "pwned").exists()
