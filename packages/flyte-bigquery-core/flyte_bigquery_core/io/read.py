"""Read a BigQuery table into Arrow: the Storage Read API in parallel streams, the REST API as a fallback.

Why not ``RowIterator.to_arrow(bqstorage_client=...)``: google-cloud-bigquery 3.47 deprecates fetching
Arrow through google-cloud-bigquery-storage (a ``PendingDeprecationWarning``), reads its streams through a
pandas-oriented queue, and cannot project columns. Here a read session is created with the declared
columns (``selected_fields``), every stream is read in its own thread (:mod:`.storage`: resumable, without
copying the rows), and each message's Arrow IPC record batch is decoded with pyarrow against the session's
schema. Nothing goes through pandas. Batches come back in stream order (all of stream 0, then stream 1…);
BigQuery promises no row order across streams, so sort when order matters.

The session and the REST calls are billed to the *caller's* project (``parent=projects/<billing>``), see
:func:`billing_project`. Where the Storage API cannot be used — no Storage endpoint (a local BigQuery
without ``FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST``), no permission to create read sessions,
``UNIMPLEMENTED`` or ``UNAVAILABLE`` when the session is created — the rows come from ``tabledata.list``
instead: slower, same result. Errors after a session exists are raised, never retried through REST, so a
partly delivered iteration is never repeated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import pyarrow as pa
from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery
from google.cloud.bigquery_storage_v1 import types as storage_types

from ..clients import ClientPool
from ..errors import PermanentError
from ..settings import BILLING_PROJECT_ENV, READ_STREAMS_ENV, Settings, current_settings
from .arrow_types import conform, target_schema
from .parallel import in_order
from .storage import StorageApi
from .uri import TableId

__all__ = [
    "BILLING_PROJECT_ENV",
    "READ_STREAMS_ENV",
    "STORAGE_FALLBACK_ERRORS",
    "TableReader",
    "billing_project",
]

logger = logging.getLogger(__name__)

#: Batches a stream may decode ahead of an iterating consumer (bounds an iteration's memory).
_ITER_PREFETCH = 2
#: Seconds to wait for ``CreateReadSession`` (it plans the whole read; large tables take a few seconds).
_SESSION_TIMEOUT = 120.0

#: ``CreateReadSession`` failures that mean "use the REST API", not "the read failed".
STORAGE_FALLBACK_ERRORS: tuple[type[BaseException], ...] = (
    api_exceptions.PermissionDenied,  # e.g. no bigquery.readsessions.create on the billing project
    api_exceptions.MethodNotImplemented,  # a server without the Storage Read API
    api_exceptions.ServiceUnavailable,  # no server at the endpoint
)


def billing_project(table: TableId, settings: Settings | None = None) -> str:
    """``$FLYTEKITPLUGINS_BIGQUERY_BILLING_PROJECT``, else ``$GOOGLE_CLOUD_PROJECT``, else the table's project
    (from ``settings``, else the process's :func:`~..settings.current_settings`)."""
    return (settings if settings is not None else current_settings()).billing_project_for(table.project)


def _select(
    schema: Sequence[bigquery.SchemaField], columns: Sequence[str] | None, uri: str
) -> list[bigquery.SchemaField]:
    """The schema fields of ``columns`` in the order given (BigQuery names are case-insensitive); every field
    when no columns are declared. A declared column the table lacks is an error naming both sides."""
    if not columns:
        return list(schema)
    by_name = {field.name.casefold(): field for field in schema}
    missing = [name for name in columns if name.casefold() not in by_name]
    if missing:
        raise PermanentError(
            f"{uri} has no column(s) {', '.join(missing)}; its columns are {', '.join(f.name for f in schema)}"
        )
    return [by_name[name.casefold()] for name in columns]


@dataclass(frozen=True)
class _Plan:
    """What one read needs: where, who pays, and which columns in which order."""

    uri: str
    table: TableId
    billing: str
    #: The columns to deliver, in the order to deliver them (declared order, else the table's).
    fields: list[bigquery.SchemaField]
    #: The same columns in the table's order: the order the APIs return them in.
    table_order: list[bigquery.SchemaField]

    @property
    def names(self) -> list[str]:
        return [field.name for field in self.fields]


_Opened = tuple[StorageApi, storage_types.ReadSession]


def _found(lookup: Future[bigquery.Table], uri: str) -> bigquery.Table:
    try:
        return lookup.result()
    except api_exceptions.NotFound as error:
        raise PermanentError(f"cannot read {uri}: {error.message}") from error


def _plan(uri: str, table: TableId, billing: str, found: bigquery.Table, columns: Sequence[str] | None) -> _Plan:
    fields = _select(found.schema, columns, uri)
    chosen = {field.name for field in fields}
    table_order = [field for field in found.schema if field.name in chosen]
    return _Plan(uri, table, billing, fields, table_order)


def _decode_stream(
    storage: StorageApi, stream: str, wire: pa.Schema, order: list[str], target: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """Every record batch of one read stream, decoded in place, in the requested column order and types."""
    for payload in storage.record_batches(stream):
        batch = pa.ipc.read_record_batch(pa.py_buffer(payload), wire)
        yield conform(batch.select(order), target)


class TableReader:
    """Reads ``bq://`` tables as Arrow for the handlers that own it.

    ``storage`` returns the Storage Read API to use, or ``None`` when there is none (then every read uses
    REST). Clients are the caller's: this class keeps no state of its own between reads. ``settings``
    (billing project, read streams) defaults to the process's :func:`~..settings.current_settings`.
    """

    def __init__(
        self, clients: ClientPool, storage: Callable[[], StorageApi | None], settings: Settings | None = None
    ) -> None:
        self._clients = clients
        self._storage = storage
        self._pinned = settings

    @property
    def _settings(self) -> Settings:
        return self._pinned if self._pinned is not None else current_settings()

    def read(self, uri: str, columns: Sequence[str] | None = None) -> pa.Table:
        """The whole table (or its declared ``columns``), streams read concurrently."""
        plan, opened = self._open(uri, columns)
        if opened is None:
            return self._rest_table(plan)
        target, batches = self._stream(plan, *opened, prefetch=None)
        return pa.Table.from_batches(list(batches), schema=target)

    def batches(self, uri: str, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The table as record batches, for results larger than memory.

        The table is looked up and the session created now (so a missing table or column fails here, not at
        the first ``next``); rows are fetched as the iterator is consumed, a few batches ahead per stream.
        """
        plan, opened = self._open(uri, columns)
        if opened is None:
            return self._rest_batches(plan)
        return self._stream(plan, *opened, prefetch=_ITER_PREFETCH)[1]

    # --- planning -----------------------------------------------------------------------------------

    def _open(self, uri: str, columns: Sequence[str] | None) -> tuple[_Plan, _Opened | None]:
        """Look the table up and create the read session at the same time: two round trips, one wait.

        The session is created from the declared names alone; the table's schema (needed for the column
        types and the REST path) arrives meanwhile. When either fails, the lookup's error is the one
        raised: it names a missing table or column, where the Storage API only says INVALID_ARGUMENT.
        """
        table = TableId.parse(uri)
        billing = billing_project(table, self._settings)
        lookup = self._clients.executor().submit(self._clients.client(billing).get_table, table.reference)
        try:
            opened = self._session(uri, table, billing, columns)
        except BaseException:
            _plan(uri, table, billing, _found(lookup, uri), columns)
            raise
        return _plan(uri, table, billing, _found(lookup, uri), columns), opened

    # --- Storage Read API ---------------------------------------------------------------------------

    def _session(self, uri: str, table: TableId, billing: str, columns: Sequence[str] | None) -> _Opened | None:
        storage = self._storage()
        if storage is None:
            logger.debug("reading %s through the REST API: no Storage Read API endpoint", uri)
            return None
        options = storage_types.ReadSession.TableReadOptions(selected_fields=list(columns or []))
        requested = storage_types.ReadSession(
            table=table.storage_path, data_format=storage_types.DataFormat.ARROW, read_options=options
        )
        try:
            session = storage.client.create_read_session(
                parent=f"projects/{billing}",
                read_session=requested,
                max_stream_count=self._settings.read_streams,
                retry=None,
                timeout=_SESSION_TIMEOUT,
            )
        except STORAGE_FALLBACK_ERRORS as error:
            logger.info("reading %s through the REST API: the Storage Read API is unavailable (%s)", uri, error)
            return None
        return storage, session

    def _stream(
        self, plan: _Plan, storage: StorageApi, session: storage_types.ReadSession, prefetch: int | None
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """``(schema, batches)`` of a read session: one producer thread per stream, batches in stream order."""
        wire = pa.ipc.read_schema(pa.py_buffer(session.arrow_schema.serialized_schema))
        by_name = {field.name.casefold(): field for field in wire}
        ordered = pa.schema([by_name[name.casefold()] for name in plan.names])
        target = target_schema(ordered, plan.fields)
        streams = [stream.name for stream in session.streams]
        logger.info("reading %s through the Storage Read API: %d stream(s)", plan.uri, len(streams))

        def producer(name: str) -> Callable[[], Iterable[pa.RecordBatch]]:
            return lambda: _decode_stream(storage, name, wire, ordered.names, target)

        producers = [producer(name) for name in streams]
        return target, in_order(producers, workers=len(producers), prefetch=prefetch)

    # --- REST API -----------------------------------------------------------------------------------

    def _rows(self, plan: _Plan) -> bigquery.table.RowIterator:
        client = self._clients.client(plan.billing)
        # tabledata.list returns the selected columns in the table's order, whatever order they are asked in.
        return client.list_rows(plan.table.reference, selected_fields=plan.table_order)

    def _rest_table(self, plan: _Plan) -> pa.Table:
        table = self._rows(plan).to_arrow(create_bqstorage_client=False).select(plan.names)
        target = target_schema(table.schema, plan.fields)
        return pa.Table.from_batches([conform(batch, target) for batch in table.to_batches()], schema=target)

    def _rest_batches(self, plan: _Plan) -> Iterator[pa.RecordBatch]:
        target: pa.Schema | None = None
        for batch in self._rows(plan).to_arrow_iterable(bqstorage_client=None):
            selected = batch.select(plan.names)
            target = target or target_schema(selected.schema, plan.fields)
            yield conform(selected, target)
