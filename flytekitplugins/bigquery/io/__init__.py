"""StructuredDataset handlers for the ``bq://`` protocol (pandas and Arrow), registered over flytekit's.

Why ours: flytekit's built-in handlers read through pandas (even for Arrow), make a new Storage client per
read from Application Default Credentials only (so they cannot reach a local BigQuery), and never wait for
the load job they start, so a failed write goes unnoticed. Ours read Arrow straight from the Storage Read
API (falling back to the REST API), project the declared columns, and wait for load jobs, raising
BigQuery's errors. They are registered with ``override=True`` for protocol ``bq`` only; other protocols
are untouched.
"""

from .bq import (
    STORAGE_EMULATOR_HOST_ENV,
    ArrowToBigQueryEncoder,
    BigQueryToArrowDecoder,
    BigQueryToPandasDecoder,
    PandasToBigQueryEncoder,
    parse_bq_uri,
    register_handlers,
)

__all__ = [
    "STORAGE_EMULATOR_HOST_ENV",
    "ArrowToBigQueryEncoder",
    "BigQueryToArrowDecoder",
    "BigQueryToPandasDecoder",
    "PandasToBigQueryEncoder",
    "parse_bq_uri",
    "register_handlers",
]
