"""The Flyte 2 connectors of load, extract and copy tasks: one per task type, each a
:class:`~.connector.BigQueryConnector` whose core plans its job kind with
:func:`flyte_bigquery_core.transfer.plan_transfer` instead of a query.

Everything after planning is the query task's: deterministic job ids, adoption on 409, reuse of an earlier
attempt's job, Flyte labels, ``custom_info``/metrics/logs, retryable against permanent failure, cancel on delete
and past the timeout — the same engine runs the job. Registered with Flyte 2 when imported (the
``flyte.connectors`` entry points ``bigquery_load``, ``bigquery_extract`` and ``bigquery_copy`` import it, and so
does ``import flyteplugins.bigquery``, for local runs).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, ClassVar

from flyte.connectors import ConnectorRegistry
from flyte_bigquery_core.connector_core import at_start_up
from flyte_bigquery_core.transfer import TransferTask, plan_transfer
from flyteidl2.core.tasks_pb2 import TaskTemplate
from google.protobuf import json_format

from .connector import BigQueryConnector
from .transfer_inputs import transfer_values

__all__ = ["TRANSFER_TASK_TYPES", "CopyConnector", "ExtractConnector", "LoadConnector", "transfer_task"]


def transfer_task(template: TaskTemplate, kind: str) -> TransferTask:
    """The core's view of a serialized load, extract or copy task template."""
    timeout = template.metadata.timeout if template.metadata.HasField("timeout") else None
    seconds = timeout.ToTimedelta().total_seconds() if timeout is not None else None
    outputs = list(template.interface.outputs.variables)
    return TransferTask(
        name=template.id.name or "?",
        kind=kind,
        custom=json_format.MessageToDict(template.custom) if template.HasField("custom") else {},
        output_name=outputs[0].key if outputs else None,
        timeout_seconds=seconds or None,
    )


class _TransferConnector(BigQueryConnector):
    #: The core's job kind.
    kind: ClassVar[str]
    planner = staticmethod(plan_transfer)

    def _task(self, template: TaskTemplate) -> TransferTask:
        return transfer_task(template, self.kind)

    def _values(self, inputs: dict[str, Any] | None, task: Any) -> Awaitable[dict[str, Any]]:
        return transfer_values(inputs, self.kind, task.name)


class LoadConnector(_TransferConnector):
    """Runs ``bigquery_load_job_task`` tasks as BigQuery load jobs; the output is the table as a
    ``flyte.io.DataFrame``."""

    name = "Bigquery Load Connector"
    task_type_name = "bigquery_load_job_task"
    kind = "load"


class ExtractConnector(_TransferConnector):
    """Runs ``bigquery_extract_job_task`` tasks as BigQuery extract jobs; the output is a ``flyte.io.Dir``."""

    name = "Bigquery Extract Connector"
    task_type_name = "bigquery_extract_job_task"
    kind = "extract"

    @staticmethod
    def _output(uri: str) -> Any:
        from flyte.io import Dir

        return Dir(path=uri)


class CopyConnector(_TransferConnector):
    """Runs ``bigquery_copy_job_task`` tasks as BigQuery copy jobs (copies, snapshots, clones); the output is the
    destination as a ``flyte.io.DataFrame``."""

    name = "Bigquery Copy Connector"
    task_type_name = "bigquery_copy_job_task"
    kind = "copy"


#: Task type → connector class.
TRANSFER_TASK_TYPES: dict[str, type[_TransferConnector]] = {
    c.task_type_name: c for c in (LoadConnector, ExtractConnector, CopyConnector)
}


def _register() -> None:
    """Register the three connectors (importing twice is harmless); a malformed setting stops the process, as
    for the query connector (:func:`.connector._register`)."""
    from .service import EXIT_BAD_SETTINGS

    for connector_type in TRANSFER_TASK_TYPES.values():
        connector = at_start_up(connector_type, "flyteplugins-bigquery", EXIT_BAD_SETTINGS)
        ConnectorRegistry.register(connector, override=True)


_register()
