"""The REST read path without a server: one tabledata.list page to Arrow, and the fallback warning."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import threading
from typing import Any

import pytest
from flyte_bigquery_core.io import storage
from flyte_bigquery_core.io.arrow_types import conform, target_schema
from flyte_bigquery_core.io.rest import _Decoder
from google.api_core import exceptions as api_exceptions
from google.cloud.bigquery import SchemaField

UTC = dt.timezone.utc
FLAT = [
    SchemaField("i", "INTEGER"),
    SchemaField("f", "FLOAT"),
    SchemaField("b", "BOOLEAN"),
    SchemaField("s", "STRING"),
    SchemaField("raw", "BYTES"),
    SchemaField("n", "NUMERIC"),
    SchemaField("big", "BIGNUMERIC"),
    SchemaField("ts", "TIMESTAMP"),
    SchemaField("d", "DATE"),
    SchemaField("dtm", "DATETIME"),
    SchemaField("t", "TIME"),
]
FLAT_CELLS = [
    "9007199254740993",
    "-Infinity",
    "true",
    "é\n",
    "YWI=",
    "1.25",
    "-1.5",
    "1704164645123456",
    "2024-02-29",
    "2024-01-02T03:04:05.123456",
    "03:04:05.500000",
]
FLAT_ROW = {
    "i": 9007199254740993,
    "f": float("-inf"),
    "b": True,
    "s": "é\n",
    "raw": b"ab",
    "n": decimal.Decimal("1.250000000"),
    "big": decimal.Decimal("-1.5"),
    "ts": dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    "d": dt.date(2024, 2, 29),
    "dtm": dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
    "t": dt.time(3, 4, 5, 500000),
}
NESTED = [
    SchemaField("p", "RECORD", fields=[SchemaField("x", "INTEGER"), SchemaField("at", "TIMESTAMP")]),
    SchemaField("tags", "INTEGER", "REPEATED"),
    SchemaField("items", "RECORD", "REPEATED", fields=[SchemaField("raw", "BYTES")]),
]


def _body(rows: list[list[Any]], more: bool = False, indent: int | None = None) -> bytes:
    response: dict[str, Any] = {"kind": "bigquery#tableDataList", "totalRows": str(len(rows))}
    if rows:
        response["rows"] = [{"f": [{"v": cell} for cell in row]} for row in rows]
    if more:
        response["pageToken"] = "next"
    return json.dumps(response, indent=indent).encode()


def _read(fields: list[SchemaField], body: bytes) -> tuple[list[dict[str, Any]], bool]:
    decoder = _Decoder(fields)
    page = decoder(body)
    return conform(page.batch, target_schema(page.batch.schema, fields)).to_pylist(), page.more


@pytest.mark.parametrize(
    ("fields", "rows", "expected"),
    [
        (FLAT, [FLAT_CELLS], [FLAT_ROW]),
        (FLAT, [[None] * len(FLAT)], [dict.fromkeys(FLAT_ROW)]),
        (
            NESTED,
            [
                [
                    {"f": [{"v": "1"}, {"v": "1704164645123456"}]},
                    [{"v": "1"}, {"v": "2"}],
                    [{"v": {"f": [{"v": "YWI="}]}}],
                ]
            ],
            [
                {
                    "p": {"x": 1, "at": dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)},
                    "tags": [1, 2],
                    "items": [{"raw": b"ab"}],
                }
            ],
        ),
        (NESTED, [[None, [], []]], [{"p": None, "tags": [], "items": []}]),
    ],
)
@pytest.mark.parametrize("indent", [None, 2])  # prettyPrint or not
def test_a_page_reads_as_the_bigquery_types(
    fields: list[SchemaField], rows: list[list[Any]], expected: list[dict[str, Any]], indent: int | None
) -> None:
    read, _ = _read(fields, _body(rows, indent=indent))
    assert read == expected


@pytest.mark.parametrize(("rows", "more"), [([], False), ([["1"]], True), ([["1"]], False)])
def test_a_page_says_whether_the_server_has_more(rows: list[list[Any]], more: bool) -> None:
    read, said = _read([SchemaField("i", "INTEGER")], _body(rows, more))
    assert (len(read), said) == (len(rows), more)


def test_a_page_of_rows_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError):
        _read([SchemaField("i", "INTEGER"), SchemaField("s", "STRING")], _body([["1"]]))


@pytest.mark.parametrize(
    ("error", "remedy"),
    [
        (api_exceptions.PermissionDenied("no"), "bigquery.readsessions.create on the billing project bill"),
        (api_exceptions.PermissionDenied("no"), "enable the BigQuery Storage API (bigquerystorage.googleapis.com)"),
        (api_exceptions.ServiceUnavailable("down"), "bigquerystorage.googleapis.com:443"),
        (api_exceptions.MethodNotImplemented("no"), "a server with the Storage Read API"),
        (RuntimeError("no credentials"), "Application Default Credentials"),
    ],
)
def test_the_fallback_warning_names_cause_and_remedy_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, error: Exception, remedy: str
) -> None:
    monkeypatch.setattr(storage, "_warned", threading.Event())
    caplog.set_level(logging.INFO, logger=storage.__name__)
    storage.warn_storage_unusable(error, "bill")
    storage.warn_storage_unusable(error, "bill")
    assert [record.levelno for record in caplog.records] == [logging.WARNING]
    message = caplog.records[0].getMessage()
    assert type(error).__name__ in message and remedy in message
