"""Run Google BigQuery SQL from Flyte workflows.

.. currentmodule:: flytekitplugins.bigquery

Drop-in for the public ``flytekitplugins-bigquery`` plugin: ``BigQueryConfig`` and ``BigQueryTask`` for
users, ``BigQueryConnector`` for Flyte's connector service. Importing this package registers the connector
with flytekit, so a local ``pyflyte run`` executes queries in-process.
"""

from flyte_bigquery_core.errors import (
    BigQueryJobError,
    BigQueryPluginError,
    InvalidMetadataError,
    InvalidTaskError,
    PermanentError,
    TransientError,
    UnsupportedInputError,
)

from .connector import BigQueryConnector, BigQueryMetadata, pythonTypeToBigQueryType
from .io import register_handlers as _register_io_handlers
from .task import BigQueryConfig, BigQueryTask


def _register() -> None:
    # flytekit imports its optional transformers (pandas schema…) lazily on type lookups; done after our
    # handlers are registered, that import fails and is retried on every lookup (~0.2 ms each, twice per
    # GetTask in the connector service). Importing them first settles it once.
    from flytekit.core.type_engine import TypeEngine

    TypeEngine.lazy_import_transformers()
    _register_io_handlers()


_register()

__all__ = [
    "BigQueryConfig",
    "BigQueryConnector",
    "BigQueryJobError",
    "BigQueryMetadata",
    "BigQueryPluginError",
    "BigQueryTask",
    "InvalidMetadataError",
    "InvalidTaskError",
    "PermanentError",
    "TransientError",
    "UnsupportedInputError",
    "pythonTypeToBigQueryType",
]
