"""Write an Arrow table to BigQuery with a Parquet load job, and wait for it.

Why Parquet: it carries Arrow's types into BigQuery intact — a zoned timestamp becomes ``TIMESTAMP``, a naive
one ``DATETIME``, a decimal ``NUMERIC`` (or ``BIGNUMERIC`` when it needs more digits), a list ``REPEATED``
(with list inference on) and a struct ``RECORD`` — where a CSV or JSON detour would guess. Why wait: a
task's output must exist when the task succeeds, and a load job BigQuery rejects must fail the task with
BigQuery's own message (flytekit's built-in encoder starts the job and never looks at it again).

Load jobs append by default, as flytekit's built-in encoder does, so an existing table's rows are never
lost; set ``FLYTEKITPLUGINS_BIGQUERY_WRITE_DISPOSITION=WRITE_TRUNCATE`` to make the table hold exactly the
task's output (then a retried task does not append twice), or ``WRITE_EMPTY`` to refuse a non-empty table.
"""

from __future__ import annotations

import tempfile
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

from ..errors import BigQueryJobError
from ..settings import WRITE_DISPOSITION_ENV, Settings, current_settings
from ..status import describe_error
from .uri import TableId

__all__ = ["WRITE_DISPOSITION_ENV", "load_arrow"]

#: Parquet files up to this size stay in memory; larger ones spill to a temporary file.
_SPOOL_BYTES = 64 * 1024 * 1024


def _job_config(settings: Settings) -> bigquery.LoadJobConfig:
    parquet = bigquery.ParquetOptions()
    parquet.enable_list_inference = True  # LIST columns load as REPEATED, not as a struct of a list
    return bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET,
        parquet_options=parquet,
        write_disposition=settings.write_disposition,
    )


def _errors_of(job: bigquery.LoadJob | None, fallback: BaseException) -> tuple[str, str | None, str | None]:
    """(message, reason, location) of a failed load: BigQuery's error result first, then the other errors."""
    result: dict[str, Any] = (job.error_result if job is not None else None) or {}
    others = [e for e in ((job.errors if job is not None else None) or []) if e != result]
    lines = [describe_error(e) for e in ([result] if result else []) + others]
    if not lines:
        lines = [getattr(fallback, "message", None) or str(fallback)]
    return "; ".join(lines), result.get("reason"), result.get("location")


def load_arrow(
    client: bigquery.Client, table: TableId, data: pa.Table, settings: Settings | None = None
) -> bigquery.LoadJob:
    """Load ``data`` into ``table`` and wait; raise :class:`BigQueryJobError` with BigQuery's errors on failure.
    The write disposition comes from ``settings``, else the process's :func:`~..settings.current_settings`."""
    config = _job_config(settings if settings is not None else current_settings())
    job: bigquery.LoadJob | None = None
    # "r+b": google-cloud-bigquery refuses to upload from a file whose mode is not a read mode.
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="r+b") as buffer:
        # BigQuery keeps microseconds; nanoseconds are truncated here rather than refused there.
        pq.write_table(data, buffer, coerce_timestamps="us", allow_truncated_timestamps=True)
        size = buffer.tell()
        buffer.seek(0)
        try:
            job = client.load_table_from_file(
                buffer, table.reference, size=size, rewind=False, job_config=config, project=client.project
            )
            job.result()
        except (api_exceptions.GoogleAPICallError, api_exceptions.RetryError) as error:
            message, reason, location = _errors_of(job, error)
            raise BigQueryJobError(
                f"loading into {table.uri} failed: {message}", reason=reason, location=location
            ) from error
    return job
