"""``BigQueryLoadTask``: load files into a BigQuery table, run by the connector as a load job (no pod)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flyte_bigquery_core.load import LoadSpec
from flyte_bigquery_core.partitioning import RangePartitioning, TimePartitioning
from flyte_bigquery_core.transfer import PARTITION_INPUT
from flyte_bigquery_core.transfer_definition import check_partition_type, schema_fields
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile
from flytekit.types.structured import StructuredDataset

from .task import BigQueryConfig
from .transfer_task import BigQueryTransferTask

__all__ = ["BigQueryLoadTask", "RangePartitioning", "TimePartitioning"]

#: A schema as users write it: ``SchemaField``s, REST field dicts, or ``{"column": "TYPE"}``.
Schema = Sequence[Any] | Mapping[str, str]


class BigQueryLoadTask(BigQueryTransferTask):
    """Loads files into ``destination`` (``dataset.table``, ``project.dataset.table``, or a partition such as
    ``dataset.events$20240101``) with a BigQuery load job; the output ``table`` is the table as ``bq://``.

    The files come from the ``source`` input, whose type ``source_type`` declares: a ``FlyteFile``, a
    ``FlyteDirectory`` (every file in it), a ``StructuredDataset`` (its Parquet files), or ``gs://`` URIs as
    ``str`` / ``list[str]`` (one ``*`` each allowed); with ``source_type=None`` the task reads the fixed
    ``source_uris``. BigQuery reads only Cloud Storage, so a local file is refused before anything is submitted.

    ``source_format``: ``PARQUET`` (default), ``CSV``, ``NEWLINE_DELIMITED_JSON`` or ``AVRO``. ``schema``
    (``SchemaField``s, REST dicts or ``{"column": "TYPE"}``): explicit columns; without one, Parquet and Avro
    bring their own and CSV/JSON are autodetected (``autodetect``). ``write_disposition``: ``WRITE_APPEND``
    (default), ``WRITE_TRUNCATE`` (with a partition destination: replace that partition atomically) or
    ``WRITE_EMPTY``. ``partition_type`` (``datetime.date``, ``datetime.datetime``, ``int`` or ``str``) adds an
    input ``partition`` that picks the destination's partition per run (a daily load: ``partition=day``; the
    destination then names the table only). A table the job creates gets ``time_partitioning`` or
    ``range_partitioning`` and ``clustering`` (up to four columns). ``labels`` are added to the job's.
    """

    _KIND = "load"
    _TASK_TYPE = "bigquery_load_job_task"
    _OUTPUT = ("table", StructuredDataset)
    _SOURCE_TYPES = (FlyteFile, FlyteDirectory, StructuredDataset, str, list[str])

    def __init__(
        self,
        name: str,
        task_config: BigQueryConfig,
        destination: str,
        source_type: Any = None,
        source_format: str = "PARQUET",
        schema: Schema | None = None,
        autodetect: bool | None = None,
        write_disposition: str = "WRITE_APPEND",
        create_disposition: str | None = None,
        time_partitioning: TimePartitioning | None = None,
        range_partitioning: RangePartitioning | None = None,
        clustering: Sequence[str] | None = None,
        skip_leading_rows: int | None = None,
        field_delimiter: str | None = None,
        source_uris: Sequence[str] | None = None,
        partition_type: Any = None,
        labels: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        check_partition_type(partition_type, name)
        spec = LoadSpec(
            destination=destination,
            source_format=source_format,
            schema=schema_fields(schema, name),
            autodetect=autodetect,
            write_disposition=write_disposition,
            create_disposition=create_disposition,
            time_partitioning=time_partitioning,
            range_partitioning=range_partitioning,
            clustering=tuple(clustering) if clustering is not None else None,
            skip_leading_rows=skip_leading_rows,
            field_delimiter=field_delimiter,
            source_uris=tuple(source_uris or ()),
        )
        extra = {PARTITION_INPUT: partition_type} if partition_type is not None else None
        super().__init__(name, task_config, spec, source_type, labels, extra, **kwargs)
