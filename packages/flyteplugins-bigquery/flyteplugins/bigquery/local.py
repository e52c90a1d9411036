"""Running a ``BigQueryTask`` in the caller's process (``flyte.with_runcontext(mode="local").run(...)``).

Flyte 2's ``AsyncConnectorExecutorMixin.execute`` creates the job and polls ``get`` every 3 s until a phase it
deems terminal; ``RETRYABLE_FAILED`` is not one of them, so a transient failure would be polled forever, and it
waits 3 s even for a query that finished at once. This loop ends on every phase that ends an attempt, polls
quickly at first (backing off to :data:`MAX_POLL_SECONDS`), and raises :class:`BigQueryTaskFailed` with the
connector's message (which names the task and what was expected). Everything else is the mixin's: the template
as Flyte 2 serializes it, ``secrets`` read from the environment, the caller's values as inputs.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from flyte_bigquery_core.errors import PermanentError
from flyte_bigquery_core.jobconfig import SECRETS_KEY
from flyteidl2.core.execution_pb2 import TaskExecution

if TYPE_CHECKING:
    from flyte.extend import TaskTemplate

__all__ = ["ENDS_ATTEMPT", "MAX_POLL_SECONDS", "BigQueryTaskFailed", "run_locally"]

#: Phases that end an attempt (Flyte's backend retries after RETRYABLE_FAILED; a local run does not).
ENDS_ATTEMPT = frozenset(
    {TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.RETRYABLE_FAILED, TaskExecution.ABORTED}
)
FIRST_POLL_SECONDS = 0.2
MAX_POLL_SECONDS = 3.0


class BigQueryTaskFailed(PermanentError):
    """A task run locally ended in a phase other than SUCCEEDED; the message is the connector's."""


def _secrets(custom: dict[str, Any], task: str) -> dict[str, str]:
    """The task's ``secrets`` (``{name: environment variable}``), read from the environment, as the mixin does."""
    found = {}
    for key, variable in (custom.get(SECRETS_KEY) or {}).items():
        value = os.environ.get(variable)
        if value is None:
            raise PermanentError(f"secret {key!r}: environment variable {variable} is not set", task=task)
        found[key] = value
    return found


async def run_locally(task: TaskTemplate, inputs: dict[str, Any]) -> Any:
    """Run ``task`` through its registered connector with ``inputs``; the declared output (a tuple of one
    ``flyte.io.DataFrame``), or ``None``."""
    from flyte._context import internal_ctx
    from flyte._initialize import get_init_config
    from flyte._internal.runtime.task_serde import get_proto_task
    from flyte.connectors import ConnectorRegistry
    from flyte.models import SerializationContext
    from google.protobuf import json_format

    connector = ConnectorRegistry.get_connector(task.task_type, task.task_type_version)
    ctx = internal_ctx()
    tctx = ctx.data.task_context
    if tctx is None:
        raise RuntimeError("Task context is not set.")
    context = SerializationContext(
        project=tctx.action.project,
        domain=tctx.action.domain,
        org=tctx.action.org,
        code_bundle=tctx.code_bundle,
        version=tctx.version,
        image_cache=tctx.compiled_image_cache,
        root_dir=get_init_config().root_dir,
    )
    template = get_proto_task(task, context, tctx)
    secrets = _secrets(json_format.MessageToDict(template.custom), task.name)
    meta = await connector.create(task_template=template, output_prefix=ctx.raw_data.path, inputs=inputs, **secrets)
    delay = FIRST_POLL_SECONDS
    while True:
        resource = await connector.get(resource_meta=meta, **secrets)
        if resource.phase in ENDS_ATTEMPT:
            break
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_POLL_SECONDS)
    for link in resource.log_links or ():
        tracker = ctx.data.tracker
        if tracker is not None:
            tracker.record_log_links(action_id=tctx.action.name, log_links=[(link.name, link.uri)])
    if resource.phase != TaskExecution.SUCCEEDED:
        phase = TaskExecution.Phase.Name(resource.phase)
        raise BigQueryTaskFailed(f"{phase}: {resource.message}", task=task.name)
    if resource.outputs and getattr(task, "typed_outputs", None) is not None:  # as a service would carry them
        from .typed_results import as_declared

        return await as_declared(resource.outputs, task.interface.outputs)
    return tuple(resource.outputs.values()) if resource.outputs else None
