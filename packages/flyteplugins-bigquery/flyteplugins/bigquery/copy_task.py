"""``BigQueryCopyTask`` for Flyte 2: copy tables and partitions, and make snapshots and clones, run by the
connector as a copy job (no pod)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flyte.io import DataFrame
from flyte_bigquery_core.definition import BigQueryConfig
from flyte_bigquery_core.table_copy import CopySpec

from .transfer_task import BigQueryTransferTask

__all__ = ["BigQueryCopyTask"]


class BigQueryCopyTask(BigQueryTransferTask):
    """Copies ``sources`` (tables or partitions: ``dataset.events$20240101``), or the ``source`` input
    (``source_type`` ``flyte.io.DataFrame``, ``str`` or ``list[str]``), into ``destination``; the output ``table``
    is the destination as a ``flyte.io.DataFrame`` (``bq://``).

    ``operation``: ``COPY`` (default), ``SNAPSHOT`` (a read-only point-in-time copy of one table, expiring at
    ``expiration_time``, RFC 3339, if given), ``CLONE`` (a writable copy sharing storage) or ``RESTORE`` (a
    table from a snapshot). ``write_disposition`` (BigQuery's default: ``WRITE_EMPTY``) and
    ``create_disposition`` as for a load; snapshots and clones always need a new table.
    """

    _KIND = "copy"
    _TASK_TYPE = "bigquery_copy_job_task"
    _OUTPUT = ("table", DataFrame)
    _SOURCE_TYPES = (DataFrame, str, list[str])

    def __init__(
        self,
        name: str,
        plugin_config: BigQueryConfig,
        destination: str,
        sources: Sequence[str] | None = None,
        source_type: Any = None,
        operation: str = "COPY",
        write_disposition: str | None = None,
        create_disposition: str | None = None,
        expiration_time: str | None = None,
        labels: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        spec = CopySpec(
            destination=destination,
            sources=tuple(sources or ()),
            operation=operation,
            write_disposition=write_disposition,
            create_disposition=create_disposition,
            expiration_time=expiration_time,
        )
        super().__init__(name, plugin_config, spec, source_type, labels, **kwargs)
