"""Where query results live: BigQuery's anonymous table (upstream's default) or a managed dataset.

BigQuery writes a query's result to an anonymous table that only the job's own identity can read and that
expires after about 24 hours: a downstream task running as another service account cannot read it, and a
cached Flyte output dangles after a day. With a *managed results dataset* configured (per task, or
connector-wide by environment variable), a task that declares an output writes its result to
``<dataset>.<job id>`` instead: shareable, kept for a configurable number of days (default 7, as the
dataset's default table expiration), and, since the job id is deterministic per attempt, a re-run of the
same attempt writes the same table rather than a second one. An explicit ``destination`` in the task's
``QueryJobConfig`` always wins. Free of flytekit.

The dataset lives in the query's location — the task's ``Location``, else the one BigQuery resolves for the
query in a dry run — because a query can only write where it reads. A dataset that already exists elsewhere is
refused with both locations named (:meth:`ManagedResults.check_location`), never written across locations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import InvalidTaskError, PermanentError
from .settings import RESULTS_DATASET_ENV, RESULTS_EXPIRATION_DAYS_ENV, Settings, current_settings

if TYPE_CHECKING:  # google-cloud-bigquery imports pandas, pyarrow and the Storage client: loaded on first use
    from google.cloud import bigquery

__all__ = [
    "RESULTS_DATASET_ENV",
    "RESULTS_EXPIRATION_DAYS_ENV",
    "ManagedResults",
    "managed_results",
]

_DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class ManagedResults:
    """A dataset that holds result tables, and how long they live."""

    project: str
    dataset: str
    expiration_days: float

    def table(self, job_id: str) -> bigquery.TableReference:
        from google.cloud import bigquery

        return bigquery.TableReference(bigquery.DatasetReference(self.project, self.dataset), job_id)

    def dataset_resource(self, location: str | None) -> dict[str, Any]:
        """The ``datasets.insert`` body: in the job's location, tables expiring after ``expiration_days``."""
        resource: dict[str, Any] = {
            "datasetReference": {"projectId": self.project, "datasetId": self.dataset},
            "defaultTableExpirationMs": str(int(self.expiration_days * _DAY_MS)),
            "description": "Query results written by flytekitplugins-bigquery; tables expire automatically.",
        }
        if location:
            resource["location"] = location
        return resource

    def check_location(self, dataset_location: str | None, query_location: str) -> None:
        """Refuse a dataset in another location than the query's: BigQuery cannot write a query's result
        across locations ("Cannot read and write in different locations"), and a dataset's location is fixed
        for good. Locations compare case-insensitively (BigQuery accepts ``eu`` for ``EU``)."""
        if not dataset_location or dataset_location.casefold() == query_location.casefold():
            return
        name = f"{self.project}.{self.dataset}"
        raise PermanentError(
            f"the managed results dataset {name} is in {dataset_location} but the query runs in {query_location}, "
            "and BigQuery cannot write a query's result to another location; nothing was run. Name a results "
            f"dataset in {query_location} for this task (BigQueryConfig(ResultsDataset=...)), set the task's "
            f"Location to {dataset_location} if the tables it reads are there, or recreate {name} in {query_location}"
        )


def managed_results(
    task_setting: str | None, project: str, task_name: str, settings: Settings | None = None
) -> ManagedResults | None:
    """The managed results dataset for a task: its own setting, else the connector default
    (``settings.results_dataset``; ``settings`` defaults to the process's), else none."""
    defaults = settings if settings is not None else current_settings()
    spec = (task_setting or defaults.results_dataset or "").strip()
    if not spec:
        return None
    parts = spec.split(".")
    if len(parts) == 1:
        parts = [project, parts[0]]
    if len(parts) != 2 or not all(parts):
        raise InvalidTaskError(
            f"results dataset {spec!r} is not valid; expected 'dataset' or 'project.dataset'", task=task_name
        )
    return ManagedResults(parts[0], parts[1], defaults.results_expiration_days)
