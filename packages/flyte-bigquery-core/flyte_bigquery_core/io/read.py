"""Read a BigQuery table into Arrow: the Storage Read API in parallel streams, the REST API as a fallback.

Why not ``RowIterator.to_arrow(bqstorage_client=...)``: google-cloud-bigquery 3.47 deprecates fetching
Arrow through google-cloud-bigquery-storage (a ``PendingDeprecationWarning``), reads its streams through a
pandas-oriented queue, and cannot project columns. Here the table is looked up (``tables.get``: schema, row
count, labels), a read session is created with the declared columns (``selected_fields``, field paths such as
``detail.age`` included, :mod:`.fields`), every stream is read in its own thread (:mod:`.storage`: resumable,
without copying the rows), and each message's Arrow IPC record batch is decoded with pyarrow against the
session's schema, then cast to the declared fields (which also drops sub-fields a server sent unasked).
Nothing goes through pandas. Batches come back in stream order (all of stream 0, then stream 1…).

Order: BigQuery keeps no row order across Storage streams, so a table labelled ``flyte_ordered: "true"`` (the
connector labels the managed results table of a query whose outermost statement ends in ``ORDER BY``,
:mod:`..ordering`) is read through one stream, as google-cloud-bigquery does for such results.

The session and the REST calls are billed to the *caller's* project (``parent=projects/<billing>``), see
:func:`billing_project`. Where the Storage API cannot be used the rows come from ``tabledata.list``
(:mod:`.rest`: ranges of rows in parallel, same result). With a local BigQuery that publishes no Storage
endpoint that is the intended path (logged at DEBUG); otherwise — no credentials for gRPC, no permission to
create read sessions, the API disabled, ``UNIMPLEMENTED`` or ``UNAVAILABLE`` — it is a misconfiguration that
costs several times the read time, so the first one in a process is a WARNING naming the cause and the
remedy (:func:`.storage.warn_storage_unusable`). Errors after a session exists are raised, never retried
through REST, so a partly delivered iteration is never repeated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
from google.api_core import exceptions as api_exceptions
from google.cloud.bigquery_storage_v1 import types as storage_types

from ..access import Caller, caller_of_uri
from ..clients import ClientPool
from ..errors import PermanentError
from ..ordering import is_ordered
from ..settings import BILLING_PROJECT_ENV, READ_STREAMS_ENV, Settings, current_settings
from .arrow_types import conform, target_schema
from .fields import Projection, project, requested_paths
from .parallel import in_order
from .rest import rest_batches
from .storage import StorageApi, warn_storage_unusable
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


@dataclass(frozen=True)
class _Plan:
    """What one read needs: where, who pays, which columns in which order, and whether order matters."""

    uri: str
    table: TableId
    billing: str
    projection: Projection
    #: Whom the read runs as: the principal the URI names (the one that wrote the table), else the process's own.
    caller: Caller
    #: The declared paths, as the Storage Read API's ``selected_fields`` takes them (``[]``: every column).
    paths: list[str]
    num_rows: int | None
    ordered: bool

    @property
    def names(self) -> list[str]:
        return self.projection.names


_Opened = tuple[StorageApi, storage_types.ReadSession]


def _decode_stream(
    storage: StorageApi, stream: str, wire: pa.Schema, order: list[str], target: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """Every record batch of one read stream, decoded in place, in the requested column order and types."""
    for payload in storage.record_batches(stream):
        batch = pa.ipc.read_record_batch(pa.py_buffer(payload), wire)
        yield conform(batch.select(order), target)


def _wire_schema(session: storage_types.ReadSession) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(session.arrow_schema.serialized_schema))


def _delivers(session: storage_types.ReadSession, names: list[str]) -> bool:
    """Whether the session's rows hold every column ``names`` asks for."""
    sent = {field.name.casefold() for field in _wire_schema(session)}
    return all(name.casefold() in sent for name in names)


