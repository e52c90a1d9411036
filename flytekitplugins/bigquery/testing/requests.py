"""What Flyte's backend sends the connector service, built once for tests, benchmarks, the soak and the image's
smoke test: a task serialized as ``pyflyte register`` writes it, and ``CreateTaskRequest``s for one attempt.

Flyte's project and domain are ``flytesnacks``/``development``, the version ``v1``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from flyteidl.admin import agent_pb2
from flyteidl.core import identifier_pb2, literals_pb2, tasks_pb2
from flytekit.configuration import Image, ImageConfig, SerializationSettings
from flytekit.models.task import TaskTemplate
from flytekit.tools.translator import get_serializable

__all__ = ["DOMAIN", "PROJECT", "SETTINGS", "create_task_request", "task_execution_metadata", "template_of"]

PROJECT = "flytesnacks"
DOMAIN = "development"
#: Serialization settings as ``pyflyte register`` would use them for this project and domain.
SETTINGS = SerializationSettings(
    project=PROJECT,
    domain=DOMAIN,
    version="v1",
    image_config=ImageConfig(default_image=Image(name="default", fqn="img", tag="latest")),
)


def template_of(task: Any) -> TaskTemplate:
    """The task template exactly as ``pyflyte register`` would serialize it."""
    return get_serializable(OrderedDict(), SETTINGS, task).template


def task_execution_metadata(
    task_name: str, execution: str, attempt: int = 0, node: str = "n0"
) -> agent_pb2.TaskExecutionMetadata:
    """flyteidl's ``TaskExecutionMetadata`` of one attempt of ``task_name``, as propeller sends it."""
    return agent_pb2.TaskExecutionMetadata(
        task_execution_id=identifier_pb2.TaskExecutionIdentifier(
            task_id=identifier_pb2.Identifier(
                resource_type=identifier_pb2.TASK, project=PROJECT, domain=DOMAIN, name=task_name, version="v1"
            ),
            node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                node_id=node,
                execution_id=identifier_pb2.WorkflowExecutionIdentifier(project=PROJECT, domain=DOMAIN, name=execution),
            ),
            retry_attempt=attempt,
        ),
        namespace=f"{PROJECT}-{DOMAIN}",
    )


def create_task_request(
    template: tasks_pb2.TaskTemplate,
    inputs: literals_pb2.LiteralMap | None,
    execution: str,
    attempt: int = 0,
    node: str = "n0",
    output_prefix: str = "s3://bucket/prefix",
) -> agent_pb2.CreateTaskRequest:
    """``CreateTask`` of one attempt of the serialized ``template`` with ``inputs``."""
    return agent_pb2.CreateTaskRequest(
        template=template,
        inputs=inputs if inputs is not None else literals_pb2.LiteralMap(),
        output_prefix=output_prefix,
        task_execution_metadata=task_execution_metadata(template.id.name, execution, attempt, node),
    )
