"""Where query results live: BigQuery's anonymous table (upstream's default) or a managed dataset.

BigQuery writes a query's result to an anonymous table that only the job's own identity can read and that
expires after about 24 hours: a downstream task running as another service account cannot read it, and a
cached Flyte output dangles after a day. With a *managed results dataset* configured (per task, or
connector-wide by environment variable), a task that declares an output writes its result to
``<dataset>.<job id>`` instead: shareable, kept for a configurable number of days (default 7, as the
dataset's default table expiration), and, since the job id is deterministic per attempt, a re-run of the
same attempt writes the same table rather than a second one. An explicit ``destination`` in the task's
``QueryJobConfig`` always wins. Free of flytekit.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from google.cloud import bigquery

from .errors import InvalidTaskError
from .jobs import raise_classified, retry_policy

__all__ = [
    "RESULTS_DATASET_ENV",
    "RESULTS_EXPIRATION_DAYS_ENV",
    "ManagedResults",
    "ResultsDatasets",
    "managed_results",
]

#: ``dataset`` or ``project.dataset``: the connector-wide default for tasks that name none.
RESULTS_DATASET_ENV = "FLYTEKITPLUGINS_BIGQUERY_RESULTS_DATASET"
#: Days a managed result table is kept (the dataset's default table expiration); default 7.
RESULTS_EXPIRATION_DAYS_ENV = "FLYTEKITPLUGINS_BIGQUERY_RESULTS_EXPIRATION_DAYS"
_DEFAULT_EXPIRATION_DAYS = 7.0
_DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class ManagedResults:
    """A dataset that holds result tables, and how long they live."""

    project: str
    dataset: str
    expiration_days: float

    def table(self, job_id: str) -> bigquery.TableReference:
        return bigquery.TableReference(bigquery.DatasetReference(self.project, self.dataset), job_id)


def managed_results(task_setting: str | None, project: str, task_name: str) -> ManagedResults | None:
    """The managed results dataset for a task: its own setting, else the connector default, else none."""
    spec = (task_setting or os.environ.get(RESULTS_DATASET_ENV) or "").strip()
    if not spec:
        return None
    parts = spec.split(".")
    if len(parts) == 1:
        parts = [project, parts[0]]
    if len(parts) != 2 or not all(parts):
        raise InvalidTaskError(
            f"task {task_name!r}: results dataset {spec!r} is not valid; expected 'dataset' or 'project.dataset'"
        )
    raw_days = os.environ.get(RESULTS_EXPIRATION_DAYS_ENV, "")
    try:
        days = float(raw_days) if raw_days.strip() else _DEFAULT_EXPIRATION_DAYS
    except ValueError:
        raise InvalidTaskError(f"{RESULTS_EXPIRATION_DAYS_ENV} must be a number of days") from None
    return ManagedResults(parts[0], parts[1], days)


class ResultsDatasets:
    """Creates managed datasets once per process (a cache owned by the connector)."""

    def __init__(self) -> None:
        self._known: set[tuple[str, str, str | None]] = set()
        self._lock = threading.Lock()

    def ensure(self, client: bigquery.Client, results: ManagedResults, location: str | None) -> None:
        """Create the dataset in the job's location if it is missing; a dataset that exists is left as is."""
        key = (results.project, results.dataset, location)
        if key in self._known:
            return
        dataset = bigquery.Dataset(bigquery.DatasetReference(results.project, results.dataset))
        dataset.location = location
        dataset.default_table_expiration_ms = int(results.expiration_days * _DAY_MS)
        dataset.description = "Query results written by flytekitplugins-bigquery; tables expire automatically."
        try:
            client.create_dataset(dataset, exists_ok=True, retry=retry_policy())
        except Exception as exc:
            raise_classified(exc, f"creating results dataset {results.project}.{results.dataset}")
        with self._lock:
            self._known.add(key)
