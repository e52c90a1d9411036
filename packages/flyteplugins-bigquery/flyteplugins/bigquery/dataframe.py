"""``bq://`` dataframe handlers for Flyte 2 — pandas, Arrow and (with the ``polars`` extra) polars.

Upstream's reads only into pandas, one Storage stream after another, from Application Default Credentials only
(so never from a local BigQuery), and cannot write. Ours share the core's reader and writer with the flytekit
plugin (:class:`flyte_bigquery_core.io.tables.BigQueryIO`): Storage Read API streams in parallel straight to
Arrow (the declared columns only), REST where Storage is unavailable, and writes as a Parquet load job that is
waited for. Blocking work runs on the client pool's threads, never on the event loop.

Registration follows Flyte 2's type plugins: the ``flyte.plugins.types`` entry point calls
:func:`register_lazily` before the first type lookup. Handlers are registered for each library once it is
imported (pandas, pyarrow, polars) — then, or on Flyte's next dataframe handler lookup — so importing the plugin
imports none of them. :func:`register_handlers` registers them all now.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from flyte.io.extend import DataFrameDecoder, DataFrameEncoder, DataFrameTransformerEngine
from flyte_bigquery_core.errors import PermanentError
from flyte_bigquery_core.io.frames import FrameKind, pandas_kind
from flyte_bigquery_core.io.registration import HandlerRegistration, installed_kinds
from flyte_bigquery_core.io.tables import BigQueryIO
from flyte_bigquery_core.io.uri import PROTOCOL

if TYPE_CHECKING:
    import pyarrow as pa
    from flyte.io import DataFrame
    from flyteidl2.core import literals_pb2, types_pb2

__all__ = [
    "BQToPandasDecodingHandler",
    "BigQueryDecoder",
    "BigQueryEncoder",
    "register_handlers",
    "register_imported",
    "register_lazily",
]


def _declared_columns(metadata: literals_pb2.StructuredDatasetMetadata | None) -> list[str] | None:
    columns = metadata.structured_dataset_type.columns if metadata is not None else None
    return [column.name for column in columns] if columns else None


_ITER_AS_CODE = DataFrameTransformerEngine.iter_as.__code__


def _iteration_requested() -> bool:
    """Whether Flyte wants an async iterator (``df.open(T).iter()``) rather than one frame (``.all()``): it calls
    ``decode`` alike for both, awaiting the result for ``.all()`` and insisting on an async generator for
    ``.iter()``. The caller (two frames up: this function, then ``decode``) is the only signal."""
    return sys._getframe(2).f_code is _ITER_AS_CODE


class BigQueryDecoder(DataFrameDecoder):
    """Reads a ``bq://`` table as one dataframe type: whole, or batch by batch under ``.iter()``."""

    def __init__(self, kind: FrameKind, io: BigQueryIO) -> None:
        super().__init__(kind.python_type, PROTOCOL, "")
        self._kind = kind
        self._io = io

    def decode(
        self,
        flyte_value: literals_pb2.StructuredDataset,
        current_task_metadata: literals_pb2.StructuredDatasetMetadata,
    ) -> Any:
        columns = _declared_columns(current_task_metadata)
        if _iteration_requested():
            return self._iterate(flyte_value.uri, columns)
        return self._read(flyte_value.uri, columns)

    async def _read(self, uri: str, columns: list[str] | None) -> Any:
        return self._kind.from_arrow(await self._io.clients.run(self._io.reader.read, uri, columns))

    async def _iterate(self, uri: str, columns: list[str] | None) -> AsyncIterator[Any]:
        import pyarrow as pa

        run = self._io.clients.run
        batches = await run(self._io.reader.batches, uri, columns)
        done = object()
        while (batch := await run(next, batches, done)) is not done:
            yield self._kind.from_arrow(pa.Table.from_batches([batch]))


class BigQueryEncoder(DataFrameEncoder):
    """Writes one dataframe type to the ``bq://`` table named by the DataFrame's ``uri``."""

    def __init__(self, kind: FrameKind, io: BigQueryIO) -> None:
        super().__init__(kind.python_type, PROTOCOL, "")
        self._kind = kind
        self._io = io

    async def encode(
        self, dataframe: DataFrame, structured_dataset_type: types_pb2.StructuredDatasetType
    ) -> literals_pb2.StructuredDataset:
        from flyteidl2.core import literals_pb2

        uri = dataframe.uri
        if not uri:
            raise PermanentError("a DataFrame written to BigQuery needs uri='bq://<project>:<dataset>.<table>'")
        table: pa.Table = self._kind.to_arrow(dataframe.val)
        await self._io.clients.run(self._io.write, uri, table)
        metadata = literals_pb2.StructuredDatasetMetadata(structured_dataset_type=structured_dataset_type)
        return literals_pb2.StructuredDataset(uri=uri, metadata=metadata)


def _register_kind(kind: FrameKind, io: BigQueryIO) -> None:
    for handler in (BigQueryEncoder(kind, io), BigQueryDecoder(kind, io)):
        DataFrameTransformerEngine.register(handler, override=True)


#: Which libraries have our ``bq`` handlers, and the BigQueryIO those handlers share.
_registration = HandlerRegistration(_register_kind)


class BQToPandasDecodingHandler(BigQueryDecoder):
    """Upstream's name for the pandas reader, for code that makes or registers it (``BQToPandasDecodingHandler()``)."""

    def __init__(self) -> None:
        super().__init__(pandas_kind(), _registration.io)


def register_imported() -> None:
    """Register ours for each dataframe library imported since the last call (three dictionary lookups when
    nothing new was imported)."""
    _registration.register_imported()


def register_handlers() -> None:
    """Register our ``bq`` handlers for pandas, Arrow and (when installed) polars now (imports each)."""
    _registration.register(installed_kinds())


def register_lazily() -> None:
    """Have ours registered for each dataframe library as it is imported, importing none now. Flyte 2 calls its
    dataframe handler loader (``flyte.io._dataframe.lazy_import_dataframe_handler``, looked up in its module on
    every call) before type lookups and in ``DataFrame.open``; ours runs right after it. Idempotent."""
    import flyte.io._dataframe as dataframes

    loader = dataframes.lazy_import_dataframe_handler
    if not getattr(loader, "_bigquery_plugin", False):

        @functools.wraps(loader)
        def lazy_import_dataframe_handler() -> None:
            loader()
            register_imported()

        lazy_import_dataframe_handler._bigquery_plugin = True  # type: ignore[attr-defined]
        dataframes.lazy_import_dataframe_handler = lazy_import_dataframe_handler
    register_imported()
