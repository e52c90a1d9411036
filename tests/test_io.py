"""``bq://`` StructuredDatasets: reads (Storage Read API and REST), writes (load jobs), registration.

Everything runs against the session's local BigQuery with the real clients. The read path is chosen with
the environment exactly as a user would: ``FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST`` set → Storage
Read API; unset → REST (``tabledata.list``).

No ``from __future__ import annotations`` here: several tasks are built from a parameter's type, and
flytekit must see those annotations as real types.
"""

import contextlib
import dataclasses
import datetime as dt
import decimal
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from flyte_bigquery_core.clients import ClientPool
from flyte_bigquery_core.io import storage as storage_module
from flyte_bigquery_core.io.parallel import in_order
from flyte_bigquery_core.io.read import TableReader, billing_project
from flyte_bigquery_core.io.storage import RowsMessage, StorageConnections
from flyte_bigquery_core.io.uri import TableId
from flyte_bigquery_core.settings import reload_settings
from flytekit import StructuredDataset, kwtypes, task, workflow
from flytekit.types.structured import lazy_import_structured_dataset_handler, register_bigquery_handlers
from flytekit.types.structured.bigquery import BQToPandasDecodingHandler, PandasToBQEncodingHandlers
from flytekit.types.structured.structured_dataset import StructuredDatasetTransformerEngine
from google.cloud import bigquery
from google.cloud.bigquery_storage_v1 import types as storage_types

from flytekitplugins.bigquery import BigQueryConfig, BigQueryJobError, BigQueryTask
from flytekitplugins.bigquery.io import (
    BILLING_PROJECT_ENV,
    STORAGE_EMULATOR_HOST_ENV,
    WRITE_DISPOSITION_ENV,
    BigQueryDecoder,
    BigQueryEncoder,
    register_handlers,
)
from flytekitplugins.bigquery.testing import Emulator

DATASET = "io_tests"
READ_LOG = "flyte_bigquery_core.io.read"
UTC = dt.timezone.utc

# --- the source table: every interesting type, one full row and one of NULLs ------------------------------

SOURCE_SQL = f"""
CREATE OR REPLACE TABLE {DATASET}.typed AS
SELECT * FROM UNNEST([
  STRUCT(1 AS id, 'a' AS name, NUMERIC '1.25' AS amount, TIMESTAMP '2024-01-02 03:04:05.123456+00' AS ts,
         [1, 2] AS tags, STRUCT(1 AS x, 'p' AS y) AS point, DATE '2024-02-29' AS day),
  STRUCT(2, NULL, NULL, NULL, [], NULL, NULL)
])
"""
EXPECTED_ROWS = [
    {
        "id": 1,
        "name": "a",
        "amount": decimal.Decimal("1.25"),
        "ts": dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        "tags": [1, 2],
        "point": {"x": 1, "y": "p"},
        "day": dt.date(2024, 2, 29),
    },
    {"id": 2, "name": None, "amount": None, "ts": None, "tags": [], "point": None, "day": None},
]
ARROW_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("name", pa.string()),
        ("amount", pa.decimal128(38, 9)),
        ("ts", pa.timestamp("us", tz="UTC")),
        pa.field("tags", pa.list_(pa.int64()), nullable=False),
        ("point", pa.struct([("x", pa.int64()), ("y", pa.string())])),
        ("day", pa.date32()),
    ]
)


def _pandas_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return pa.Table.from_pandas(frame, preserve_index=False).to_pylist()


def _arrow_records(table: pa.Table) -> list[dict[str, Any]]:
    return table.to_pylist()


def _polars_records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dicts()


def _pandas_types(frame: pd.DataFrame) -> dict[str, str]:
    return {str(name): str(dtype) for name, dtype in frame.dtypes.items()}


def _arrow_types(table: pa.Table) -> pa.Schema:
    return table.schema.remove_metadata()


