"""Run Google BigQuery SQL from Flyte workflows.

.. currentmodule:: flytekitplugins.bigquery

Drop-in for the public ``flytekitplugins-bigquery`` plugin: ``BigQueryConfig`` and ``BigQueryTask`` for
users, ``BigQueryConnector`` for Flyte's connector service. Importing this package registers the connector
with flytekit, so a local ``pyflyte run`` executes queries in-process, and hooks the ``bq://`` handlers into
flytekit's lazy handler registration (:func:`.io.register_lazily`); it imports neither google-cloud-bigquery
nor any dataframe library, which are loaded on first use.
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

from .check_task import BigQueryCheckTask, IntervalCheck, ValueCheck
from .connector import BigQueryConnector, BigQueryMetadata, pythonTypeToBigQueryType
from .copy_task import BigQueryCopyTask
from .extract_task import BigQueryExtractTask
from .io import register_lazily as _register_io_handlers
from .load_task import BigQueryLoadTask, RangePartitioning, TimePartitioning
from .sensors import BigQueryPartitionSensor, BigQueryTableModifiedSensor, BigQueryTableSensor
from .task import BigQueryConfig, BigQueryTask
from .transfer_connector import register as _register_transfer_connectors

_register_transfer_connectors()

# Ours replace flytekit's bq:// handlers as flytekit registers its own: on the first type lookup after pandas,
# pyarrow or polars is imported, after flytekit's lazy transformers (pandas schema…), whose import would fail
# and be retried on every lookup were a pandas handler registered before it.
_register_io_handlers()

__all__ = [
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
    "IntervalCheck",
    "InvalidMetadataError",
    "InvalidTaskError",
    "PermanentError",
    "RangePartitioning",
    "TimePartitioning",
    "TransientError",
    "UnsupportedInputError",
    "ValueCheck",
    "pythonTypeToBigQueryType",
]
