"""Shared test helpers: serialize a task as Flyte would and drive the connector through its API."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any

from flytekit import FlyteContextManager
from flytekit.configuration import Image, ImageConfig, SerializationSettings
from flytekit.core.type_engine import TypeEngine
from flytekit.extend.backend.base_connector import Resource
from flytekit.extend.backend.utils import is_terminal_phase
from flytekit.models.literals import LiteralMap
from flytekit.models.task import TaskTemplate
from flytekit.tools.translator import get_serializable

from flytekitplugins.bigquery.connector import BigQueryConnector
from flytekitplugins.bigquery.metadata import BigQueryMetadata

SETTINGS = SerializationSettings(
    project="flytesnacks",
    domain="development",
    version="v1",
    image_config=ImageConfig(default_image=Image(name="default", fqn="img", tag="latest")),
)


def template_of(task: Any) -> TaskTemplate:
    """The task template exactly as ``pyflyte register`` would serialize it."""
    return get_serializable(OrderedDict(), SETTINGS, task).template


def literals_of(task: Any, **inputs: Any) -> LiteralMap:
    ctx = FlyteContextManager.current_context()
    return TypeEngine.dict_to_literal_map(ctx, inputs, task.get_input_types())


def wait(connector: BigQueryConnector, meta: BigQueryMetadata, timeout: float = 60) -> Resource:
    """Poll ``get`` until the job reaches a terminal phase."""
    deadline = time.monotonic() + timeout
    while True:
        resource = asyncio.run(connector.get(meta))
        if is_terminal_phase(resource.phase) or time.monotonic() > deadline:
            return resource
        time.sleep(0.1)


def run(connector: BigQueryConnector, task: Any, **inputs: Any) -> tuple[BigQueryMetadata, Resource]:
    meta = asyncio.run(connector.create(template_of(task), literals_of(task, **inputs)))
    return meta, wait(connector, meta)


def execution_metadata(execution: str = "exec1", node: str = "n0", attempt: int = 0, task: str = "t") -> Any:
    """Flyte's ``TaskExecutionMetadata`` for one attempt, as the backend sends it with ``CreateTask``."""
    from flytekit.models.core.identifier import (
        Identifier,
        NodeExecutionIdentifier,
        ResourceType,
        TaskExecutionIdentifier,
        WorkflowExecutionIdentifier,
    )
    from flytekit.models.task import TaskExecutionMetadata

    task_execution_id = TaskExecutionIdentifier(
        task_id=Identifier(ResourceType.TASK, "flytesnacks", "development", task, "v1"),
        node_execution_id=NodeExecutionIdentifier(
            node, WorkflowExecutionIdentifier("flytesnacks", "development", execution)
        ),
        retry_attempt=attempt,
    )
    return TaskExecutionMetadata(task_execution_id, "ns", {}, {}, "sa", {}, None)
