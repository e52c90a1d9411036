"""The BigQuery Storage Read API, read without copying the rows.

Why not the generated client's ``read_rows``: it parses every ``ReadRowsResponse`` into a protobuf message
(one copy of the rows) and hands out the Arrow payload as a new ``bytes`` (a second copy). With several
streams in flight that is two extra copies of everything read at once, which is most of a read's peak
memory. Here ``ReadRows`` is called on the client's own channel with a deserializer that only locates the
Arrow record batch inside the bytes gRPC received and returns a zero-copy view of it, which pyarrow then
decodes in place. The generated client still creates sessions, and google's :class:`ReadRowsStream` still
drives each stream, so a broken stream resumes at the right offset exactly as with the generated client.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.api_core import grpc_helpers
from google.auth.credentials import Credentials
from google.cloud.bigquery_storage_v1 import BigQueryReadClient
from google.cloud.bigquery_storage_v1 import types as storage_types
from google.cloud.bigquery_storage_v1.reader import ReadRowsStream
from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

from ..settings import STORAGE_EMULATOR_HOST_ENV, Settings, current_settings

__all__ = ["STORAGE_EMULATOR_HOST_ENV", "RowsMessage", "StorageApi", "StorageConnections", "warn_storage_unusable"]

logger = logging.getLogger(__name__)

# STORAGE_EMULATOR_HOST_ENV: ``host:port`` of a Storage Read API without TLS or credentials (a local
# BigQuery's gRPC port). The Storage client does not read ``BIGQUERY_EMULATOR_HOST``, so it needs its own.
_READ_ROWS = "/google.cloud.bigquery.storage.v1.BigQueryRead/ReadRows"
#: gRPC's default 4 MiB receive limit is smaller than one Storage Read message can be (up to 128 MiB).
_UNLIMITED_MESSAGES = (("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1))

# Field numbers in google/cloud/bigquery/storage/v1/storage.proto and arrow.proto.
_RESPONSE_ARROW_RECORD_BATCH = 4
_RESPONSE_ROW_COUNT = 6
_BATCH_SERIALIZED = 1
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


def _varint(view: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = view[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(view: memoryview) -> Iterator[tuple[int, int | memoryview | None]]:
    """``(field number, value)`` of one protobuf message: ints for varints, views for length-delimited
    fields, ``None`` for fixed-width ones (none of which we need)."""
    pos, end = 0, len(view)
    while pos < end:
        key, pos = _varint(view, pos)
        number, wire = key >> 3, key & 7
        value: int | memoryview | None
        if wire == _VARINT:
            value, pos = _varint(view, pos)
        elif wire == _LENGTH_DELIMITED:
            size, pos = _varint(view, pos)
            value, pos = view[pos : pos + size], pos + size
        elif wire in (_FIXED64, _FIXED32):
            value, pos = None, pos + (8 if wire == _FIXED64 else 4)
        else:
            raise ValueError(f"malformed ReadRowsResponse: wire type {wire} for field {number}")
        yield number, value


@dataclass(frozen=True)
class RowsMessage:
    """The two parts of a ``ReadRowsResponse`` a reader needs; ``record_batch`` views the received bytes."""

    row_count: int
    record_batch: memoryview | None

    @classmethod
    def parse(cls, data: bytes) -> RowsMessage:
        row_count, record_batch = 0, None
        for number, value in _fields(memoryview(data)):
            if number == _RESPONSE_ROW_COUNT and isinstance(value, int):
                row_count = value
            elif number == _RESPONSE_ARROW_RECORD_BATCH and isinstance(value, memoryview):
                for inner, payload in _fields(value):
                    if inner == _BATCH_SERIALIZED and isinstance(payload, memoryview):
                        record_batch = payload
        return cls(row_count, record_batch)


class _ZeroCopyReadRows:
    """Quacks like the generated client's ``read_rows`` for :class:`ReadRowsStream`, returning
    :class:`RowsMessage` objects; gRPC errors become google.api_core exceptions, as ReadRowsStream expects."""

    def __init__(self, channel: grpc.Channel) -> None:
        stub = channel.unary_stream(
            _READ_ROWS,
            request_serializer=storage_types.ReadRowsRequest.serialize,
            response_deserializer=RowsMessage.parse,
        )
        self._call = grpc_helpers.wrap_errors(stub)

    def read_rows(self, read_stream: str, offset: int = 0, **kwargs: Any) -> Iterator[RowsMessage]:
        request = storage_types.ReadRowsRequest(read_stream=read_stream, offset=offset)
        # The routing header real BigQuery needs to find the stream (the generated client adds the same).
        metadata = [("x-goog-request-params", f"read_stream={read_stream}")]
        return iter(self._call(request, metadata=metadata))


class StorageApi:
    """One Storage Read endpoint: the generated client for sessions, zero-copy ``ReadRows`` for rows."""

    def __init__(self, client: BigQueryReadClient, channel: grpc.Channel) -> None:
        self.client = client
        self._rows = _ZeroCopyReadRows(channel)

    def record_batches(self, stream: str) -> Iterator[memoryview]:
        """The serialized Arrow record batches of one read stream, resuming after transient failures."""
        messages = ReadRowsStream(self._rows, stream, 0, {})
        try:
            for message in messages:
                if message.record_batch is not None and len(message.record_batch):
                    yield message.record_batch
        finally:
            messages.cancel()  # a consumer that stops early must not leave the call streaming


_warned = threading.Event()

#: What fixes each kind of refusal (by google.api_core exception class name).
_REMEDIES = {
    "PermissionDenied": (
        "grant the caller bigquery.readsessions.create on the billing project {billing} (e.g. the role "
        "roles/bigquery.readSessionUser), or enable the BigQuery Storage API (bigquerystorage.googleapis.com) "
        "there if the message says it is disabled"
    ),
    "MethodNotImplemented": "point {env} at a server with the Storage Read API, or unset it",
    "ServiceUnavailable": "check that bigquerystorage.googleapis.com:443 (or {env}) is reachable from here",
}
_NO_CLIENT = "provide credentials gRPC can use (Application Default Credentials), and the google-auth transport"


def warn_storage_unusable(cause: BaseException, billing: str | None = None) -> None:
    """Say once per process, at WARNING, that ``bq://`` reads fall back to the REST API, why, and what fixes it;
    later fallbacks are left to the caller's INFO line."""
    if _warned.is_set():
        return
    _warned.set()
    remedy = _REMEDIES.get(type(cause).__name__, _NO_CLIENT)
    logger.warning(
        "bq:// reads use the REST API, several times slower than the BigQuery Storage Read API, which cannot be "
        "used: %s: %s. To fix: %s. (Shown once per process.)",
        type(cause).__name__,
        cause,
        remedy.format(billing=billing or "", env=STORAGE_EMULATOR_HOST_ENV),
    )


