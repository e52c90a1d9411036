"""The connectors of load, extract and copy tasks: one per task type, each a :class:`~.connector.BigQueryConnector`
that plans its job kind with :func:`flyte_bigquery_core.transfer.plan_transfer` instead of a query.

Everything after planning is the query task's: deterministic job ids, adoption on 409, reuse of an earlier
attempt's job, Flyte labels, ``custom_info``/metrics/logs, retryable against permanent failure, cancel on delete
and past the timeout — the same engine runs the job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flyte_bigquery_core.settings import Settings
from flyte_bigquery_core.transfer import TransferTask, plan_transfer
from flytekit.extend.backend.base_connector import ConnectorRegistry
from flytekit.models.literals import LiteralMap
from flytekit.models.task import TaskTemplate
from flytekit.types.directory import FlyteDirectory

from .connector import BigQueryConnector
from .transfer_literals import transfer_values

__all__ = ["TRANSFER_TASK_TYPES", "CopyConnector", "ExtractConnector", "LoadConnector"]


class _TransferConnector(BigQueryConnector):
    #: The core's job kind.
    kind: str
    planner = staticmethod(plan_transfer)

    def _task(self, template: TaskTemplate) -> TransferTask:
        timeout = template.metadata.timeout if template.metadata is not None else None
        outputs = list(template.interface.outputs) if template.interface and template.interface.outputs else []
        return TransferTask(
            name=template.id.name if template.id else "?",
            kind=self.kind,
            custom=template.custom or {},
            output_name=outputs[0] if outputs else None,
            timeout_seconds=timeout.total_seconds() if timeout else None,
        )

    async def _values(self, inputs: LiteralMap | None, task: Any) -> Mapping[str, Any]:
        return transfer_values(inputs, self.kind, task.name)


class LoadConnector(_TransferConnector):
    """Runs ``bigquery_load_job_task`` tasks as BigQuery load jobs."""

    name = "Bigquery Load Connector"
    served_task_type = "bigquery_load_job_task"
    kind = "load"


class ExtractConnector(_TransferConnector):
    """Runs ``bigquery_extract_job_task`` tasks as BigQuery extract jobs; the output is a ``FlyteDirectory``."""

    name = "Bigquery Extract Connector"
    served_task_type = "bigquery_extract_job_task"
    kind = "extract"

    @staticmethod
    def _output(uri: str) -> Any:
        return FlyteDirectory(path=uri)


class CopyConnector(_TransferConnector):
    """Runs ``bigquery_copy_job_task`` tasks as BigQuery copy jobs (copies, snapshots, clones)."""

    name = "Bigquery Copy Connector"
    served_task_type = "bigquery_copy_job_task"
    kind = "copy"


#: Task type → connector class.
TRANSFER_TASK_TYPES: dict[str, type[_TransferConnector]] = {
    c.served_task_type: c for c in (LoadConnector, ExtractConnector, CopyConnector)
}


def register(settings: Settings | None = None) -> None:
    """Register the three connectors (settings were validated by the query connector's registration)."""
    for connector_type in TRANSFER_TASK_TYPES.values():
        ConnectorRegistry.register(connector_type(settings), override=True)
