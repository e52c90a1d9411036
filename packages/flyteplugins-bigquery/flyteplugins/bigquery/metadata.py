"""``BigQueryMetadata``: Flyte 2's resource meta for a BigQuery job (the core's :class:`JobHandle`)."""

from __future__ import annotations

from dataclasses import dataclass

from flyte.connectors import ResourceMeta
from flyte_bigquery_core.handle import JobHandle

__all__ = ["BigQueryMetadata"]


@dataclass
class BigQueryMetadata(JobHandle, ResourceMeta):
    """A reference to one BigQuery job, plus what ``get`` must know to report on it; see
    :class:`flyte_bigquery_core.handle.JobHandle` for the fields and the encoding (compact JSON). Metadata written
    by upstream's Flyte 2 connector (``job_id``, ``project``, ``location``, ``user_agent``) decodes too."""
