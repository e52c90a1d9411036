"""The core's literal decoder (flyte_bigquery_core.literal_values) on flyteidl's own ``Literal`` messages, as a
flytekit service receives them: every kind decodes to a plain value, pickles only through the restricted reader.

Here rather than in tests/core: the core's venv has no flyteidl, and these literals are built with its protobuf
classes (Flyte 2's flyteidl2 messages, which share the field names, go through it in tests/flyte2)."""

from __future__ import annotations

import datetime
import decimal
import os
import pickle
from pathlib import Path
from typing import Any

import msgpack
import pytest
from flyte_bigquery_core.errors import PermanentError, UnsupportedInputError
from flyte_bigquery_core.literal_values import PICKLE_FORMAT, pickle_uris, plain_values
from flyte_bigquery_core.sources import SourceRef
from flyteidl.core import literals_pb2 as lit
from flyteidl.core import types_pb2
from google.protobuf.duration_pb2 import Duration
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from .helpers import PICKLE_FILES

UTC = datetime.timezone.utc


def _scalar(**kind: Any) -> lit.Literal:
    return lit.Literal(scalar=lit.Scalar(**kind))


def _primitive(**kind: Any) -> lit.Literal:
    return _scalar(primitive=lit.Primitive(**kind))


def _int(value: int) -> lit.Literal:
    return _primitive(integer=value)


def _timestamp(value: datetime.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _file(uri: str, format: str = PICKLE_FORMAT) -> lit.Literal:
    blob_type = types_pb2.BlobType(format=format, dimensionality=types_pb2.BlobType.SINGLE)
    return _scalar(blob=lit.Blob(metadata=lit.BlobMetadata(type=blob_type), uri=uri))


def _list(*items: lit.Literal) -> lit.Literal:
    return lit.Literal(collection=lit.LiteralCollection(literals=list(items)))


def _map(**items: lit.Literal) -> lit.Literal:
    return lit.Literal(map=lit.LiteralMap(literals=items))


def _union(value: lit.Literal) -> lit.Literal:
    stored = types_pb2.LiteralType(simple=types_pb2.INTEGER)
    return _scalar(union=lit.Union(value=value, type=stored))


def _binary(value: bytes, tag: str) -> lit.Literal:
    return _scalar(binary=lit.Binary(value=value, tag=tag))


def _generic(value: dict[str, Any]) -> lit.Literal:
    struct = Struct()
    struct.update(value)
    return _scalar(generic=struct)


# --- pickle_uris ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literals", "uris"),
    [
        pytest.param({"a": _int(1)}, {}, id="inputs-without-pickles-left-out"),
        pytest.param({"a": _file("s3://b/a")}, {"a": ["s3://b/a"]}, id="top-level"),
        pytest.param(
            {"a": _list(_file("s3://b/1"), _int(2), _file("s3://b/2"))}, {"a": ["s3://b/1", "s3://b/2"]}, id="list"
        ),
        pytest.param({"a": _map(k=_file("s3://b/k"))}, {"a": ["s3://b/k"]}, id="map"),
        pytest.param({"a": _union(_file("s3://b/u"))}, {"a": ["s3://b/u"]}, id="union"),
        pytest.param({"a": _list(_union(_map(k=_file("s3://b/deep"))))}, {"a": ["s3://b/deep"]}, id="nested"),
        pytest.param({"a": _list(_file("s3://b/x"), _file("s3://b/x"))}, {"a": ["s3://b/x"]}, id="once-per-input"),
        pytest.param(
            {"a": _file("s3://b/x"), "b": _file("s3://b/x")}, {"a": ["s3://b/x"], "b": ["s3://b/x"]}, id="by-input"
        ),
        pytest.param({"a": _file("s3://b/t.csv", format="csv")}, {}, id="not-a-pickle"),
        pytest.param({"a": _binary(pickle.dumps(b"x"), tag="")}, {}, id="inline-pickle-is-no-file"),
    ],
)
def test_pickle_uris_lists_each_inputs_pickle_files(
    literals: dict[str, lit.Literal], uris: dict[str, list[str]]
) -> None:
    assert pickle_uris(literals) == uris


