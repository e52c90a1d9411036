""":class:`BigQueryIO`: what one set of ``bq://`` dataframe handlers shares, for any Flyte SDK's handlers.

Reads go through :class:`~.read.TableReader` (Storage Read API streams in parallel, REST where Storage is
unavailable) and writes through a Parquet load job (:func:`~.write.load_arrow`). Both are blocking: the flytekit
handlers call them directly, Flyte 2's (async) handlers on the pool's threads (:meth:`ClientPool.run`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ..access import caller_of_uri
from ..clients import ClientPool, shared_pool
from .uri import TableId

if TYPE_CHECKING:
    import pyarrow as pa

    from .read import TableReader

__all__ = ["BigQueryIO"]


class BigQueryIO:
    """The clients one set of ``bq://`` handlers shares: the process's pool (the connector's too, so
    credentials are loaded once) and one Storage Read client per endpoint."""

    def __init__(self, clients: ClientPool | None = None) -> None:
        self._clients = clients
        self._reader: TableReader | None = None
        self._lock = threading.Lock()

    @property
    def clients(self) -> ClientPool:
        """The pool given, else the process's (:func:`~flyte_bigquery_core.clients.shared_pool`), on first use."""
        if self._clients is None:
            self._clients = shared_pool()
        return self._clients

    @property
    def reader(self) -> TableReader:
        """Made on first use: it imports pyarrow, google-cloud-bigquery and the Storage Read client."""
        if self._reader is None:
            with self._lock:
                if self._reader is None:
                    from .read import TableReader
                    from .storage import StorageConnections

                    self._reader = TableReader(self.clients, StorageConnections())
        return self._reader

    def write(self, uri: str, data: pa.Table) -> None:
        """Load ``data`` into the table ``uri`` names (``bq://project:dataset.table``) and wait for the load job;
        a rejected load raises :class:`~flyte_bigquery_core.errors.BigQueryJobError` with BigQuery's message. A URI
        naming a principal (``?principal=...``, :func:`~flyte_bigquery_core.access.uri_with_caller`) loads as it."""
        from .read import billing_project
        from .write import load_arrow

        table = TableId.parse(uri)
        load_arrow(self.clients.client(billing_project(table), caller=caller_of_uri(uri)), table, data)
