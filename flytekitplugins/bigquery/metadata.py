"""``BigQueryMetadata``: flytekit's resource meta for a BigQuery job (the core's :class:`JobHandle`)."""

from __future__ import annotations

from dataclasses import dataclass

from flyte_bigquery_core.handle import JobHandle
from flytekit.extend.backend.base_connector import ResourceMeta

__all__ = ["BigQueryMetadata"]


@dataclass
class BigQueryMetadata(JobHandle, ResourceMeta):
    """A reference to one BigQuery job, plus what ``get`` must know to report on it; see
    :class:`flyte_bigquery_core.handle.JobHandle` for the fields and the encoding (compact JSON, compatible
    both ways with the upstream plugin's)."""
