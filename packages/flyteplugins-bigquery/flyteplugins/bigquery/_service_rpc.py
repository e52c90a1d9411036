"""The gRPC servicers: flyteidl2's ``AsyncConnectorService`` and ``ConnectorMetadataService`` over the
connectors in flyte's :class:`~flyte.connectors.ConnectorRegistry`.

They call connectors exactly as Flyte 2's own server (``flyte/connectors/_server.py``) does — same arguments,
connection secrets and configs as keyword arguments, ``get_logs`` as a coroutine or an async generator, outputs
turned into literals by flyte's ``get_resource_proto`` — with three differences:

* inputs are decoded by :func:`._service_inputs.input_values`, never by ``cloudpickle.loads``;
* an error ends the call with a status code that says what went wrong (:data:`STATUS_CODES`), never the
  process; the details name the task type and, for our own errors, what was wrong with the request — never an
  input value or a secret (foreign exceptions are reported by class name only, their message is not echoed);
* every call, GetTaskMetrics and GetTaskLogs included, is counted in flyte's ``flyte_connector_*`` metrics.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from http import HTTPStatus
from typing import Any, NoReturn

import grpc
from flyte.connectors import ConnectorRegistry
from flyte.connectors import _server as flyte_server
from flyte.connectors._connector import FlyteConnectorNotFound, get_resource_proto
from flyte_bigquery_core.errors import (
    BigQueryPluginError,
    InvalidMetadataError,
    InvalidTaskError,
    PermanentError,
    TransientError,
    UnsupportedInputError,
)
from flyteidl2.connector import connector_pb2 as pb
from flyteidl2.connector.service_pb2_grpc import AsyncConnectorServiceServicer, ConnectorMetadataServiceServicer

from ._service_inputs import input_values

__all__ = ["STATUS_CODES", "AsyncConnectorServicer", "ConnectorMetadataServicer"]

log = logging.getLogger("flyteplugins.bigquery.service")

#: An exception → the call's status code; the first row the exception is an instance of wins.
STATUS_CODES: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (FlyteConnectorNotFound, grpc.StatusCode.NOT_FOUND),
    (UnsupportedInputError, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidMetadataError, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidTaskError, grpc.StatusCode.INVALID_ARGUMENT),
    (TransientError, grpc.StatusCode.UNAVAILABLE),
    (PermanentError, grpc.StatusCode.FAILED_PRECONDITION),
    (BigQueryPluginError, grpc.StatusCode.INTERNAL),
    (NotImplementedError, grpc.StatusCode.UNIMPLEMENTED),
)
#: flyte's failure counter labels errors with an HTTP status.
_HTTP_STATUS = {
    grpc.StatusCode.NOT_FOUND: HTTPStatus.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    grpc.StatusCode.FAILED_PRECONDITION: HTTPStatus.UNPROCESSABLE_ENTITY,
    grpc.StatusCode.UNIMPLEMENTED: HTTPStatus.NOT_IMPLEMENTED,
}


_UNKNOWN_TASK_TYPE = "(unknown)"


def _status(error: BaseException) -> grpc.StatusCode:
    return next((code for kind, code in STATUS_CODES if isinstance(error, kind)), grpc.StatusCode.INTERNAL)


def _details(error: BaseException, code: grpc.StatusCode, task_type: str, operation: str) -> str:
    if isinstance(error, (BigQueryPluginError, FlyteConnectorNotFound)):
        return str(error)  # our messages name the task and input, never a value
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return f"the connector for task type {task_type!r} does not implement {operation}"
    return f"failed to {operation} a {task_type!r} task: unexpected {type(error).__name__} (see the service log)"


class _Call:
    """One RPC, as ``async with _Call(...)``: times it, counts it in flyte's metrics, and ends the call with a
    status code when the block raises (``context.abort``), never letting the error reach gRPC's own handler."""

    def __init__(self, context: grpc.aio.ServicerContext, task_type: str, operation: str) -> None:
        self.context, self.task_type, self.operation = context, task_type, operation
        self.started = 0.0

    async def __aenter__(self) -> _Call:
        self.started = time.perf_counter()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        labels = {"task_type": self.task_type, "operation": self.operation}
        if error is None:
            flyte_server.request_latency.labels(**labels).observe(time.perf_counter() - self.started)
            flyte_server.request_success_count.labels(**labels).inc()
        elif isinstance(error, Exception) and not isinstance(error, grpc.aio.AbortError):
            await self._abort(error)

    async def _abort(self, error: Exception) -> NoReturn:
        code = _status(error)
        http = _HTTP_STATUS.get(code, HTTPStatus.INTERNAL_SERVER_ERROR)
        # A task type no connector serves comes from the request: one label for all, not one series each.
        task_type = _UNKNOWN_TASK_TYPE if isinstance(error, FlyteConnectorNotFound) else self.task_type
        flyte_server.request_failure_count.labels(task_type=task_type, operation=self.operation, error_code=http).inc()
        if code is grpc.StatusCode.INTERNAL:  # a bug: keep where it happened, not the message (it may hold values)
            frames = "".join(traceback.format_tb(error.__traceback__))
            log.error("%s %s: %s\n%s", self.operation, self.task_type, type(error).__name__, frames)
        else:
            log.warning("%s %s: %s", self.operation, self.task_type, code.name)
        await self.context.abort(code, _details(error, code, self.task_type, self.operation))
        raise AssertionError("unreachable: abort raises")  # pragma: no cover


