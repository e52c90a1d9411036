"""``bq://project:dataset.table`` URIs: the form flytekit and the query task write, parsed in one place."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import PermanentError

if TYPE_CHECKING:  # google-cloud-bigquery imports pandas, pyarrow and the Storage client: loaded on first use
    from google.cloud import bigquery

__all__ = ["PROTOCOL", "TableId", "parse_bq_uri"]

#: The StructuredDataset protocol (URI scheme) of BigQuery tables.
PROTOCOL = "bq"
# A project id may carry a domain ("example.com:proj"), which is the only place a ':' can appear in it.
# An optional query string names who reads the table (``?principal=...``: see ``flyte_bigquery_core.access``).
_URI = re.compile(
    r"^bq://(?P<project>(?:[^:/.]+(?:\.[^:/.]+)+:)?[^:/.]+)[:.](?P<dataset>[A-Za-z0-9_]+)\.(?P<table>[^./:?]+)"
    r"(?:\?[^#]*)?$"
)


def parse_bq_uri(uri: str | None) -> tuple[str, str, str]:
    """``bq://project:dataset.table`` (or ``bq://project.dataset.table``), with an optional ``?query`` naming
    the principal that reads it → (project, dataset, table)."""
    match = _URI.match(uri or "")
    if not match:
        raise PermanentError(f"{uri!r} is not a BigQuery table URI; expected bq://<project>:<dataset>.<table>")
    return match.group("project"), match.group("dataset"), match.group("table")


@dataclass(frozen=True)
class TableId:
    """A table's three-part id, with the spellings each API wants."""

    project: str
    dataset: str
    table: str

    @classmethod
    def parse(cls, uri: str | None) -> TableId:
        return cls(*parse_bq_uri(uri))

    @property
    def reference(self) -> bigquery.TableReference:
        """For the REST client."""
        from google.cloud import bigquery

        return bigquery.TableReference(bigquery.DatasetReference(self.project, self.dataset), self.table)

    @property
    def storage_path(self) -> str:
        """For the Storage Read API: ``projects/P/datasets/D/tables/T``."""
        return f"projects/{self.project}/datasets/{self.dataset}/tables/{self.table}"

    @property
    def uri(self) -> str:
        return f"{PROTOCOL}://{self.project}:{self.dataset}.{self.table}"