def _polars_types(frame: pl.DataFrame) -> dict[str, pl.DataType]:
    return dict(frame.schema)


# name → (python type, to records, to types, expected types)
FRAMES: dict[str, tuple[type, Callable[[Any], list[dict[str, Any]]], Callable[[Any], Any], Any]] = {
    "pandas": (
        pd.DataFrame,
        _pandas_records,
        _pandas_types,
        {
            "id": "Int64",
            "name": "str",
            "amount": "object",
            "ts": "datetime64[us, UTC]",
            "tags": "object",
            "point": "object",
            "day": "object",
        },
    ),
    "arrow": (pa.Table, _arrow_records, _arrow_types, ARROW_SCHEMA),
    "polars": (
        pl.DataFrame,
        _polars_records,
        _polars_types,
        {
            "id": pl.Int64,
            "name": pl.String,
            "amount": pl.Decimal(38, 9),
            "ts": pl.Datetime("us", "UTC"),
            "tags": pl.List(pl.Int64),
            "point": pl.Struct({"x": pl.Int64, "y": pl.String}),
            "day": pl.Date,
        },
    ),
}
PATHS = ["storage", "rest"]


@contextlib.contextmanager
def _storage_endpoint(value: str | None) -> Iterator[None]:
    """Point the Storage Read API at ``value`` (``None``: no Storage endpoint, so reads use REST)."""
    saved = os.environ.get(STORAGE_EMULATOR_HOST_ENV)
    if value is None:
        os.environ.pop(STORAGE_EMULATOR_HOST_ENV, None)
    else:
        os.environ[STORAGE_EMULATOR_HOST_ENV] = value
    reload_settings()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(STORAGE_EMULATOR_HOST_ENV, None)
        else:
            os.environ[STORAGE_EMULATOR_HOST_ENV] = saved
        reload_settings()


def _endpoint_for(path: str, emulator: Emulator) -> str | None:
    return emulator.grpc_target if path == "storage" else None


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="module")
def source(emulator: Emulator) -> str:
    """``io_tests.typed`` (see :data:`SOURCE_SQL`), built with SQL; returns its ``bq://`` URI."""
    client = emulator.client()
    try:
        client.create_dataset(DATASET, exists_ok=True)
        client.query(SOURCE_SQL).result()
    finally:
        client.close()
    return f"bq://{emulator.project}:{DATASET}.typed"


@pytest.fixture(scope="module")
def many_rows(emulator: Emulator, source: str) -> str:
    """250,000 rows: the local BigQuery serves 100,000 rows per stream, so reads use three streams."""
    client = emulator.client()
    try:
        client.query(
            f"CREATE OR REPLACE TABLE {DATASET}.many AS "
            "SELECT n AS id, CAST(n AS STRING) AS label FROM UNNEST(GENERATE_ARRAY(1, 250000)) AS n"
        ).result()
    finally:
        client.close()
    return f"bq://{emulator.project}:{DATASET}.many"


# --- reading a query's results -------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=PATHS)
def query_results(request: pytest.FixtureRequest, emulator: Emulator, source: str) -> dict[str, Any]:
    """One workflow per read path: a BigQueryTask's results feed three tasks reading pandas, Arrow, polars."""
    seen: dict[str, Any] = {}
    query = BigQueryTask(
        name="io.typed",
        query_template=f"SELECT * FROM {DATASET}.typed ORDER BY id",
        task_config=BigQueryConfig(ProjectID=emulator.project),
        output_structured_dataset_type=StructuredDataset,
    )

    @task
    def read_pandas(frame: pd.DataFrame) -> int:
        seen["pandas"] = frame
        return len(frame)

    @task
    def read_arrow(table: pa.Table) -> int:
        seen["arrow"] = table
        return len(table)

    @task
    def read_polars(frame: pl.DataFrame) -> int:
        seen["polars"] = frame
        return len(frame)

    @workflow
    def fan_out() -> tuple[int, int, int]:
        results = query()
        return read_pandas(frame=results), read_arrow(table=results), read_polars(frame=results)

    with _storage_endpoint(_endpoint_for(request.param, emulator)):
        assert fan_out() == (2, 2, 2)
    return seen


