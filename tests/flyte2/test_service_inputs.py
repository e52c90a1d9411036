"""Inputs reach a connector decoded, and pickles never run: the service against Flyte 2's own conversion.

Flyte 2 sends ``Decimal``, ``bytes``, ``time`` and unknown classes as cloudpickles; its server unpickles them.
Over real gRPC, the launcher must hand the echo connector (``service_helpers.EchoConnector``) the legitimate
values and refuse a payload that would run code — with a clear error, still serving. Requests are built with
flyte's own serializer. Pickle files in a blob store are read with ``flyte.storage`` from fsspec's in-memory
store (a real filesystem of this process), so those cases run in-process against ``input_values``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import enum
import inspect
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Optional

import cloudpickle
import fsspec
import grpc
import pytest
import pytest_asyncio
from flyte._internal.runtime.convert import Inputs, convert_from_inputs_to_native
from flyte.models import NativeInterface
from flyte_bigquery_core.errors import PermanentError, UnsupportedInputError
from flyte_bigquery_core.literal_values import MAX_PICKLED_INPUT_BYTES, PICKLE_FORMAT
from flyte_bigquery_core.sources import SourceRef
from flyte_bigquery_core.testing.service_process import ServiceProcess
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_pb2_grpc import AsyncConnectorServiceStub
from flyteidl2.core import literals_pb2, types_pb2
from flyteidl2.task import common_pb2
from flyteplugins.bigquery._service_inputs import input_values

from .service_helpers import (
    ECHO_CATEGORY,
    GRPC_OPTIONS,
    MaliciousPickle,
    create_request,
    echoed,
    inputs_of,
    service_process,
)


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    at: datetime.datetime


@pytest.fixture(scope="module")
def service() -> Iterator[ServiceProcess]:
    with service_process() as process:
        yield process


@pytest_asyncio.fixture
async def stub(service: ServiceProcess) -> AsyncIterator[AsyncConnectorServiceStub]:
    async with grpc.aio.insecure_channel(service.target, options=GRPC_OPTIONS) as channel:
        yield AsyncConnectorServiceStub(channel)


async def _received(stub: AsyncConnectorServiceStub, inputs: common_pb2.Inputs | None) -> dict[str, list[str]]:
    """What the connector was handed for ``inputs``: name → [class name, repr]."""
    meta = (await stub.CreateTask(create_request(inputs), timeout=30)).resource_meta
    got = await stub.GetTask(pb.GetTaskRequest(task_category=ECHO_CATEGORY, resource_meta=meta), timeout=30)
    return echoed(got.resource)


async def _refusal(stub: AsyncConnectorServiceStub, inputs: common_pb2.Inputs) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateTask(create_request(inputs, name="query_with_inputs"), timeout=30)
    return info.value.code(), info.value.details() or ""


def _pickle_file(uri: str) -> literals_pb2.Literal:
    """A pickle-file literal, as Flyte 2 sends a pickle too large to travel inline."""
    blob_type = types_pb2.BlobType(format=PICKLE_FORMAT, dimensionality=types_pb2.BlobType.SINGLE)
    blob = literals_pb2.Blob(uri=uri, metadata=literals_pb2.BlobMetadata(type=blob_type))
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(blob=blob))


def _inputs(**literals: literals_pb2.Literal) -> common_pb2.Inputs:
    return common_pb2.Inputs(literals=[common_pb2.NamedLiteral(name=n, value=v) for n, v in literals.items()])


# --- the payload ----------------------------------------------------------------------------------------------


def test_flyte_2s_own_conversion_runs_the_payload(tmp_path: Path) -> None:
    """The threat, shown: the literal the next tests send runs its command under Flyte 2's own conversion."""
    marker = tmp_path / "pwned"
    inputs = asyncio.run(inputs_of({"n": (MaliciousPickle, MaliciousPickle(marker))}))
    interface = NativeInterface.from_types(inputs={"n": (MaliciousPickle, inspect.Parameter.empty)}, outputs={})
    asyncio.run(convert_from_inputs_to_native(interface, Inputs(proto_inputs=inputs)))
    assert marker.exists()


