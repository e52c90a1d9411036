"""``BigQueryExtractTask`` for Flyte 2: write a BigQuery table as files in Cloud Storage, run by the connector as
an extract job (no pod)."""

from __future__ import annotations

from typing import Any

from flyte.io import DataFrame, Dir
from flyte_bigquery_core.definition import BigQueryConfig
from flyte_bigquery_core.extract import ExtractSpec

from .transfer_task import BigQueryTransferTask

__all__ = ["BigQueryExtractTask"]


class BigQueryExtractTask(BigQueryTransferTask):
    """Extracts a table into the ``gs://`` folder ``destination`` as ``part-<n>`` files; the output ``directory``
    is that folder as a ``flyte.io.Dir``.

    The table is ``source`` (``dataset.table``, ``project.dataset.table`` or ``bq://``), or, with ``source_type``
    ``flyte.io.DataFrame`` (a query task's ``results``) or ``str``, the ``source`` input. ``destination_format``:
    ``PARQUET`` (default), ``AVRO``, ``CSV`` or ``NEWLINE_DELIMITED_JSON``; ``compression``: ``NONE`` (default),
    ``GZIP`` (CSV, JSON, Parquet), ``SNAPPY`` (Parquet, Avro), ``ZSTD`` (Parquet) or ``DEFLATE`` (Avro).
    ``print_header`` and ``field_delimiter`` are CSV options. A rerun with the same destination overwrites the
    files.
    """

    _KIND = "extract"
    _TASK_TYPE = "bigquery_extract_job_task"
    _OUTPUT = ("directory", Dir)
    _SOURCE_TYPES = (DataFrame, str)

    def __init__(
        self,
        name: str,
        plugin_config: BigQueryConfig,
        destination: str,
        source: str | None = None,
        source_type: Any = None,
        destination_format: str = "PARQUET",
        compression: str = "NONE",
        print_header: bool | None = None,
        field_delimiter: str | None = None,
        labels: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        spec = ExtractSpec(
            destination=destination,
            destination_format=destination_format,
            compression=compression,
            source=source,
            print_header=print_header,
            field_delimiter=field_delimiter,
        )
        super().__init__(name, plugin_config, spec, source_type, labels, **kwargs)