@pytest.mark.parametrize("frame", list(FRAMES))
def test_query_results_read_with_their_values(query_results: dict[str, Any], frame: str) -> None:
    _, records, _, _ = FRAMES[frame]
    assert records(query_results[frame]) == EXPECTED_ROWS


@pytest.mark.parametrize("frame", list(FRAMES))
def test_query_results_read_with_the_bigquery_types(query_results: dict[str, Any], frame: str) -> None:
    _, _, types, expected = FRAMES[frame]
    assert types(query_results[frame]) == expected


@pytest.mark.parametrize("path", PATHS)
def test_declared_columns_are_the_only_ones_read_in_declared_order(emulator: Emulator, source: str, path: str) -> None:
    seen: dict[str, pa.Table] = {}

    @task
    def narrow(sd: Annotated[StructuredDataset, kwtypes(name=str, id=int)]) -> int:
        seen["table"] = sd.open(pa.Table).all()
        return 0

    with _storage_endpoint(_endpoint_for(path, emulator)):
        narrow(sd=StructuredDataset(uri=source))
    assert seen["table"].schema.names == ["name", "id"]
    assert seen["table"].to_pylist() == [{"name": "a", "id": 1}, {"name": None, "id": 2}]


def test_a_declared_column_the_table_lacks_is_named(emulator: Emulator, source: str) -> None:
    @task
    def wrong(sd: Annotated[StructuredDataset, kwtypes(id=int, colour=str)]) -> int:
        return len(sd.open(pa.Table).all())

    with pytest.raises(Exception, match=r"no column\(s\) colour; its columns are id, name"):
        wrong(sd=StructuredDataset(uri=source))


@pytest.mark.parametrize("frame", list(FRAMES))
def test_an_empty_table_reads_as_an_empty_frame_with_its_columns(
    emulator: Emulator, source: str, bq_client: bigquery.Client, frame: str
) -> None:
    bq_client.query(f"CREATE TABLE IF NOT EXISTS {DATASET}.empty (a INT64, b STRING)").result()
    python_type = FRAMES[frame][0]
    empty: Any = StructuredDataset(uri=f"bq://{emulator.project}:{DATASET}.empty").open(python_type).all()
    names = list(empty.column_names if frame == "arrow" else empty.columns)
    assert (type(empty), len(empty), names) == (python_type, 0, ["a", "b"])


# --- pandas keeps every value (README: "BigQuery type → pandas dtype") -------------------------------------

PANDAS_EXACT_SQL = f"""
CREATE OR REPLACE TABLE {DATASET}.pandas_exact AS
SELECT * FROM UNNEST([
  STRUCT(0 AS o, 9007199254740993 AS i, TRUE AS b, NUMERIC '-99999999999999999999999999999.999999999' AS n,
         TIMESTAMP '0001-01-01 00:00:00+00' AS ts, DATETIME '9999-12-31 23:59:59.999999' AS dtm,
         DATE '0001-01-01' AS d, TIME '23:59:59.999999' AS t, STRUCT(9007199254740993 AS a, 'p' AS q) AS st),
  STRUCT(1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, STRUCT(CAST(NULL AS INT64), CAST(NULL AS STRING)))
])
"""
# column → (pandas dtype, the row's value; the other row holds NULLs)
PANDAS_EXACT: dict[str, tuple[str, Any]] = {
    "i": ("Int64", 9007199254740993),
    "b": ("boolean", True),
    "n": ("object", decimal.Decimal("-99999999999999999999999999999.999999999")),
    "ts": ("datetime64[us, UTC]", pd.Timestamp(dt.datetime(1, 1, 1, tzinfo=UTC))),
    "dtm": ("datetime64[us]", pd.Timestamp("9999-12-31 23:59:59.999999")),
    "d": ("object", dt.date(1, 1, 1)),
    "t": ("object", dt.time(23, 59, 59, 999999)),
    "st": ("object", {"a": 9007199254740993, "q": "p"}),
}


