"""StructuredDataset handlers for the ``bq://`` protocol — pandas, Arrow and (with the ``polars`` extra)
polars — registered over flytekit's built-in ones.

Why ours: flytekit's built-in handlers read through pandas (even for Arrow), make a new Storage client per
read from Application Default Credentials only (so they cannot reach a local BigQuery), read streams one
after another, and never wait for the load job they start, so a failed write goes unnoticed. Ours:

* **Read** straight to Arrow through the BigQuery Storage Read API — parallel streams, the declared columns
  only (``Annotated[StructuredDataset, kwtypes(a=int)]`` reads column ``a``), billed to the caller's
  project — and fall back to the REST API (``tabledata.list``) where the Storage API is unavailable.
  ``sd.open(T).iter()`` yields one frame per record batch, for results larger than memory. Column types
  depend only on the BigQuery type (see :mod:`.arrow_types`), whichever API served the rows.
* **Write** with a Parquet load job, so zoned timestamps, decimals, lists and structs keep their types,
  and wait for it: a rejected load raises :class:`~flytekitplugins.bigquery.BigQueryJobError` with
  BigQuery's message.

Registered with ``override=True`` for protocol ``bq`` only; other protocols keep flytekit's handlers. Importing
the plugin imports no dataframe library: ours are registered for pandas, Arrow or polars when flytekit
registers its own, on the first type lookup after that library is imported (see :func:`register_lazily`);
:func:`register_handlers` registers them all at once.

Environment (all optional):

* ``FLYTEKITPLUGINS_BIGQUERY_BILLING_PROJECT`` — the project billed for reads (``parent`` of the read
  session) and running load jobs; default ``GOOGLE_CLOUD_PROJECT``, else the table's own project.
* ``FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST`` — ``host:port`` of a plain-gRPC Storage Read API (a
  local BigQuery's gRPC port; the Storage client ignores ``BIGQUERY_EMULATOR_HOST``). With
  ``BIGQUERY_EMULATOR_HOST`` set and this unset, reads use the REST API.
* ``FLYTEKITPLUGINS_BIGQUERY_READ_STREAMS`` — the most Storage Read streams (and threads) per read; 16.
* ``FLYTEKITPLUGINS_BIGQUERY_WRITE_DISPOSITION`` — ``WRITE_APPEND`` (default, as flytekit's encoder),
  ``WRITE_TRUNCATE`` (the table holds exactly the output; a retried task does not append twice) or
  ``WRITE_EMPTY``.

pandas dtypes are pyarrow's defaults (as flytekit's Parquet decoder gives): NUMERIC as ``Decimal`` objects,
an INT64 column with NULLs as ``float64``; read ``pa.Table`` or polars for exact types.
"""

from flyte_bigquery_core.settings import BILLING_PROJECT_ENV, READ_STREAMS_ENV, WRITE_DISPOSITION_ENV

from . import bq
from .bq import *  # noqa: F403

__all__ = ["BILLING_PROJECT_ENV", "READ_STREAMS_ENV", "WRITE_DISPOSITION_ENV", *bq.__all__]
