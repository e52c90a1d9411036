"""Flyte literals → plain values in the connector: pickle files found by scanning, decoded without unpickling."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import os
import pickle
from pathlib import Path
from typing import Any

import msgpack
import pytest
from flyte_bigquery_core.errors import PermanentError, UnsupportedInputError
from flyte_bigquery_core.sources import SourceRef
from flytekit import FlyteContextManager
from flytekit.core.type_engine import TypeEngine
from flytekit.models.core.types import BlobType
from flytekit.models.literals import (
    Binary,
    Blob,
    BlobMetadata,
    Literal,
    LiteralCollection,
    LiteralMap,
    Primitive,
    Scalar,
    Union,
    Void,
)
from flytekit.models.types import LiteralType, SimpleType
from google.protobuf.struct_pb2 import Struct

from flytekitplugins.bigquery.literals import pickled_inputs, plain_values

from .helpers import PICKLE_FILES

UTC = datetime.timezone.utc
PLUS_5 = datetime.timezone(datetime.timedelta(hours=5))


def _int(value: int) -> Literal:
    return Literal(scalar=Scalar(primitive=Primitive(integer=value)))


def _str(value: str) -> Literal:
    return Literal(scalar=Scalar(primitive=Primitive(string_value=value)))


def _blob(uri: str, format: str = "PythonPickle") -> Literal:
    blob_type = BlobType(format=format, dimensionality=BlobType.BlobDimensionality.SINGLE)
    return Literal(scalar=Scalar(blob=Blob(metadata=BlobMetadata(type=blob_type), uri=uri)))


def _list(*items: Literal) -> Literal:
    return Literal(collection=LiteralCollection(literals=list(items)))


def _map(**items: Literal) -> Literal:
    return Literal(map=LiteralMap(literals=items))


def _union(value: Literal) -> Literal:
    return Literal(scalar=Scalar(union=Union(value=value, stored_type=LiteralType(simple=SimpleType.INTEGER))))


def _binary(value: bytes, tag: str = "msgpack") -> Literal:
    return Literal(scalar=Scalar(binary=Binary(value=value, tag=tag)))


def _generic(value: dict[str, Any]) -> Literal:
    struct = Struct()
    struct.update(value)
    return Literal(scalar=Scalar(generic=struct))


# --- pickled_inputs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literals", "uris"),
    [
        pytest.param({"a": _int(1), "b": _str("x")}, [], id="no-pickles"),
        pytest.param({"a": _blob("s3://b/a")}, ["s3://b/a"], id="top-level"),
        pytest.param({"a": _list(_blob("s3://b/1"), _int(2), _blob("s3://b/2"))}, ["s3://b/1", "s3://b/2"], id="list"),
        pytest.param({"a": _map(k=_blob("s3://b/k"))}, ["s3://b/k"], id="map"),
        pytest.param({"a": _union(_blob("s3://b/u"))}, ["s3://b/u"], id="union"),
        pytest.param({"a": _list(_union(_map(k=_blob("s3://b/deep"))))}, ["s3://b/deep"], id="nested"),
        pytest.param({"a": _blob("s3://b/a"), "b": _list(_blob("s3://b/a"))}, ["s3://b/a"], id="each-uri-once"),
        pytest.param({"a": _blob("s3://b/t.csv", format="csv")}, [], id="not-a-pickle"),
        pytest.param({"b": _blob("s3://b/2"), "a": _blob("s3://b/1")}, ["s3://b/2", "s3://b/1"], id="input-order"),
    ],
)
def test_pickled_inputs_lists_every_pickle_file(literals: dict[str, Literal], uris: list[str]) -> None:
    assert pickled_inputs(literals) == uris


# --- plain_values -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        pytest.param(_int(7), 7, id="int"),
        pytest.param(_str("x"), "x", id="str"),
        pytest.param(Literal(scalar=Scalar(primitive=Primitive(float_value=1.5))), 1.5, id="float"),
        pytest.param(Literal(scalar=Scalar(primitive=Primitive(boolean=True))), True, id="bool"),
        pytest.param(
            Literal(scalar=Scalar(primitive=Primitive(datetime=datetime.datetime(2024, 2, 29, tzinfo=UTC)))),
            datetime.datetime(2024, 2, 29, tzinfo=UTC),
            id="datetime",
        ),
        pytest.param(Literal(scalar=Scalar(none_type=Void())), None, id="none"),
        pytest.param(_union(_int(3)), 3, id="union"),
        pytest.param(_list(_int(1), _int(2)), [1, 2], id="list"),
        pytest.param(_map(a=_int(1)), {"a": 1}, id="map"),
        pytest.param(
            _binary(msgpack.packb({"x": 1, "seen": "2024-05-06"})), {"x": 1, "seen": "2024-05-06"}, id="msgpack"
        ),
        pytest.param(_generic({"x": 1.0, "y": "a"}), {"x": 1.0, "y": "a"}, id="generic"),
        pytest.param(_blob("s3://b/bytes"), b"\x00\xff", id="pickled-bytes"),
        pytest.param(_blob("s3://b/decimal"), decimal.Decimal("1.25"), id="pickled-decimal"),
        pytest.param(_list(_blob("s3://b/time")), [datetime.time(1, 2, 3)], id="pickled-time-in-list"),
        pytest.param(_blob("s3://b/t.csv", format="csv"), SourceRef("file", "s3://b/t.csv"), id="file-a-reference"),
    ],
)
def test_plain_values_decode_each_literal_kind(literal: Literal, value: Any) -> None:
    assert plain_values({"p": literal}, PICKLE_FILES, "t") == {"p": value}


# (literal, blobs, error class, fragments of the message)
REFUSALS = [
    pytest.param(_binary(b"\x01", tag="proto"), {}, UnsupportedInputError, ["'proto'"], id="binary-of-unknown-tag"),
    pytest.param(_binary(b"\xc1"), {}, UnsupportedInputError, ["msgpack"], id="malformed-msgpack"),
    pytest.param(_blob("s3://b/unread"), {}, PermanentError, ["could not be read"], id="pickle-not-read"),
    pytest.param(
        _blob("s3://b/list"), {"s3://b/list": pickle.dumps([1])}, UnsupportedInputError, ["refus"], id="pickled-list"
    ),
    pytest.param(Literal(), {}, UnsupportedInputError, ["unsupported literal kind"], id="empty-literal"),
    pytest.param(
        Literal(scalar=Scalar(primitive=Primitive(datetime=datetime.datetime(1, 1, 1, tzinfo=PLUS_5)))),
        {},
        UnsupportedInputError,
        ["cannot hold", "OverflowError"],
        id="zoned-datetime-before-year-1-in-utc",
    ),
]


@pytest.mark.parametrize(("literal", "blobs", "error", "fragments"), REFUSALS)
def test_plain_values_refusal_names_task_and_input(
    literal: Literal, blobs: dict[str, bytes], error: type[Exception], fragments: list[str]
) -> None:
    with pytest.raises(error) as caught:
        plain_values({"p": literal}, blobs, "my_task")
    message = str(caught.value)
    assert message.startswith("task 'my_task': input 'p'")
    for fragment in fragments:
        assert fragment in message


def test_pickle_that_would_run_code_is_refused_without_running_it(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    with pytest.raises(UnsupportedInputError, match=r"task 'evil': input 'b'.*refus"):
        plain_values({"b": _blob("s3://b/evil")}, {"s3://b/evil": pickle.dumps(Evil())}, "evil")
    assert not (tmp_path / "pwned").exists()


@dataclasses.dataclass
class Visit:
    x: int
    seen: datetime.date


def test_literals_written_by_flytekit_decode_to_plain_values() -> None:
    """The type engine's own literals: bytes and Decimal become pickle files, a dataclass msgpack."""
    ctx = FlyteContextManager.current_context()
    python_types = {"raw": bytes, "amount": decimal.Decimal, "visit": Visit, "day": datetime.date}
    values = {
        "raw": b"\x00\x01",
        "amount": decimal.Decimal("1.25"),
        "visit": Visit(1, datetime.date(2024, 5, 6)),
        "day": datetime.date(2024, 2, 29),
    }
    literals = TypeEngine.dict_to_literal_map(ctx, values, python_types).literals
    uris = pickled_inputs(literals)
    assert len(uris) == 2
    blobs = {uri: Path(uri.removeprefix("file://")).read_bytes() for uri in uris}
    plain = plain_values(literals, blobs, "t")
    assert plain == {
        "raw": b"\x00\x01",
        "amount": decimal.Decimal("1.25"),
        "visit": {"x": 1, "seen": "2024-05-06"},
        "day": datetime.datetime(2024, 2, 29, tzinfo=UTC),
    }