@pytest.fixture(scope="module", params=PATHS)
def pandas_exact(request: pytest.FixtureRequest, emulator: Emulator, source: str) -> pd.DataFrame:
    """``io_tests.pandas_exact`` read through ``sd.open(pd.DataFrame)`` on each read path, in row order."""
    client = emulator.client()
    try:
        client.query(PANDAS_EXACT_SQL).result()
    finally:
        client.close()
    with _storage_endpoint(_endpoint_for(request.param, emulator)):
        sd = StructuredDataset(uri=f"bq://{emulator.project}:{DATASET}.pandas_exact")
        frame: pd.DataFrame = sd.open(pd.DataFrame).all()
    return frame.sort_values("o").reset_index(drop=True)


@pytest.mark.parametrize("column", list(PANDAS_EXACT))
def test_pandas_reads_keep_every_value_beside_a_null(pandas_exact: pd.DataFrame, column: str) -> None:
    dtype, value = PANDAS_EXACT[column]
    series = pandas_exact[column]
    assert str(series.dtype) == dtype
    first, second = series.tolist()  # as Python values, as a task's code sees them
    assert first == value and type(first) is type(value)
    if column == "st":
        assert type(first["a"]) is int and second == {"a": None, "q": None}
    else:
        assert pd.isna(second)


# --- nested declared columns (field paths) ---------------------------------------------------------------

PEOPLE_SQL = f"""
CREATE OR REPLACE TABLE {DATASET}.people AS
SELECT 'ann' AS name, STRUCT(34 AS age, 'f' AS sex, STRUCT('oslo' AS city, '0150' AS zip) AS home) AS detail,
       [STRUCT(1 AS a, 'x' AS b), STRUCT(2, 'y')] AS items, 'north' AS region
"""


@dataclasses.dataclass
class Age:
    age: int


@dataclasses.dataclass
class Home:
    zip: str


@dataclasses.dataclass
class HomeOnly:
    home: Home


@pytest.fixture(scope="module")
def people(emulator: Emulator, source: str) -> str:
    client = emulator.client()
    try:
        client.query(PEOPLE_SQL).result()
    finally:
        client.close()
    return f"bq://{emulator.project}:{DATASET}.people"


# declaration → the one row read
NESTED_CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "dict": (kwtypes(name=str, detail={"age": int}), {"name": "ann", "detail": {"age": 34}}),
    "dataclass": (kwtypes(name=str, detail=Age), {"name": "ann", "detail": {"age": 34}}),
    "deeper": (
        kwtypes(detail={"home": {"zip": str}}, region=str),
        {"detail": {"home": {"zip": "0150"}}, "region": "north"},
    ),
    "deeper dataclass": (kwtypes(detail=HomeOnly), {"detail": {"home": {"zip": "0150"}}}),
    "declared order": (kwtypes(detail={"sex": str, "age": int}), {"detail": {"sex": "f", "age": 34}}),
    "repeated record": (kwtypes(items={"b": str}), {"items": [{"b": "x"}, {"b": "y"}]}),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", list(NESTED_CASES))
def test_nested_declared_columns_read_only_the_declared_sub_fields(
    emulator: Emulator, people: str, case: str, path: str
) -> None:
    declared, row = NESTED_CASES[case]
    seen: dict[str, Any] = {}

    @task
    def read(sd: Annotated[StructuredDataset, declared]) -> int:
        seen["table"] = sd.open(pa.Table).all()
        seen["frame"] = sd.open(pd.DataFrame).all()
        return 0

    with _storage_endpoint(_endpoint_for(path, emulator)):
        read(sd=StructuredDataset(uri=people))
    assert seen["table"].to_pylist() == [row]
    assert _pandas_records(seen["frame"]) == [row]