# --- plain_values -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        pytest.param(_int(-7), -7, id="integer"),
        pytest.param(_primitive(float_value=1.5), 1.5, id="float"),
        pytest.param(_primitive(string_value="x"), "x", id="string"),
        pytest.param(_primitive(string_value=""), "", id="empty-string"),
        pytest.param(_primitive(boolean=False), False, id="boolean"),
        pytest.param(
            _primitive(datetime=_timestamp(datetime.datetime(2024, 2, 29, 1, 2, 3, 4))),
            datetime.datetime(2024, 2, 29, 1, 2, 3, 4, tzinfo=UTC),
            id="datetime-in-utc",
        ),
        pytest.param(
            _primitive(duration=Duration(seconds=90, nanos=1000)),
            datetime.timedelta(seconds=90, microseconds=1),
            id="duration",
        ),
        pytest.param(_scalar(none_type=lit.Void()), None, id="none"),
        pytest.param(_union(_int(3)), 3, id="union"),
        pytest.param(_union(_scalar(none_type=lit.Void())), None, id="union-holding-none"),
        pytest.param(_list(_int(1), _int(2)), [1, 2], id="list"),
        pytest.param(_list(), [], id="empty-list"),
        pytest.param(_map(a=_int(1)), {"a": 1}, id="map"),
        pytest.param(
            _binary(msgpack.packb({"x": 1, "seen": "2024-05-06"}), tag="msgpack"),
            {"x": 1, "seen": "2024-05-06"},
            id="msgpack",
        ),
        pytest.param(_binary(msgpack.packb({1: "a"}), tag="msgpack"), {1: "a"}, id="msgpack-int-keys"),
        pytest.param(_generic({"x": 1.0, "y": "a"}), {"x": 1.0, "y": "a"}, id="generic"),
        pytest.param(_file("s3://b/bytes"), b"\x00\xff", id="pickle-file-bytes"),
        pytest.param(_file("s3://b/decimal"), decimal.Decimal("1.25"), id="pickle-file-decimal"),
        pytest.param(_list(_file("s3://b/time")), [datetime.time(1, 2, 3)], id="pickle-file-in-list"),
        pytest.param(_binary(pickle.dumps(decimal.Decimal("2.5")), tag=""), decimal.Decimal("2.5"), id="inline-pickle"),
        pytest.param(_file("s3://b/t.csv", format="csv"), SourceRef("file", "s3://b/t.csv"), id="file-a-reference"),
    ],
)
def test_plain_values_decode_each_literal_kind(literal: lit.Literal, value: Any) -> None:
    assert plain_values({"p": literal}, PICKLE_FILES, "t") == {"p": value}


# (literal, pickle files, error class, a fragment of the message)
REFUSALS = [
    pytest.param(lit.Literal(), {}, UnsupportedInputError, "unsupported literal kind", id="empty-literal"),
    pytest.param(_primitive(), {}, UnsupportedInputError, "holds no value", id="empty-primitive"),
    pytest.param(_binary(b"\x01", tag="proto"), {}, UnsupportedInputError, "'proto'", id="binary-of-unknown-tag"),
    pytest.param(_binary(b"\xc1", tag="msgpack"), {}, UnsupportedInputError, "msgpack", id="malformed-msgpack"),
    pytest.param(
        _scalar(schema=lit.Schema(uri="s3://b/s")), {}, UnsupportedInputError, "scalar kind 'schema'", id="schema"
    ),
    pytest.param(_file("s3://b/unread"), {}, PermanentError, "could not be read", id="pickle-file-not-read"),
    pytest.param(_file("s3://b/l"), {"s3://b/l": pickle.dumps([1])}, UnsupportedInputError, "refus", id="pickled-list"),
    pytest.param(_binary(pickle.dumps({1}), tag=""), {}, UnsupportedInputError, "refus", id="inline-pickled-set"),
    pytest.param(
        _list(_int(1), lit.Literal()), {}, UnsupportedInputError, "unsupported literal kind", id="inside-a-list"
    ),
]


@pytest.mark.parametrize(("literal", "files", "error", "fragment"), REFUSALS)
def test_plain_values_refusal_names_task_and_input(
    literal: lit.Literal, files: dict[str, bytes], error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as caught:
        plain_values({"p": literal}, files, "my_task")
    message = str(caught.value)
    assert message.startswith("task 'my_task': input 'p'")
    assert fragment in message


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("where", ["file", "inline"])
def test_pickle_that_would_run_code_is_refused_without_running_it(tmp_path: Path, where: str) -> None:
    payload = pickle.dumps(_Evil(tmp_path / "pwned"))
    literal = _file("s3://b/evil") if where == "file" else _binary(payload, tag="")
    with pytest.raises(UnsupportedInputError, match=r"task 'evil': input 'b'.*refus"):
        plain_values({"b": literal}, {"s3://b/evil": payload}, "evil")
    assert not (tmp_path / "pwned").exists()
