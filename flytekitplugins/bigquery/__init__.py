"""Run Google BigQuery SQL from Flyte workflows.

.. currentmodule:: flytekitplugins.bigquery

Drop-in for the public ``flytekitplugins-bigquery`` plugin: ``BigQueryConfig`` and ``BigQueryTask`` for
users, ``BigQueryConnector`` for Flyte's connector service. Importing this package registers the connector
with flytekit, so a local ``pyflyte run`` executes queries in-process.
"""

from .connector import BigQueryConnector, BigQueryMetadata, pythonTypeToBigQueryType
from .errors import (
    BigQueryJobError,
    BigQueryPluginError,
    InvalidMetadataError,
    InvalidTaskError,
    PermanentError,
    TransientError,
    UnsupportedInputError,
)
from .io import register_handlers as _register_io_handlers
from .task import BigQueryConfig, BigQueryTask

_register_io_handlers()

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
