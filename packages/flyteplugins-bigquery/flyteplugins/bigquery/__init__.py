"""Run Google BigQuery SQL from Flyte 2.

.. currentmodule:: flyteplugins.bigquery

Drop-in for Flyte 2's public ``flyteplugins-bigquery`` plugin: ``BigQueryConfig`` and ``BigQueryTask`` for
users, ``BigQueryConnector`` for a connector service, ``bq://`` dataframe handlers for pandas, Arrow and polars.
Beyond it: ``BigQueryLoadTask``, ``BigQueryExtractTask`` and ``BigQueryCopyTask``, run by their own connectors
(:mod:`.transfer_connector`). Importing this package registers the connectors (so a local run executes queries
in-process) and hooks the handlers into Flyte's lazy dataframe handler loading; it imports neither
google-cloud-bigquery nor any dataframe library, which are loaded on first use. All BigQuery logic lives in
``flyte_bigquery_core``.
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
from flyte_bigquery_core.params import pythonTypeToBigQueryType

from .check_task import BigQueryCheckTask, IntervalCheck, ValueCheck
from .connector import BigQueryConnector
from .copy_task import BigQueryCopyTask
from .dataframe import BQToPandasDecodingHandler
from .dataframe import register_lazily as _register_dataframe_handlers
from .extract_task import BigQueryExtractTask
from .load_task import BigQueryLoadTask, RangePartitioning, TimePartitioning
from .local import BigQueryTaskFailed
from .metadata import BigQueryMetadata
from .sensors import BigQueryPartitionSensor, BigQueryTableModifiedSensor, BigQueryTableSensor
from .task import BigQueryConfig, BigQueryTask
from .transfer_connector import CopyConnector, ExtractConnector, LoadConnector

_register_dataframe_handlers()

__all__ = [
    "BQToPandasDecodingHandler",
    "BigQueryCheckTask",
    "BigQueryConfig",
    "BigQueryConnector",
    "BigQueryCopyTask",
    "BigQueryExtractTask",
    "BigQueryJobError",
    "BigQueryLoadTask",
    "BigQueryMetadata",
    "BigQueryPartitionSensor",
    "BigQueryPluginError",
    "BigQueryTableModifiedSensor",
    "BigQueryTableSensor",
    "BigQueryTask",
    "BigQueryTaskFailed",
    "CopyConnector",
    "ExtractConnector",
    "IntervalCheck",
    "InvalidMetadataError",
    "InvalidTaskError",
    "LoadConnector",
    "PermanentError",
    "RangePartitioning",
    "TimePartitioning",
    "TransientError",
    "UnsupportedInputError",
    "ValueCheck",
    "pythonTypeToBigQueryType",
]