def test_a_missing_nested_field_is_named_with_the_tables_fields(emulator: Emulator, people: str) -> None:
    @task
    def wrong(sd: Annotated[StructuredDataset, kwtypes(name=str, detail={"height": int})]) -> int:
        return len(sd.open(pa.Table).all())

    with pytest.raises(Exception, match=r"no column\(s\) detail\.height; its columns are name, detail, detail\.age, "):
        wrong(sd=StructuredDataset(uri=people))


# --- ordered results: the streams asked for -------------------------------------------------------------


class _Recording:
    """The Storage client, recording every CreateReadSession request (the lowest boundary the reader calls)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.requested: list[int] = []

    def create_read_session(self, **kwargs: Any) -> Any:
        self.requested.append(kwargs["max_stream_count"])
        return self._client.create_read_session(**kwargs)


@pytest.mark.parametrize(
    ("labels", "requested", "delivered"),
    [({"flyte_ordered": "true"}, [1], "1 stream(s) (ordered result: one stream)"), ({}, [16], "3 stream(s)")],
)
def test_an_ordered_result_is_read_through_one_stream(
    emulator: Emulator,
    many_rows: str,
    bq_client: bigquery.Client,
    caplog: pytest.LogCaptureFixture,
    labels: dict[str, str],
    requested: list[int],
    delivered: str,
) -> None:
    name = f"many_{uuid.uuid4().hex[:8]}"
    bq_client.query(f"CREATE TABLE {DATASET}.{name} AS SELECT * FROM {DATASET}.many").result()
    table = bq_client.get_table(f"{emulator.project}.{DATASET}.{name}")
    table.labels = labels
    bq_client.update_table(table, ["labels"])
    caplog.set_level(logging.INFO, logger=READ_LOG)
    with _storage_endpoint(emulator.grpc_target):
        storage = StorageConnections()()  # our own instance: nobody else sees the recording client
        assert storage is not None
        recording = _Recording(storage.client)
        storage.client = recording  # type: ignore[assignment]
        rows = TableReader(ClientPool(), lambda: storage).read(f"bq://{emulator.project}:{DATASET}.{name}")
    assert recording.requested == requested
    assert sorted(rows.column("id").to_pylist()) == list(range(1, 250_001))
    assert delivered in caplog.text


# --- read paths --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "expected_path"),
    [
        ("emulator", "through the Storage Read API"),
        ("closed port", "through the REST API: the Storage Read API is unavailable"),
        ("unset", "through the REST API: no Storage Read API endpoint"),
    ],
)
def test_read_path_falls_back_to_rest_without_a_storage_api(
    emulator: Emulator, source: str, caplog: pytest.LogCaptureFixture, endpoint: str, expected_path: str
) -> None:
    value = {"emulator": emulator.grpc_target, "closed port": _closed_port(), "unset": None}[endpoint]
    caplog.set_level(logging.DEBUG, logger=READ_LOG)
    with _storage_endpoint(value):
        table = StructuredDataset(uri=source).open(pa.Table).all()
    assert table.to_pylist() == EXPECTED_ROWS
    assert any(expected_path in record.getMessage() for record in caplog.records), caplog.text


@pytest.mark.parametrize(("endpoint", "warnings"), [("closed port", 1), ("unset", 0), ("emulator", 0)])
def test_a_storage_api_that_cannot_be_used_is_warned_about_once_per_process(
    emulator: Emulator,
    source: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    endpoint: str,
    warnings: int,
) -> None:
    monkeypatch.setattr(storage_module, "_warned", threading.Event())
    value = {"emulator": emulator.grpc_target, "closed port": _closed_port(), "unset": None}[endpoint]
    caplog.set_level(logging.INFO)
    with _storage_endpoint(value):
        for _ in range(2):
            assert StructuredDataset(uri=source).open(pa.Table).all().to_pylist() == EXPECTED_ROWS
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("flyte_")]
    assert len(warned) == warnings, warned
    assert all("ServiceUnavailable" in m and STORAGE_EMULATOR_HOST_ENV in m for m in warned), warned


def test_streams_are_read_in_parallel_and_returned_in_order(many_rows: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=READ_LOG)
    table = StructuredDataset(uri=many_rows).open(pa.Table).all()
    assert "3 stream(s)" in caplog.text
    assert table.column("id").to_pylist() == list(range(1, 250_001))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({BILLING_PROJECT_ENV: "billing", "GOOGLE_CLOUD_PROJECT": "default"}, "billing"),
        ({"GOOGLE_CLOUD_PROJECT": "default"}, "default"),
        ({}, "owner"),
    ],
)
def test_reads_bill_the_callers_project(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str) -> None:
    for name in (BILLING_PROJECT_ENV, "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reload_settings()
    assert billing_project(TableId("owner", "d", "t")) == expected


# --- iteration --------------------------------------------------------------------------------------------


# Every frame type over the Storage API; the REST path (pages of JSON, slow) once.
@pytest.mark.parametrize(("frame", "path"), [*((frame, "storage") for frame in FRAMES), ("arrow", "rest")])
def test_iter_yields_the_table_in_batches(emulator: Emulator, many_rows: str, frame: str, path: str) -> None:
    python_type, records, _, _ = FRAMES[frame]
    chunks: list[Any] = []

    @task
    def stream(sd: StructuredDataset) -> int:
        chunks.extend(sd.open(python_type).iter())
        return len(chunks)

    with _storage_endpoint(_endpoint_for(path, emulator)):
        stream(sd=StructuredDataset(uri=many_rows))
    assert len(chunks) > 1
    assert all(isinstance(chunk, python_type) for chunk in chunks)
    assert [row["id"] for chunk in chunks for row in records(chunk)] == list(range(1, 250_001))


# --- writing ------------------------------------------------------------------------------------------------

WRITTEN = pa.table(
    {
        "id": pa.array([1, 2], pa.int64()),
        "at": pa.array([dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC), None], pa.timestamp("us", tz="UTC")),
        "price": pa.array([decimal.Decimal("12.345"), None], pa.decimal128(38, 9)),
        "tags": pa.array([["x", "y"], []], pa.list_(pa.string())),
        "point": pa.array([{"x": 1.5, "y": "p"}, None], pa.struct([("x", pa.float64()), ("y", pa.string())])),
    }
)
WRITTEN_BIGQUERY_TYPES = [
    ("id", "INTEGER", "NULLABLE"),
    ("at", "TIMESTAMP", "NULLABLE"),
    ("price", "NUMERIC", "NULLABLE"),
]
WRITTEN_BIGQUERY_TYPES += [("tags", "STRING", "REPEATED"), ("point", "RECORD", "NULLABLE")]
AS_FRAME: dict[str, Callable[[pa.Table], Any]] = {
    "pandas": lambda table: table.to_pandas(),
    "arrow": lambda table: table,
    "polars": pl.from_arrow,
}


def _new_table(emulator: Emulator, name: str) -> str:
    return f"bq://{emulator.project}:{DATASET}.{name}_{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("frame", list(FRAMES))
def test_write_then_read_round_trips_values_and_types(
    emulator: Emulator, source: str, bq_client: bigquery.Client, frame: str
) -> None:
    python_type, records, _, _ = FRAMES[frame]
    uri = _new_table(emulator, f"round_trip_{frame}")
    data = AS_FRAME[frame](WRITTEN)
    seen: dict[str, Any] = {}

    @task
    def produce() -> StructuredDataset:
        return StructuredDataset(dataframe=data, uri=uri)

    @task
    def consume(sd: StructuredDataset) -> int:
        seen["back"] = sd.open(python_type).all()
        return 0

    @workflow
    def round_trip() -> int:
        return consume(sd=produce())

    round_trip()
    assert records(seen["back"]) == WRITTEN.to_pylist()
    schema = bq_client.get_table(TableId.parse(uri).reference).schema
    assert [(f.name, f.field_type, f.mode) for f in schema] == WRITTEN_BIGQUERY_TYPES


@pytest.mark.parametrize(
    ("table", "frame", "message"),
    [
        ("strict", pd.DataFrame({"a": ["x"]}), "Could not convert string 'x' to INT64"),
        ("strict", pd.DataFrame({"a": pd.array([None], dtype="Int64")}), "NOT NULL constraint failed"),
        ("no_such_dataset.t", pd.DataFrame({"a": [1]}), "Not found: Dataset"),
    ],
)
def test_a_failed_load_raises_with_bigquerys_message(
    emulator: Emulator, source: str, bq_client: bigquery.Client, table: str, frame: pd.DataFrame, message: str
) -> None:
    bq_client.query(f"CREATE TABLE IF NOT EXISTS {DATASET}.strict (a INT64 NOT NULL)").result()
    uri = f"bq://{emulator.project}:{table}" if "." in table else f"bq://{emulator.project}:{DATASET}.{table}"

    @task
    def produce() -> StructuredDataset:
        return StructuredDataset(dataframe=frame, uri=uri)

    with pytest.raises(Exception) as raised:
        produce()
    chain = _causes(raised.value)
    errors = [error for error in chain if isinstance(error, BigQueryJobError)]
    assert errors, f"no BigQueryJobError in {chain!r}"
    assert message in str(errors[0])
    assert uri in str(errors[0])


def _causes(error: BaseException | None) -> list[BaseException]:
    chain = []
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


@pytest.mark.parametrize(("disposition", "copies"), [(None, 2), ("WRITE_APPEND", 2), ("WRITE_TRUNCATE", 1)])
def test_write_disposition_decides_what_a_second_write_does(
    emulator: Emulator, source: str, monkeypatch: pytest.MonkeyPatch, disposition: str | None, copies: int
) -> None:
    if disposition is None:
        monkeypatch.delenv(WRITE_DISPOSITION_ENV, raising=False)
    else:
        monkeypatch.setenv(WRITE_DISPOSITION_ENV, disposition)
    reload_settings()
    uri = _new_table(emulator, "disposition")

    @task
    def produce() -> StructuredDataset:
        return StructuredDataset(dataframe=pa.table({"a": [1, 2]}), uri=uri)

    produce()
    produce()
    assert len(StructuredDataset(uri=uri).open(pa.Table).all()) == 2 * copies


# --- registration -----------------------------------------------------------------------------------------


@pytest.fixture
def restore_handlers() -> Iterator[None]:
    """Tests here reshuffle the global handler registry; leave ours registered afterwards."""
    yield
    register_handlers()


@pytest.mark.parametrize("frame", list(FRAMES))
def test_bq_handlers_are_ours_after_flytekits_lazy_registration(frame: str) -> None:
    python_type = FRAMES[frame][0]
    lazy_import_structured_dataset_handler()
    assert isinstance(StructuredDatasetTransformerEngine.get_decoder(python_type, "bq", ""), BigQueryDecoder)
    assert isinstance(StructuredDatasetTransformerEngine.get_encoder(python_type, "bq", ""), BigQueryEncoder)


def test_ours_replace_flytekits_when_flytekit_registered_first(restore_handlers: None) -> None:
    StructuredDatasetTransformerEngine.register(BQToPandasDecodingHandler(), override=True)
    StructuredDatasetTransformerEngine.register(PandasToBQEncodingHandlers(), override=True)
    register_handlers()
    assert isinstance(StructuredDatasetTransformerEngine.get_decoder(pd.DataFrame, "bq", ""), BigQueryDecoder)
    assert isinstance(StructuredDatasetTransformerEngine.get_encoder(pd.DataFrame, "bq", ""), BigQueryEncoder)


def test_ours_stay_when_flytekit_registers_after_us(restore_handlers: None) -> None:
    register_handlers()
    with contextlib.suppress(ValueError):  # flytekit's duplicate error, which its lazy loader logs and ignores
        register_bigquery_handlers.__wrapped__()
    assert isinstance(StructuredDatasetTransformerEngine.get_decoder(pd.DataFrame, "bq", ""), BigQueryDecoder)
    assert isinstance(StructuredDatasetTransformerEngine.get_encoder(pd.DataFrame, "bq", ""), BigQueryEncoder)


def test_other_protocols_keep_flytekits_handlers() -> None:
    """A dataframe through the local file system (flytekit's Parquet handlers) after a ``bq://`` round trip."""
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})

    @task
    def produce() -> pd.DataFrame:
        return frame

    @task
    def consume(table: pa.Table) -> pd.DataFrame:
        return table.to_pandas()

    @workflow
    def local() -> pd.DataFrame:
        return consume(table=produce())

    pd.testing.assert_frame_equal(local(), frame)
    assert not isinstance(StructuredDatasetTransformerEngine.get_decoder(pd.DataFrame, "file", ""), BigQueryDecoder)


