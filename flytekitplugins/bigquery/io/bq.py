"""StructuredDataset handlers for ``bq://project:dataset.table``, and their registration over flytekit's.

Importing this module is cheap: pandas, pyarrow, polars, google-cloud-bigquery and the Storage Read client are
imported when a handler is registered for a library already imported, or when a handler first reads or writes
(see :func:`register_lazily`).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from flyte_bigquery_core.errors import PermanentError
from flyte_bigquery_core.io.frames import FrameKind, arrow_kind, pandas_kind, polars_kind
from flyte_bigquery_core.io.registration import HandlerRegistration, installed_kinds
from flyte_bigquery_core.io.tables import BigQueryIO
from flyte_bigquery_core.io.uri import PROTOCOL, parse_bq_uri
from flyte_bigquery_core.settings import STORAGE_EMULATOR_HOST_ENV
from flytekit import FlyteContext
from flytekit.models import literals
from flytekit.models.types import StructuredDatasetType
from flytekit.types.structured.structured_dataset import (
    DuplicateHandlerError,
    StructuredDataset,
    StructuredDatasetDecoder,
    StructuredDatasetEncoder,
    StructuredDatasetMetadata,
    StructuredDatasetTransformerEngine,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "PROTOCOL",
    "STORAGE_EMULATOR_HOST_ENV",
    "ArrowToBigQueryEncoder",
    "BigQueryDecoder",
    "BigQueryEncoder",
    "BigQueryIO",
    "BigQueryToArrowDecoder",
    "BigQueryToPandasDecoder",
    "BigQueryToPolarsDecoder",
    "PandasToBigQueryEncoder",
    "PolarsToBigQueryEncoder",
    "parse_bq_uri",
    "register_handlers",
    "register_imported",
    "register_lazily",
]

logger = logging.getLogger(__name__)


def _declared_columns(metadata: StructuredDatasetMetadata | None) -> list[str] | None:
    sd_type = metadata.structured_dataset_type if metadata is not None else None
    return [column.name for column in sd_type.columns] if sd_type is not None and sd_type.columns else None


_ITER_AS_CODE = StructuredDatasetTransformerEngine.iter_as.__code__


def _iteration_requested() -> bool:
    """Whether flytekit wants an iterator (``sd.open(T).iter()``) rather than one frame (``.all()``).

    flytekit 1.16 calls ``decode`` with the same arguments for both and only afterwards checks the result:
    ``open_as`` refuses a generator and ``iter_as`` insists on one. The caller is the only signal, so look at
    it (two frames up: this function, then ``decode``).
    """
    return sys._getframe(2).f_code is _ITER_AS_CODE


class BigQueryDecoder(StructuredDatasetDecoder):
    """Reads a ``bq://`` table as one dataframe type: whole, or batch by batch under ``.iter()``."""

    def __init__(self, kind: FrameKind, io: BigQueryIO) -> None:
        super().__init__(kind.python_type, PROTOCOL, supported_format="")
        self._kind = kind
        self._io = io

    def decode(
        self,
        ctx: FlyteContext,
        flyte_value: literals.StructuredDataset,
        current_task_metadata: StructuredDatasetMetadata,
    ) -> Any:
        columns = _declared_columns(current_task_metadata)
        if _iteration_requested():
            return self._iterate(self._io.reader.batches(flyte_value.uri, columns))
        return self._kind.from_arrow(self._io.reader.read(flyte_value.uri, columns))

    def _iterate(self, batches: Iterator[pa.RecordBatch]) -> Iterator[Any]:
        import pyarrow as pa

        for batch in batches:
            yield self._kind.from_arrow(pa.Table.from_batches([batch]))


class BigQueryEncoder(StructuredDatasetEncoder):
    """Writes one dataframe type to the ``bq://`` table named by the StructuredDataset's ``uri``."""

    def __init__(self, kind: FrameKind, io: BigQueryIO) -> None:
        super().__init__(kind.python_type, PROTOCOL, supported_format="")
        self._kind = kind
        self._io = io

    def encode(
        self, ctx: FlyteContext, structured_dataset: StructuredDataset, structured_dataset_type: StructuredDatasetType
    ) -> literals.StructuredDataset:
        uri = structured_dataset.uri
        if not uri:
            raise PermanentError("a StructuredDataset written to BigQuery needs uri='bq://<project>:<dataset>.<table>'")
        self._io.write(uri, self._kind.to_arrow(structured_dataset.dataframe))
        return literals.StructuredDataset(uri=uri, metadata=StructuredDatasetMetadata(structured_dataset_type))