@contextlib.contextmanager
def _no_foreign_errors(metadata_type: type) -> Iterator[None]:
    """A resource meta that does not decode is the request's fault, whatever the decoder raised."""
    try:
        yield
    except BigQueryPluginError:
        raise
    except Exception as e:
        raise InvalidMetadataError(
            f"resource_meta is not an encoded {metadata_type.__name__} ({type(e).__name__})"
        ) from None


def _connector(category: pb.TaskCategory) -> Any:
    return ConnectorRegistry.get_connector(category.name, category.version)


def _meta(connector: Any, data: bytes) -> Any:
    with _no_foreign_errors(connector.metadata_type):
        return connector.metadata_type.decode(data)


def _connection(request: Any) -> dict[str, str]:
    """Connection secrets and configs, as flyte's server passes them: keyword arguments of the connector."""
    return {**request.connection.secrets, **request.connection.configs}


def _task_name(template: Any) -> str:
    return str(template.id.name or template.type)


class AsyncConnectorServicer(AsyncConnectorServiceServicer):
    """flyteidl2's ``AsyncConnectorService`` over the registered connectors."""

    async def CreateTask(self, request: pb.CreateTaskRequest, context: grpc.aio.ServicerContext) -> Any:
        template = request.template
        async with _Call(context, template.type, "create"):
            connector = ConnectorRegistry.get_connector(template.type, template.task_type_version)
            given = request.inputs if request.HasField("inputs") else None
            if given is not None:
                flyte_server.input_literal_size.labels(task_type=template.type).observe(given.ByteSize())
            meta = await connector.create(
                task_template=template,
                output_prefix=request.output_prefix,
                inputs=await input_values(given, _task_name(template)),
                task_execution_metadata=request.task_execution_metadata,
                **_connection(request),
            )
            return pb.CreateTaskResponse(resource_meta=meta.encode())

    async def GetTask(self, request: pb.GetTaskRequest, context: grpc.aio.ServicerContext) -> Any:
        async with _Call(context, request.task_category.name, "get"):
            connector = _connector(request.task_category)
            meta = _meta(connector, request.resource_meta)
            resource = await connector.get(resource_meta=meta, **_connection(request))
            return pb.GetTaskResponse(resource=await get_resource_proto(resource))

    async def DeleteTask(self, request: pb.DeleteTaskRequest, context: grpc.aio.ServicerContext) -> Any:
        async with _Call(context, request.task_category.name, "delete"):
            connector = _connector(request.task_category)
            await connector.delete(resource_meta=_meta(connector, request.resource_meta), **_connection(request))
            return pb.DeleteTaskResponse()

    async def GetTaskMetrics(self, request: pb.GetTaskMetricsRequest, context: grpc.aio.ServicerContext) -> Any:
        async with _Call(context, request.task_category.name, "get_metrics"):
            connector = _connector(request.task_category)
            return await connector.get_metrics(resource_meta=_meta(connector, request.resource_meta))

    async def GetTaskLogs(
        self, request: pb.GetTaskLogsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.GetTaskLogsResponse]:
        """Streams what the connector's ``get_logs`` yields (an async generator) or returns (a coroutine)."""
        async with _Call(context, request.task_category.name, "get_logs"):
            connector = _connector(request.task_category)
            result = connector.get_logs(resource_meta=_meta(connector, request.resource_meta), token=request.token)
            if inspect.isasyncgen(result):
                async for message in result:
                    yield message
            else:
                yield await result


class ConnectorMetadataServicer(ConnectorMetadataServiceServicer):
    """flyteidl2's ``ConnectorMetadataService``: the registered connectors and their task categories."""

    async def GetConnector(self, request: pb.GetConnectorRequest, context: grpc.aio.ServicerContext) -> Any:
        try:
            connector = ConnectorRegistry._get_connector_metadata(request.name)
        except FlyteConnectorNotFound as e:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(e))
        return pb.GetConnectorResponse(connector=connector)

    async def ListConnectors(self, request: pb.ListConnectorsRequest, context: grpc.aio.ServicerContext) -> Any:
        return pb.ListConnectorsResponse(connectors=ConnectorRegistry._list_connectors())
