"""What the Flyte 2 service tests share: a tiny real connector to serve, request builders, the launcher process.

:class:`EchoConnector` is a real :class:`flyte.connectors.AsyncConnector` (no BigQuery): its resource meta
records what the service handed ``create`` — each input's class and ``repr`` — so a test sees over gRPC exactly
which values reached a connector. Importing this module registers it; the service under test imports it with
``--modules tests.flyte2.service_helpers``.

Requests are built with flyte's own serializer (``convert_from_native_to_inputs``), as Flyte 2 builds them.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from flyte._internal.runtime.convert import convert_from_native_to_inputs
from flyte.connectors import AsyncConnector, ConnectorRegistry, Resource, ResourceMeta
from flyte.models import NativeInterface
from flyte_bigquery_core.testing.service_process import GRPC_OPTIONS, ServiceProcess
from flyteidl2.connector import connector_pb2
from flyteidl2.connector.service_pb2_grpc import AsyncConnectorServiceStub
from flyteidl2.core import identifier_pb2, tasks_pb2
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteidl2.task import common_pb2

__all__ = [
    "ECHO_CATEGORY",
    "ECHO_CONNECTOR",
    "ECHO_TASK_TYPE",
    "FAILING_TASK",
    "FAILURE_SECRET",
    "GRPC_OPTIONS",
    "LOG_LINES",
    "SERVICE_MODULE",
    "EchoConnector",
    "EchoMeta",
    "MaliciousPickle",
    "create_request",
    "echoed",
    "inputs_of",
    "launch",
    "served",
    "service_process",
]

SERVICE_MODULE = "flyteplugins.bigquery.service"
ECHO_TASK_TYPE = "service_echo_task"
ECHO_CONNECTOR = "Echo Connector"
ECHO_CATEGORY = connector_pb2.TaskCategory(name=ECHO_TASK_TYPE, version=0)
#: A task of this name makes the echo connector raise, with a message that must never reach a client.
FAILING_TASK = "fails-with-a-secret"
FAILURE_SECRET = "s3cr3t-value-in-an-exception"
LOG_LINES = ("first line", "second line", "third line")
#: Seconds between two log lines of the echo connector (a stream that is still running when the service stops).
LOG_LINE_SECONDS = 0.3
_REPO = Path(__file__).resolve().parents[2]
_ECHO_MODULE = ("--modules", "tests.flyte2.service_helpers")


@dataclass
class EchoMeta(ResourceMeta):
    """The described inputs (JSON: name → [class name, repr])."""

    inputs: str = "{}"


class EchoConnector(AsyncConnector[EchoMeta]):
    name = ECHO_CONNECTOR
    task_type_name = ECHO_TASK_TYPE
    metadata_type = EchoMeta

    async def create(
        self,
        task_template: tasks_pb2.TaskTemplate,
        output_prefix: str,
        inputs: dict[str, Any] | None = None,
        task_execution_metadata: Any = None,
        **kwargs: Any,
    ) -> EchoMeta:
        if task_template.id.name == FAILING_TASK:
            raise RuntimeError(FAILURE_SECRET)
        described = {name: [type(value).__name__, repr(value)] for name, value in (inputs or {}).items()}
        return EchoMeta(inputs=json.dumps(described))

    async def get(self, resource_meta: EchoMeta, **kwargs: Any) -> Resource:
        return Resource(phase=TaskExecution.SUCCEEDED, custom_info={"inputs": json.loads(resource_meta.inputs)})

    async def delete(self, resource_meta: EchoMeta, **kwargs: Any) -> None:
        return None

    async def get_logs(
        self, resource_meta: EchoMeta, **kwargs: Any
    ) -> AsyncIterator[connector_pb2.GetTaskLogsResponse]:
        for line in LOG_LINES:
            await asyncio.sleep(LOG_LINE_SECONDS)
            body = connector_pb2.GetTaskLogsResponseBody()
            body.lines.add(message=line)
            yield connector_pb2.GetTaskLogsResponse(body=body)


ConnectorRegistry.register(EchoConnector(), override=True)


class MaliciousPickle:
    """What an attacker sends as an input: unpickling it runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


async def inputs_of(values: Mapping[str, tuple[Any, Any]]) -> common_pb2.Inputs:
    """``name → (python type, value)`` serialized by flyte, as Flyte 2 sends them."""
    interface = NativeInterface.from_types(
        inputs={name: (kind, inspect.Parameter.empty) for name, (kind, _) in values.items()}, outputs={}
    )
    converted = await convert_from_native_to_inputs(interface, **{n: v for n, (_, v) in values.items()})
    return converted.proto_inputs


def create_request(
    inputs: common_pb2.Inputs | None = None, *, name: str = "echo", task_type: str = ECHO_TASK_TYPE
) -> connector_pb2.CreateTaskRequest:
    template = tasks_pb2.TaskTemplate(id=identifier_pb2.Identifier(name=name), type=task_type)
    request = connector_pb2.CreateTaskRequest(template=template, output_prefix="/tmp/unused")
    if inputs is not None:
        request.inputs.CopyFrom(inputs)
    return request


def echoed(resource: connector_pb2.Resource) -> dict[str, list[str]]:
    """What the echo connector received: input name → [class name, repr]."""
    from google.protobuf import json_format

    return json_format.MessageToDict(resource.custom_info)["inputs"]


def _environment(env: Mapping[str, str] | None) -> dict[str, str]:
    """The launcher's environment: this one, plus the repository (for ``tests.flyte2.service_helpers``) and
    the package's source tree on the path."""
    path = [str(_REPO), str(_REPO / "packages" / "flyteplugins-bigquery"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "DO_NOT_TRACK": "1", "PYTHONPATH": os.pathsep.join(filter(None, path)), **(env or {})}


def service_process(env: Mapping[str, str] | None = None, args: Sequence[str] = ()) -> ServiceProcess:
    """The launcher as a subprocess, serving the echo connector too (not started; a context manager)."""
    return ServiceProcess(_environment(env), module=SERVICE_MODULE, args=[*_ECHO_MODULE, *args])


def launch(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the launcher to its end (for the ways it refuses to start); its output is captured as text."""
    command = [sys.executable, "-m", SERVICE_MODULE, *_ECHO_MODULE, *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=_environment(env)
    )


#: Phases that end an attempt.
_ENDS_ATTEMPT = {TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.RETRYABLE_FAILED, TaskExecution.ABORTED}


def served(service: ServiceProcess, request: connector_pb2.CreateTaskRequest) -> connector_pb2.Resource:
    """CreateTask on ``service``, then GetTask (under the template's task type) until the attempt ends."""
    category = connector_pb2.TaskCategory(name=request.template.type, version=request.template.task_type_version)

    async def run() -> connector_pb2.Resource:
        async with grpc.aio.insecure_channel(service.target, options=GRPC_OPTIONS) as channel:
            stub = AsyncConnectorServiceStub(channel)
            meta = (await stub.CreateTask(request, timeout=60)).resource_meta
            deadline = time.monotonic() + 60
            while True:
                get = connector_pb2.GetTaskRequest(task_category=category, resource_meta=meta)
                resource = (await stub.GetTask(get, timeout=60)).resource
                if resource.phase in _ENDS_ATTEMPT or time.monotonic() > deadline:
                    return resource
                await asyncio.sleep(0.1)

    return asyncio.run(run())