class BigQueryToPandasDecoder(BigQueryDecoder):
    def __init__(self, io: BigQueryIO) -> None:
        super().__init__(pandas_kind(), io)


class BigQueryToArrowDecoder(BigQueryDecoder):
    def __init__(self, io: BigQueryIO) -> None:
        super().__init__(arrow_kind(), io)


class BigQueryToPolarsDecoder(BigQueryDecoder):
    """Needs the ``polars`` extra."""

    def __init__(self, io: BigQueryIO) -> None:
        super().__init__(polars_kind(), io)


class PandasToBigQueryEncoder(BigQueryEncoder):
    def __init__(self, io: BigQueryIO) -> None:
        super().__init__(pandas_kind(), io)


class ArrowToBigQueryEncoder(BigQueryEncoder):
    def __init__(self, io: BigQueryIO) -> None:
        super().__init__(arrow_kind(), io)


class PolarsToBigQueryEncoder(BigQueryEncoder):
    """Needs the ``polars`` extra."""

    def __init__(self, io: BigQueryIO) -> None:
        super().__init__(polars_kind(), io)


def _register_kind(kind: FrameKind, io: BigQueryIO) -> None:
    for handler in (BigQueryEncoder(kind, io), BigQueryDecoder(kind, io)):
        StructuredDatasetTransformerEngine.register(handler, override=True)


#: Which libraries have our ``bq`` handlers, and the BigQueryIO those handlers share.
_registration = HandlerRegistration(_register_kind)


def register_imported() -> None:
    """Register ours for each dataframe library imported since the last call, in place of flytekit's.

    Called by flytekit's lazy handler loader once :func:`register_lazily` has hooked it, i.e. on every type
    lookup, so the usual case (nothing new imported) costs three dictionary lookups.
    """
    _registration.register_imported()


def register_handlers() -> BigQueryIO:
    """Register our ``bq`` handlers for every supported dataframe type in place of flytekit's, now.

    Imports pandas, pyarrow and (when installed) polars; :func:`register_lazily` is what importing the plugin
    does instead. Idempotent: a second call replaces the handlers with a fresh set. Only protocol ``bq`` is
    touched. Returns the :class:`BigQueryIO` the new handlers share.
    """
    from flytekit.core.type_engine import TypeEngine

    kinds = installed_kinds()
    # flytekit's lazy transformers (pandas schema…) first: registered after ours, their import fails and is
    # retried on every type lookup. This also runs flytekit's own lazy handler registration, ours after it.
    TypeEngine.lazy_import_transformers()
    return _registration.register(kinds, fresh_io=True)


def _after_flytekits(loader: Callable[[], None]) -> Callable[[], None]:
    """flytekit's lazy handler loader, followed by :func:`register_imported`."""

    @functools.wraps(loader)
    def lazy_import_structured_dataset_handler() -> None:
        loader()
        register_imported()

    return lazy_import_structured_dataset_handler


def _once(register: Any) -> Callable[[], None]:
    """flytekit's ``register_bigquery_handlers``, settled by its first attempt.

    flytekit's registers its ``bq`` handlers without ``override`` and caches only a success: when ours are
    there first, it fails with a duplicate error (which its loader logs and ignores) and is retried on every
    type lookup. Here the duplicate settles it too: ours stay, and it is not tried again.
    """

    @functools.cache
    def register_bigquery_handlers() -> None:
        try:
            register()
        except DuplicateHandlerError:
            logger.debug("flytekit's BigQuery handlers were not registered: ours are")

    register_bigquery_handlers.__wrapped__ = getattr(register, "__wrapped__", register)
    return register_bigquery_handlers


def register_lazily() -> None:
    """Have ours replace flytekit's ``bq`` handlers whenever flytekit registers its own, without importing any
    dataframe library now.

    flytekit registers its handlers for a dataframe library on the first type lookup (or
    ``StructuredDataset.open``) after that library is imported, through
    ``flytekit.types.structured.lazy_import_structured_dataset_handler``; its ``bq`` handlers likewise once
    google-cloud-bigquery is imported. Both callers look the loader up in its module on every call, so
    replacing it there is enough: ours (:func:`register_imported`) are registered right after flytekit's, with
    ``override``, for pandas, Arrow and polars as each is imported. Idempotent.
    """
    import flytekit.types.structured as structured

    loader = structured.lazy_import_structured_dataset_handler
    if getattr(loader, "_bigquery_plugin", False):
        return
    structured.register_bigquery_handlers = _once(structured.register_bigquery_handlers)
    hooked = _after_flytekits(loader)
    hooked._bigquery_plugin = True  # type: ignore[attr-defined]
    structured.lazy_import_structured_dataset_handler = hooked