# --- the wire format and the ordered parallel reader (no BigQuery) -------------------------------------


def test_zero_copy_parse_finds_the_record_batch_among_every_other_field() -> None:
    batch = pa.RecordBatch.from_pydict({"a": [1, 2, 3]})
    payload = batch.serialize().to_pybytes()
    response = storage_types.ReadRowsResponse(
        stats=storage_types.StreamStats(progress=storage_types.StreamStats.Progress(at_response_end=0.5)),
        arrow_record_batch=storage_types.ArrowRecordBatch(serialized_record_batch=payload, row_count=3),
        throttle_state=storage_types.ThrottleState(throttle_percent=7),
        row_count=3,
        arrow_schema=storage_types.ArrowSchema(serialized_schema=batch.schema.serialize().to_pybytes()),
        uncompressed_byte_size=123,
        total_estimated_row_count=3,
    )
    message = RowsMessage.parse(storage_types.ReadRowsResponse.serialize(response))
    assert message.row_count == 3
    assert message.record_batch is not None
    assert bytes(message.record_batch) == payload
    assert pa.ipc.read_record_batch(pa.py_buffer(message.record_batch), batch.schema).equals(batch)


def test_in_order_returns_every_producers_items_in_producer_order() -> None:
    producers = [lambda start=start: range(start, start + 100) for start in (0, 100, 200)]
    assert list(in_order(producers, workers=3, prefetch=2)) == list(range(300))


def test_in_order_raises_a_producers_error_when_its_turn_comes() -> None:
    def broken() -> Iterator[int]:
        yield 1
        raise RuntimeError("stream broke")

    items = in_order([lambda: [0], broken], workers=2)
    assert next(items) == 0
    assert next(items) == 1
    with pytest.raises(RuntimeError, match="stream broke"):
        next(items)


def test_in_order_stops_producers_when_the_consumer_stops() -> None:
    produced = []
    lock = threading.Lock()

    def endless(tag: int) -> Iterator[int]:
        while True:
            with lock:
                produced.append(tag)
            yield tag

    items = in_order([lambda: endless(0), lambda: endless(1)], workers=2, prefetch=2)
    assert next(items) == 0
    items.close()  # joins the producer threads
    count = len(produced)
    assert count <= 2 * (2 + 2)  # each producer: at most its queue plus one blocked item (and one in hand)
    assert 1 <= produced.count(0) <= 2 + 2 and produced.count(1) <= 2 + 1, produced  # queued + blocked (+ taken)