def _connect(target: str, credentials: Credentials | None = None) -> StorageApi | None:
    if target:
        channel = grpc.insecure_channel(target, options=_UNLIMITED_MESSAGES)
        return StorageApi(BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=channel)), channel)
    try:
        client = BigQueryReadClient(credentials=credentials)
    except Exception as error:  # no credentials usable for gRPC: REST may still work (it has its own)
        warn_storage_unusable(error)
        return None
    transport = client.transport
    if not isinstance(transport, BigQueryReadGrpcTransport):
        return None
    return StorageApi(client, transport.grpc_channel)


class StorageConnections:
    """The :class:`StorageApi` for the current environment, made once per endpoint (creating one loads
    credentials and opens a channel), or ``None`` where there is no Storage API to use. The endpoint comes
    from ``settings``, else the process's :func:`~..settings.current_settings`."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._lock = threading.Lock()
        self._by_target: dict[tuple[str, Credentials | None], StorageApi | None] = {}
        self._pinned = settings

    def __call__(self, credentials: Credentials | None = None) -> StorageApi | None:
        """The Storage Read API as the process's identity, or as ``credentials`` (an impersonated principal's:
        one connection per credentials object, which the pool keeps per principal)."""
        settings = self._pinned if self._pinned is not None else current_settings()
        target = settings.storage_emulator_host or ""
        if not target and settings.emulator_host:
            return None  # a local BigQuery that publishes no Storage endpoint: the REST API serves reads
        key = (target, None if target else credentials)  # a local Storage API takes no credentials
        with self._lock:
            if key not in self._by_target:
                self._by_target[key] = _connect(target, credentials)
            return self._by_target[key]