class TableReader:
    """Reads ``bq://`` tables as Arrow for the handlers that own it.

    ``storage`` returns the Storage Read API to use, or ``None`` when there is none (then every read uses
    REST). Clients are the caller's: this class keeps no state of its own between reads. ``settings``
    (billing project, read streams) defaults to the process's :func:`~..settings.current_settings`.
    """

    def __init__(
        self, clients: ClientPool, storage: Callable[..., StorageApi | None], settings: Settings | None = None
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
        target, batches = self._rest(plan, None) if opened is None else self._stream(plan, *opened, prefetch=None)
        return pa.Table.from_batches(list(batches), schema=target)

    def batches(self, uri: str, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The table as record batches, for results larger than memory.

        The table is looked up and the session created now (so a missing table or column fails here, not at
        the first ``next``); rows are fetched as the iterator is consumed, a few batches ahead per stream.
        """
        plan, opened = self._open(uri, columns)
        if opened is None:
            return self._rest(plan, _ITER_PREFETCH)[1]
        return self._stream(plan, *opened, prefetch=_ITER_PREFETCH)[1]

    # --- planning -----------------------------------------------------------------------------------

    def _open(self, uri: str, columns: Sequence[str] | None) -> tuple[_Plan, _Opened | None]:
        """Look the table up, then create the read session.

        The lookup comes first (one round trip, small next to planning a session): it names a missing table or
        column where the Storage API only says INVALID_ARGUMENT, and its labels decide the number of streams.
        """
        table = TableId.parse(uri)
        billing = billing_project(table, self._settings)
        caller = caller_of_uri(uri)
        try:
            found = self._clients.client(billing, caller=caller).get_table(table.reference)
        except api_exceptions.NotFound as error:
            raise PermanentError(f"cannot read {uri}: {error.message}") from error
        projection = project(found.schema, columns, uri)
        plan = _Plan(
            uri, table, billing, projection, caller, requested_paths(columns), found.num_rows, is_ordered(found.labels)
        )
        return plan, self._session(plan)

    # --- Storage Read API ---------------------------------------------------------------------------

    def _session(self, plan: _Plan) -> _Opened | None:
        if plan.caller.impersonates:  # the Storage Read API as the same principal
            storage = self._storage(self._clients.credentials(self._settings, plan.caller))
        else:
            storage = self._storage()
        if storage is None:
            logger.debug("reading %s through the REST API: no Storage Read API endpoint", plan.uri)
            return None
        whole = [field.name for field in plan.projection.table_order]
        try:
            try:
                session = self._create(storage, plan, plan.paths)
            except api_exceptions.InvalidArgument:
                if plan.paths == whole or not plan.paths:
                    raise
                session = None  # refused the sub-field paths
            if session is None or not _delivers(session, plan.names):
                # A server that cannot select sub-fields (a local BigQuery drops ``detail.age``): ask for the
                # whole top-level columns; the cast to the declared fields prunes them.
                logger.debug("%s: sub-field selection not honoured; selecting whole columns", plan.uri)
                session = self._create(storage, plan, whole)
        except STORAGE_FALLBACK_ERRORS as error:
            warn_storage_unusable(error, plan.billing)
            logger.info("reading %s through the REST API: the Storage Read API is unavailable (%s)", plan.uri, error)
            return None
        return storage, session

    def _create(self, storage: StorageApi, plan: _Plan, selected: list[str]) -> storage_types.ReadSession:
        options = storage_types.ReadSession.TableReadOptions(selected_fields=selected)
        requested = storage_types.ReadSession(
            table=plan.table.storage_path, data_format=storage_types.DataFormat.ARROW, read_options=options
        )
        return storage.client.create_read_session(
            parent=f"projects/{plan.billing}",
            read_session=requested,
            max_stream_count=1 if plan.ordered else self._settings.read_streams,
            retry=None,
            timeout=_SESSION_TIMEOUT,
        )

    def _stream(
        self, plan: _Plan, storage: StorageApi, session: storage_types.ReadSession, prefetch: int | None
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """``(schema, batches)`` of a read session: one producer thread per stream, batches in stream order."""
        wire = _wire_schema(session)
        by_name = {field.name.casefold(): field for field in wire}
        ordered = pa.schema([by_name[name.casefold()] for name in plan.names])
        target = target_schema(ordered, plan.projection.fields)
        streams = [stream.name for stream in session.streams]
        logger.info(
            "reading %s through the Storage Read API: %d stream(s)%s",
            plan.uri,
            len(streams),
            " (ordered result: one stream)" if plan.ordered else "",
        )

        def producer(name: str) -> Callable[[], Iterable[pa.RecordBatch]]:
            return lambda: _decode_stream(storage, name, wire, ordered.names, target)

        producers = [producer(name) for name in streams]
        return target, in_order(producers, workers=len(producers), prefetch=prefetch)

    # --- REST API -----------------------------------------------------------------------------------

    def _rest(self, plan: _Plan, prefetch: int | None) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        client = self._clients.client(plan.billing, caller=plan.caller)
        workers = self._settings.read_streams
        return rest_batches(client, plan.table, plan.projection, plan.num_rows, workers, prefetch)