@pytest.mark.parametrize(
    ("python_type", "wrap"),
    [
        (MaliciousPickle, lambda payload: payload),
        (list[MaliciousPickle], lambda payload: [payload]),
        (dict[str, MaliciousPickle], lambda payload: {"k": payload}),
        (Optional[MaliciousPickle], lambda payload: payload),
    ],
    ids=["inline", "in-a-list", "in-a-map", "in-a-union"],
)
@pytest.mark.asyncio
async def test_a_malicious_pickle_never_runs_and_the_task_is_refused_clearly(
    service: ServiceProcess, stub: AsyncConnectorServiceStub, tmp_path: Path, python_type: Any, wrap: Any
) -> None:
    marker = tmp_path / "pwned"
    code, details = await _refusal(stub, await inputs_of({"n": (python_type, wrap(MaliciousPickle(marker)))}))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("task 'query_with_inputs': input 'n': Pickled input: refusing to unpickle")
    assert "posix.system" in details
    assert str(marker) not in details
    assert not marker.exists()
    assert str(marker) not in service.log_text()
    assert await _received(stub, await inputs_of({"n": (int, 1)})) == {"n": ["int", "1"]}  # still serving


@pytest.mark.asyncio
async def test_a_pickle_file_on_the_service_s_own_disk_is_not_read(
    stub: AsyncConnectorServiceStub, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    payload = tmp_path / "payload.pkl"
    payload.write_bytes(cloudpickle.dumps(MaliciousPickle(marker)))
    for uri in (str(payload), f"file://{payload}"):
        code, details = await _refusal(stub, _inputs(n=_pickle_file(uri)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert "input 'n': a pickled input must be in the blob store, not a local path" in details
        assert str(payload) not in details
    assert not marker.exists()


# --- legitimate values ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_pickled_decimal_bytes_and_time_arrive_as_their_values(stub: AsyncConnectorServiceStub) -> None:
    sent = {
        "amount": (decimal.Decimal, decimal.Decimal("-12345.000000001")),
        "blob": (bytes, b"\x00\xff\x80 bytes"),
        "at": (datetime.time, datetime.time(23, 59, 58, 999)),
        "amounts": (list[decimal.Decimal], [decimal.Decimal("1.1"), decimal.Decimal("2")]),
        "maybe": (Optional[bytes], b"x"),
        "nothing": (Optional[bytes], None),
    }
    assert await _received(stub, await inputs_of(sent)) == {
        "amount": ["Decimal", "Decimal('-12345.000000001')"],
        "blob": ["bytes", repr(b"\x00\xff\x80 bytes")],
        "at": ["time", "datetime.time(23, 59, 58, 999)"],
        "amounts": ["list", "[Decimal('1.1'), Decimal('2')]"],
        "maybe": ["bytes", "b'x'"],
        "nothing": ["NoneType", "None"],
    }


@pytest.mark.asyncio
async def test_other_inputs_arrive_as_plain_values(stub: AsyncConnectorServiceStub) -> None:
    at = datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc)
    sent = {
        "n": (int, 7),
        "ratio": (float, 0.5),
        "flag": (bool, True),
        "name": (str, "O'Brien"),
        "at": (datetime.datetime, at),
        "day": (datetime.date, datetime.date(2024, 1, 2)),
        "gap": (datetime.timedelta, datetime.timedelta(hours=1, microseconds=5)),
        "ids": (list[int], [1, 2]),
        "counts": (dict[str, int], {"a": 1}),
        "doc": (dict, {"k": [1, {"j": None}]}),
        "point": (Point, Point(1, datetime.datetime(2024, 1, 1))),
        "color": (Color, Color.RED),
    }
    assert await _received(stub, await inputs_of(sent)) == {
        "n": ["int", "7"],
        "ratio": ["float", "0.5"],
        "flag": ["bool", "True"],
        "name": ["str", repr("O'Brien")],
        "at": ["datetime", repr(at)],
        # Flyte's literals lose these types; the task's recorded InputTypes shape them afterwards.
        "day": ["datetime", repr(datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc))],
        "gap": ["timedelta", repr(datetime.timedelta(hours=1, microseconds=5))],
        "ids": ["list", "[1, 2]"],
        "counts": ["dict", "{'a': 1}"],
        "doc": ["dict", "{'k': [1, {'j': None}]}"],
        "point": ["dict", "{'x': 1, 'at': '2024-01-01T00:00:00'}"],
        "color": ["str", "'RED'"],
    }


@pytest.mark.asyncio
async def test_a_request_without_inputs_gives_the_connector_none(stub: AsyncConnectorServiceStub) -> None:
    assert await _received(stub, None) == {}


# --- pickle files in a blob store (in-process: fsspec's memory store) -------------------------------------------


@pytest.fixture
def store() -> Iterator[fsspec.AbstractFileSystem]:
    memory = fsspec.filesystem("memory")
    yield memory
    memory.rm("/svc-inputs", recursive=True) if memory.exists("/svc-inputs") else None


def _put(store: fsspec.AbstractFileSystem, name: str, data: bytes) -> str:
    uri = f"memory://svc-inputs/{name}"
    with store.open(uri, "wb") as f:
        f.write(data)
    return uri


def test_a_pickle_file_in_the_blob_store_is_read_and_decoded(store: fsspec.AbstractFileSystem) -> None:
    uri = _put(store, "big.pkl", cloudpickle.dumps(b"\x01" * 20_000))
    inner = literals_pb2.LiteralCollection(literals=[_pickle_file(uri), _pickle_file(uri)])
    values = asyncio.run(
        input_values(_inputs(blob=_pickle_file(uri), twice=literals_pb2.Literal(collection=inner)), "t")
    )
    assert values == {"blob": b"\x01" * 20_000, "twice": [b"\x01" * 20_000] * 2}


def test_a_malicious_pickle_file_in_the_blob_store_never_runs(store: fsspec.AbstractFileSystem, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    uri = _put(store, "evil.pkl", cloudpickle.dumps(MaliciousPickle(marker)))
    with pytest.raises(UnsupportedInputError, match=r"^task 't': input 'n': Pickled input: refusing"):
        asyncio.run(input_values(_inputs(n=_pickle_file(uri)), "t"))
    assert not marker.exists()


def test_a_pickle_file_over_the_cap_is_refused_unread(store: fsspec.AbstractFileSystem) -> None:
    uri = _put(store, "huge.pkl", b"\x00" * (MAX_PICKLED_INPUT_BYTES + 1))
    with pytest.raises(UnsupportedInputError, match=r"input 'n': a pickled input is larger than 16 MiB"):
        asyncio.run(input_values(_inputs(n=_pickle_file(uri)), "t"))


def test_a_missing_pickle_file_is_a_permanent_error_naming_the_input() -> None:
    with pytest.raises(PermanentError, match=r"^task 't': input 'n': the pickled input could not be read \(\w+\)$"):
        asyncio.run(input_values(_inputs(n=_pickle_file("memory://svc-inputs/none.pkl")), "t"))


_FILE = types_pb2.BlobType(format="csv", dimensionality=types_pb2.BlobType.SINGLE)
_DIR = types_pb2.BlobType(format="", dimensionality=types_pb2.BlobType.MULTIPART)


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        (
            literals_pb2.Literal(
                scalar=literals_pb2.Scalar(blob=literals_pb2.Blob(uri="gs://b/f.csv", metadata={"type": _FILE}))
            ),
            SourceRef("file", "gs://b/f.csv"),
        ),
        (
            literals_pb2.Literal(
                scalar=literals_pb2.Scalar(blob=literals_pb2.Blob(uri="gs://b/dir", metadata={"type": _DIR}))
            ),
            SourceRef("directory", "gs://b/dir"),
        ),
        (
            literals_pb2.Literal(
                scalar=literals_pb2.Scalar(
                    structured_dataset=literals_pb2.StructuredDataset(
                        uri="gs://b/frame",
                        metadata=literals_pb2.StructuredDatasetMetadata(
                            structured_dataset_type=types_pb2.StructuredDatasetType(format="parquet")
                        ),
                    )
                )
            ),
            SourceRef("dataset", "gs://b/frame", "parquet"),
        ),
    ],
    ids=["file", "directory", "dataframe"],
)
def test_files_directories_and_dataframes_arrive_as_references_never_read(
    literal: literals_pb2.Literal, expected: SourceRef
) -> None:
    """A load task's source; a query refuses it when planned (tests/core/test_planning.py)."""
    assert asyncio.run(input_values(_inputs(n=literal), "t")) == {"n": expected}


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        (
            literals_pb2.Literal(offloaded_metadata=literals_pb2.LiteralOffloadedMetadata(uri="s3://b/k")),
            "input 'n': unsupported literal kind 'offloaded_metadata'; expected a scalar, list or map",
        ),
        (
            literals_pb2.Literal(scalar=literals_pb2.Scalar(binary=literals_pb2.Binary(value=b"x", tag="arrow"))),
            "input 'n': binary literal with tag 'arrow' is not supported",
        ),
        (
            literals_pb2.Literal(scalar=literals_pb2.Scalar(binary=literals_pb2.Binary(value=b"\xc1", tag="msgpack"))),
            "input 'n': the msgpack value could not be decoded",
        ),
    ],
    ids=["offloaded", "other-binary", "bad-msgpack"],
)
def test_a_literal_that_cannot_be_a_parameter_is_refused_naming_the_input(
    literal: literals_pb2.Literal, message: str
) -> None:
    with pytest.raises(UnsupportedInputError) as info:
        asyncio.run(input_values(_inputs(n=literal), "t"))
    assert str(info.value).startswith(f"task 't': {message}")
