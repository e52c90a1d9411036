"""Bad input, table-driven, through both paths: the connector in-process and the gRPC service.

Each row is one kind of bad input and states its expected outcome: the Flyte phase the task ends in plus
fragments of its message, or a gRPC status code (service) / exception (in-process). The same protobuf
request runs through

* the local path: ``BigQueryConnector.create`` then ``get`` in this process (what ``pyflyte run`` does), and
* the service path: ``CreateTask``/``GetTask`` over gRPC to ``python -m flytekitplugins.bigquery.service``;

both reach the local BigQuery through the fault proxy, which plays the rejections BigQuery makes and the
local BigQuery does not (invalid labels, an unknown project). After every service row the service still
answers a valid request. Messages of refusals name the task and the offending item; no message ever
carries an input value (rows pass distinctive values and check for them).

Rows marked ``bug=`` are bugs found here: strict xfails whose reason says where and how to fix them, so
they turn red (remove the mark) once fixed.
"""

from __future__ import annotations

import asyncio
import datetime
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from flyte_bigquery_core.errors import InvalidMetadataError, InvalidTaskError, UnsupportedInputError
from flyte_bigquery_core.testing.faultproxy import FaultProxy
from flyteidl.admin import agent_pb2
from flyteidl.core import literals_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service.agent_pb2_grpc import AsyncAgentServiceStub
from flytekit import StructuredDataset
from flytekit.exceptions.system import FlyteConnectorNotFound
from flytekit.extend.backend.base_connector import ConnectorRegistry
from flytekit.models.literals import LiteralMap
from flytekit.models.task import TaskExecutionMetadata, TaskTemplate
from flytekit.types.file import FlyteFile
from google.cloud import bigquery
from google.protobuf import json_format

from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask
from flytekitplugins.bigquery.connector import TASK_TYPE, BigQueryConnector
from flytekitplugins.bigquery.metadata import BigQueryMetadata

from .helpers import CATEGORY, execution_metadata_pb, jobs_of, new_execution, poll, template_of, wait

pytestmark = pytest.mark.integration

TASK = "bad_input.task"
SECRET = "s3cr3t-VALUE-b4d1nput"
SECRET_INT = 7_350_918_264_113
FAILED, SUCCEEDED = TaskExecution.FAILED, TaskExecution.SUCCEEDED
_INSERT = ("POST", r"/projects/[^/]+/jobs$")


# --- building requests --------------------------------------------------------------------------------


def _int(value: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value)))


def _str(value: str) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(string_value=value)))


def _float(value: float) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(float_value=value)))


def _bool(value: bool) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(boolean=value)))


def _list(*items: literals_pb2.Literal) -> literals_pb2.Literal:
    return literals_pb2.Literal(collection=literals_pb2.LiteralCollection(literals=list(items)))


def _binary(value: bytes, tag: str) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(binary=literals_pb2.Binary(value=value, tag=tag)))


def _generic(value: dict[str, Any]) -> literals_pb2.Literal:
    literal = literals_pb2.Literal()
    literal.scalar.generic.update(value)
    return literal


def _blob(uri: str, format: str) -> literals_pb2.Literal:
    literal = literals_pb2.Literal()
    literal.scalar.blob.uri = uri
    literal.scalar.blob.metadata.type.format = format
    return literal


def _task_template(
    sql: str,
    inputs: dict[str, Any] | None = None,
    custom: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    **config: Any,
) -> Callable[[str], Any]:
    """A builder of the serialized template of a task (custom fields patched after serialization, for what
    the task class refuses at definition)."""

    def build(project: str) -> Any:
        task = BigQueryTask(
            name=TASK,
            query_template=sql,
            task_config=BigQueryConfig(ProjectID=project, Location="US", **config),
            inputs=inputs,
            output_structured_dataset_type=StructuredDataset,
        )
        template = template_of(task).to_flyte_idl()
        if custom is not None or drop:
            fields = json_format.MessageToDict(template.custom)
            fields.update(custom or {})
            for key in drop:
                fields.pop(key, None)
            template.custom.Clear()
            template.custom.update(fields)
        return template

    return build


# --- create rows: the task must end in a phase ---------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One bad input: the request, the phase it must end in and what its message must (not) say."""

    id: str
    template: Callable[[str], Any]
    inputs: dict[str, literals_pb2.Literal] = field(default_factory=dict)
    phase: int = FAILED
    fragments: tuple[str, ...] = ()
    #: A refusal of ours names the task; BigQuery's own verdicts carry BigQuery's message instead.
    names_task: bool = True
    #: Jobs the request may start: 0 for a refusal before submission.
    jobs: int = 0
    #: A rejection BigQuery makes that the local BigQuery does not: (status, reason, message) on jobs.insert.
    bigquery_rejects: tuple[int, str, str] | None = None
    bug: str | None = None


_INT = _task_template("SELECT @x AS x", {"x": int})
_STR = _task_template("SELECT @s AS s", {"s": str})
_DATE = _task_template("SELECT @d AS d", {"d": datetime.date})
_LIST = _task_template("SELECT ARRAY_LENGTH(@xs) AS n", {"xs": list[int]})


@dataclass
class Point:
    x: int
    y: int


_STRUCT = _task_template("SELECT @p.x AS x", {"p": Point})


def _given_x(
    id: str,
    sql: str,
    fragments: tuple[str, ...] = (),
    *,
    phase: int = FAILED,
    names_task: bool = True,
    jobs: int = 0,
    **template: Any,
) -> Row:
    """A row whose task runs ``sql``, declares ``x: int`` and is given ``SECRET_INT``; ``template`` holds the rest of
    the task's template (``custom``, ``drop``, ``QueryJobConfig``)."""
    task = _task_template(sql, {"x": int}, **template)
    return Row(id, task, {"x": _int(SECRET_INT)}, phase=phase, fragments=fragments, names_task=names_task, jobs=jobs)


CREATE_ROWS: tuple[Row, ...] = (
    # wrong, missing and mistyped inputs
    Row("missing-input", _INT, {}, fragments=("@x", "declared inputs: none")),
    Row("input-under-another-name", _INT, {"y": _str(SECRET)}, fragments=("@x", "declared inputs: y")),
    Row("string-literal-for-int", _INT, {"x": _str(SECRET)}, fragments=("'x'", "declared as int", "str")),
    Row("float-literal-for-int", _INT, {"x": _float(2.5)}, fragments=("'x'", "declared as int", "float")),
    Row("bool-literal-for-int", _INT, {"x": _bool(True)}, fragments=("'x'", "declared as int", "bool")),
    Row("int-literal-for-str", _STR, {"s": _int(SECRET_INT)}, fragments=("'s'", "declared as str", "int")),
    Row("unparseable-date", _DATE, {"d": _str(SECRET)}, fragments=("'d'", "expected a date value")),
    Row("list-literal-for-int", _INT, {"x": _list(_int(SECRET_INT))}, fragments=("'x'", "declared as int", "list")),
    Row("record-literal-for-int", _INT, {"x": _generic({"k": SECRET})}, fragments=("'x'", "declared as int")),
    Row("string-literal-for-list", _LIST, {"xs": _str(SECRET)}, fragments=("'xs", "declared as int", "str")),
    Row("nested-list-for-list", _LIST, {"xs": _list(_list(_int(1)))}, fragments=("'xs'", "list of lists")),
    Row("int-literal-for-struct", _STRUCT, {"p": _int(SECRET_INT)}, fragments=("'p'", "expected a record")),
    Row("binary-of-unknown-tag", _INT, {"x": _binary(SECRET.encode(), "proto")}, fragments=("'x'", "'proto'")),
    Row("file-for-int", _INT, {"x": _blob("s3://bucket/input.csv", "csv")}, fragments=("'x'", "files, directories")),
    Row(
        "malformed-msgpack",
        _INT,
        {"x": _binary(b"\xc1" + SECRET.encode(), "msgpack")},
        fragments=("'x'",),
    ),
    Row(
        "unreadable-pickled-input",
        _INT,
        {"x": _blob("/nonexistent/bad_input/input.pkl", "PythonPickle")},
        fragments=("'x'", "could not be read"),
    ),
    # query parameters and templates
    Row("unknown-parameter", _task_template("SELECT @nope AS y"), fragments=("@nope", "not inputs")),
    _given_x("unknown-parameters", "SELECT @x + @a + @b AS y", fragments=("@a", "@b", "declared inputs: x")),
    _given_x(
        "placeholder-naming-no-input",
        "SELECT {{ .inputs.missing }} AS y",
        fragments=("{{ .inputs.missing }}", "declared inputs: x"),
    ),
    _given_x("placeholder-of-outputs", "SELECT {{ .outputs.x }} AS y", fragments=("{{ .outputs.x }}", "not supported")),
    _given_x(
        "placeholder-without-dot", "SELECT {{ inputs.x }} AS y", fragments=("malformed placeholder", "{{ inputs.x }}")
    ),
    _given_x(
        "placeholder-with-filter", "SELECT {{ .inputs.x | upper }} AS y", fragments=("malformed placeholder", "| upper")
    ),
    Row("empty-placeholder", _task_template("SELECT {{}} AS y"), fragments=("malformed placeholder", "{{}}")),
    _given_x(
        "unclosed-placeholder",
        "SELECT {{ .inputs.x } AS y",
        fragments=("invalidQuery", "Syntax error"),
        names_task=False,
        jobs=1,
    ),
    Row("empty-query", _task_template(""), fragments=("no SQL statement",)),
    Row("blank-query", _task_template("  \n\t "), fragments=("no SQL statement",)),
    _given_x("two-megabyte-query", "SELECT @x AS x -- " + "y" * (2 * 2**20), phase=SUCCEEDED, jobs=1),
    _given_x("query-bigquery-cannot-parse", "SELEC @x", fragments=("invalidQuery", "SELEC"), names_task=False, jobs=1),
    Row(
        "query-of-a-missing-table",
        _task_template("SELECT * FROM bad_input_missing_dataset.t"),
        fragments=("notFound", "bad_input_missing_dataset"),
        names_task=False,
        jobs=1,
    ),
    # where and how the job runs
    Row("missing-project", _task_template("SELECT 1 AS one", drop=("ProjectID",)), fragments=("ProjectID",)),
    Row("empty-project", _task_template("SELECT 1 AS one", custom={"ProjectID": "  "}), fragments=("ProjectID",)),
    Row("numeric-project", _task_template("SELECT 1 AS one", custom={"ProjectID": 42}), fragments=("ProjectID",)),
    Row(
        "project-bigquery-does-not-know",
        _task_template("SELECT 1 AS one"),
        fragments=("notFound", "Project"),
        names_task=False,
        bigquery_rejects=(404, "notFound", "Not found: Project bad-input-no-such-project"),
    ),
    Row("numeric-location", _task_template("SELECT 1 AS one", custom={"Location": 7}), fragments=("Location",)),
    Row(
        "location-bigquery-does-not-know",
        _task_template("SELECT 1 AS one", custom={"Location": "mars-central9"}),
        fragments=("invalid", "mars-central9"),
        names_task=False,
        bigquery_rejects=(400, "invalid", "Invalid value for location: mars-central9"),
    ),
    Row(
        "invalid-labels",
        _task_template("SELECT 1 AS one", QueryJobConfig=bigquery.QueryJobConfig(labels={"Bad Key!": "v"})),
        fragments=("invalid", "Bad Key!"),
        names_task=False,
        bigquery_rejects=(400, "invalid", "Label key 'Bad Key!' has invalid characters"),
    ),
    _given_x(
        "legacy-sql-with-named-parameters",
        "SELECT @x AS x",
        fragments=("legacy SQL", "named query parameters"),
        QueryJobConfig=bigquery.QueryJobConfig(use_legacy_sql=True),
    ),
    _given_x(
        "upstream-template-with-legacy-sql-and-parameters",
        "SELECT @x AS x",
        fragments=("legacy SQL", "named query parameters"),
        custom={"useLegacySql": True},
        drop=("QueryJobConfig",),
    ),
    Row(
        "query-job-config-not-an-object",
        _task_template("SELECT 1 AS one", custom={"QueryJobConfig": {"query": "garbage"}}),
        fragments=("QueryJobConfig",),
    ),
    Row(
        "query-job-config-labels-not-a-map",
        _task_template("SELECT 1 AS one", custom={"QueryJobConfig": {"labels": ["a"], "query": {}}}),
        fragments=("QueryJobConfig",),
    ),
    _given_x(
        "unknown-input-type-descriptor",
        "SELECT @x AS x",
        fragments=("'x'", "InputTypes"),
        custom={"InputTypes": {"x": "no_such_type"}},
    ),
    _given_x(
        "malformed-input-type-descriptor",
        "SELECT @x AS x",
        fragments=("'x'", "InputTypes"),
        custom={"InputTypes": {"x": {"weird": 1}}},
    ),
    Row(
        "maximum-bytes-not-a-size",
        _task_template("SELECT 1 AS one", custom={"MaximumBytes": "lots"}),
        fragments=("maximum bytes", "'lots'"),
    ),
    Row(
        "results-dataset-not-a-dataset",
        _task_template("SELECT 1 AS one", custom={"ResultsDataset": "a.b.c.d"}),
        fragments=("results dataset", "'a.b.c.d'"),
    ),
)


def _marks(bug: str | None) -> list[Any]:
    return [pytest.mark.xfail(strict=True, reason=bug)] if bug else []


def _params(rows: tuple[Any, ...]) -> list[Any]:
    return [pytest.param(row, id=row.id, marks=_marks(row.bug)) for row in rows]


def _assert_outcome(row: Row, phase: int, message: str, jobs: int) -> None:
    assert TaskExecution.Phase.Name(phase) == TaskExecution.Phase.Name(row.phase), message
    for fragment in row.fragments:
        assert fragment in message
    if row.phase != SUCCEEDED and row.names_task:
        assert repr(TASK) in message
    assert "Traceback" not in message
    assert SECRET not in message and str(SECRET_INT) not in message
    assert jobs == row.jobs


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_connector(emulator: Any, proxy: FaultProxy) -> Iterator[BigQueryConnector]:
    """The connector in this process, reaching the local BigQuery through the fault proxy."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BIGQUERY_EMULATOR_HOST", proxy.url)
        yield BigQueryConnector()


@pytest.fixture(scope="module")
def finished_job(agents_via_proxy: AsyncAgentServiceStub, emulator: Any) -> bytes:
    """The metadata of a job that succeeded: asking about it is the valid request after each row."""
    build = _task_template("SELECT 1 AS one")
    request = agent_pb2.CreateTaskRequest(
        template=build(emulator.project),
        output_prefix="s3://b/p",
        task_execution_metadata=execution_metadata_pb(new_execution()),
    )
    meta = agents_via_proxy.CreateTask(request, timeout=60).resource_meta
    assert poll(agents_via_proxy, meta).phase == SUCCEEDED
    return meta


@pytest.fixture
def still_serving(
    agents_via_proxy: AsyncAgentServiceStub, proxied_service: Any, finished_job: bytes, faults: FaultProxy
) -> Iterator[None]:
    """After the row: the service process is alive and answers a valid request correctly."""
    yield
    faults.clear()
    assert proxied_service._proc is not None and proxied_service._proc.poll() is None, proxied_service.log_text()
    request = agent_pb2.GetTaskRequest(task_category=CATEGORY, resource_meta=finished_job)
    assert agents_via_proxy.GetTask(request, timeout=30).resource.phase == SUCCEEDED


def _reject(faults: FaultProxy, row: Row) -> Any:
    if row.bigquery_rejects is None:
        return None
    status, reason, message = row.bigquery_rejects
    return faults.add_rule("status", *_INSERT, count=None, status=status, reason=reason, message=message)


# --- create rows through both paths -------------------------------------------------------------------


@pytest.mark.parametrize("row", _params(CREATE_ROWS))
def test_bad_input_run_in_process_ends_in_the_expected_phase(
    row: Row, local_connector: BigQueryConnector, faults: FaultProxy, emulator: Any, bq_client: bigquery.Client
) -> None:
    rejection = _reject(faults, row)
    execution = new_execution()
    template = TaskTemplate.from_flyte_idl(row.template(emulator.project))
    inputs = LiteralMap.from_flyte_idl(literals_pb2.LiteralMap(literals=row.inputs))
    metadata = TaskExecutionMetadata.from_flyte_idl(execution_metadata_pb(execution))
    meta = asyncio.run(local_connector.create(template, inputs, task_execution_metadata=metadata))
    resource = wait(local_connector, meta)

    _assert_outcome(row, resource.phase, resource.message or "", len(jobs_of(bq_client, execution)))
    if rejection is not None:
        assert rejection.applied == 1  # a rejection is final: not retried


@pytest.mark.parametrize("row", _params(CREATE_ROWS))
def test_bad_input_sent_to_the_service_ends_in_the_expected_phase(
    row: Row,
    agents_via_proxy: AsyncAgentServiceStub,
    faults: FaultProxy,
    still_serving: None,
    emulator: Any,
    bq_client: bigquery.Client,
) -> None:
    rejection = _reject(faults, row)
    execution = new_execution()
    request = agent_pb2.CreateTaskRequest(
        template=row.template(emulator.project),
        inputs=literals_pb2.LiteralMap(literals=row.inputs),
        output_prefix="s3://bucket/prefix",
        task_execution_metadata=execution_metadata_pb(execution),
    )
    meta = agents_via_proxy.CreateTask(request, timeout=60).resource_meta
    resource = poll(agents_via_proxy, meta)

    _assert_outcome(row, resource.phase, resource.message, len(jobs_of(bq_client, execution)))
    if rejection is not None:
        assert rejection.applied == 1


# --- task definitions the task class refuses (local only: no template can exist) ----------------------


class Opaque:
    pass


@dataclass(frozen=True)
class DefinitionRow:
    id: str
    make: Callable[[], Any]
    error: type[Exception]
    fragments: tuple[str, ...]


def _define(inputs: dict[str, Any] | None = None, project: Any = "p", **config: Any) -> Callable[[], Any]:
    def make() -> Any:
        return BigQueryTask(
            name=TASK,
            query_template="SELECT 1",
            task_config=BigQueryConfig(ProjectID=project, **config),
            inputs=inputs,
        )

    return make


DEFINITION_ROWS = (
    DefinitionRow("file-input", _define({"f": FlyteFile}), UnsupportedInputError, ("'f'", "FlyteFile")),
    DefinitionRow("set-input", _define({"s": set[int]}), UnsupportedInputError, ("'s'", "set")),
    DefinitionRow("union-input", _define({"u": typing.Union[int, str]}), UnsupportedInputError, ("'u'", "Union")),
    DefinitionRow("list-of-lists-input", _define({"m": list[list[int]]}), UnsupportedInputError, ("'m'", "lists")),
    DefinitionRow("arbitrary-class-input", _define({"o": Opaque}), UnsupportedInputError, ("'o'", "Opaque")),
    DefinitionRow("empty-project", _define(project=""), InvalidTaskError, ("ProjectID",)),
    DefinitionRow("no-project", _define(project=None), InvalidTaskError, ("ProjectID",)),
    DefinitionRow("maximum-bytes-not-a-size", _define(MaximumBytes="lots"), InvalidTaskError, ("'lots'",)),
)


@pytest.mark.parametrize("row", DEFINITION_ROWS, ids=[r.id for r in DEFINITION_ROWS])
def test_task_definition_with_bad_input_is_refused_naming_the_task_and_item(row: DefinitionRow) -> None:
    with pytest.raises(row.error) as refused:
        row.make()
    message = str(refused.value)
    assert repr(TASK) in message
    for fragment in row.fragments:
        assert fragment in message


# --- garbage resource_meta (GetTask, DeleteTask, GetTaskLogs, GetTaskMetrics) -------------------------


@dataclass(frozen=True)
class MetaRow:
    id: str
    meta: bytes
    bug: str | None = None


_GOOD = b'{"job_id":"flyte-x-n0-a0-0123456789abcdef","project":"local-project","location":"US","output_name":"results"}'
META_ROWS = (
    MetaRow("binary-garbage", b"\x00\xff\xfe garbage"),
    MetaRow("empty", b""),
    MetaRow("json-list", b"[1, 2, 3]"),
    MetaRow("json-string", b'"flyte-x-n0-a0"'),
    MetaRow("missing-job-id-and-project", b'{"location": "US"}'),
    MetaRow("null-job-id", b'{"job_id": null, "project": "local-project"}'),
    MetaRow("numeric-job-id", b'{"job_id": 5, "project": "local-project"}'),
    MetaRow("truncated", _GOOD[: len(_GOOD) // 2]),
    MetaRow("deeply-nested", b"[" * 100_000 + b"]" * 100_000),
    MetaRow("field-of-the-wrong-type", _GOOD[:-1] + b',"error":{"a":1},"retryable":"yes"}'),
)
RPCS = ("GetTask", "DeleteTask", "GetTaskLogs", "GetTaskMetrics")


def _call(stub: AsyncAgentServiceStub, rpc: str, meta: bytes, category: Any = CATEGORY) -> Any:
    request = {
        "GetTask": agent_pb2.GetTaskRequest,
        "DeleteTask": agent_pb2.DeleteTaskRequest,
        "GetTaskLogs": agent_pb2.GetTaskLogsRequest,
        "GetTaskMetrics": agent_pb2.GetTaskMetricsRequest,
    }[rpc](task_category=category, resource_meta=meta)
    answer = getattr(stub, rpc)(request, timeout=30)
    return list(answer) if rpc == "GetTaskLogs" else answer


@pytest.mark.parametrize("row", _params(META_ROWS))
def test_garbage_resource_meta_is_refused_in_process_as_invalid_metadata(row: MetaRow) -> None:
    with pytest.raises(InvalidMetadataError) as refused:
        asyncio.run(BigQueryConnector().get(BigQueryMetadata.decode(row.meta)))
    assert "resource_meta" in str(refused.value)


@pytest.mark.parametrize("rpc", RPCS)
@pytest.mark.parametrize("row", _params(META_ROWS))
def test_garbage_resource_meta_is_a_grpc_error_naming_resource_meta(
    row: MetaRow, rpc: str, agents_via_proxy: AsyncAgentServiceStub, still_serving: None
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        _call(agents_via_proxy, rpc, row.meta)
    # flytekit's servicer wraps Get/Delete errors as INTERNAL; Logs/Metrics errors reach grpc as UNKNOWN.
    assert refused.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
    assert "InvalidMetadataError" in (refused.value.details() or "")
    assert "resource_meta" in (refused.value.details() or "")


# --- metadata of a job that does not exist ------------------------------------------------------------


def _missing_job(project: str) -> bytes:
    return BigQueryMetadata(job_id="flyte-bad-input-no-such-job", project=project, location="US").encode()


def test_get_of_a_job_that_does_not_exist_is_failed_naming_the_job(
    agents_via_proxy: AsyncAgentServiceStub, still_serving: None, emulator: Any
) -> None:
    resource = _call(agents_via_proxy, "GetTask", _missing_job(emulator.project)).resource
    assert resource.phase == FAILED
    assert "flyte-bad-input-no-such-job" in resource.message and "not found" in resource.message


def test_get_of_a_job_that_does_not_exist_is_failed_in_process(
    local_connector: BigQueryConnector, emulator: Any
) -> None:
    resource = asyncio.run(local_connector.get(BigQueryMetadata.decode(_missing_job(emulator.project))))
    assert resource.phase == FAILED
    assert "flyte-bad-input-no-such-job" in resource.message


def test_delete_of_a_job_that_does_not_exist_succeeds(
    agents_via_proxy: AsyncAgentServiceStub, still_serving: None, emulator: Any
) -> None:
    _call(agents_via_proxy, "DeleteTask", _missing_job(emulator.project))


def test_logs_of_a_job_that_does_not_exist_say_so_in_process(local_connector: BigQueryConnector, emulator: Any) -> None:
    logs = asyncio.run(local_connector.get_logs(BigQueryMetadata.decode(_missing_job(emulator.project))))
    assert any("flyte-bad-input-no-such-job" in line and "not found" in line for line in logs.body.results)


def test_logs_of_a_job_that_does_not_exist_answer_without_error(
    agents_via_proxy: AsyncAgentServiceStub, still_serving: None, emulator: Any
) -> None:
    assert _call(agents_via_proxy, "GetTaskLogs", _missing_job(emulator.project)) == []  # flytekit 1.16: empty


def test_metrics_of_a_job_that_does_not_exist_are_empty(
    agents_via_proxy: AsyncAgentServiceStub, still_serving: None, emulator: Any
) -> None:
    assert list(_call(agents_via_proxy, "GetTaskMetrics", _missing_job(emulator.project)).results) == []


# --- requests the service itself refuses --------------------------------------------------------------


def test_create_for_an_unknown_task_type_is_not_found(
    agents_via_proxy: AsyncAgentServiceStub, still_serving: None, emulator: Any
) -> None:
    template = _task_template("SELECT 1 AS one")(emulator.project)
    template.type = "bad_input_no_such_type"
    request = agent_pb2.CreateTaskRequest(
        template=template, task_execution_metadata=execution_metadata_pb(new_execution())
    )
    with pytest.raises(grpc.RpcError) as refused:
        agents_via_proxy.CreateTask(request, timeout=30)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert "bad_input_no_such_type" in (refused.value.details() or "")


@pytest.mark.parametrize("rpc", RPCS)
def test_calls_for_an_unknown_task_category_are_refused(
    rpc: str, agents_via_proxy: AsyncAgentServiceStub, still_serving: None
) -> None:
    category = agent_pb2.TaskCategory(name="bad_input_no_such_type", version=0)
    with pytest.raises(grpc.RpcError) as refused:
        _call(agents_via_proxy, rpc, _GOOD, category=category)
    assert refused.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNKNOWN)
    assert "bad_input_no_such_type" in (refused.value.details() or "")


def test_unknown_task_type_version_is_not_found(
    agents_via_proxy: AsyncAgentServiceStub, still_serving: None, emulator: Any
) -> None:
    template = _task_template("SELECT 1 AS one")(emulator.project)
    template.task_type_version = 99
    request = agent_pb2.CreateTaskRequest(
        template=template, task_execution_metadata=execution_metadata_pb(new_execution())
    )
    with pytest.raises(grpc.RpcError) as refused:
        agents_via_proxy.CreateTask(request, timeout=30)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


def test_unknown_task_type_in_process_is_connector_not_found() -> None:
    with pytest.raises(FlyteConnectorNotFound):
        ConnectorRegistry.get_connector("bad_input_no_such_type")
    assert ConnectorRegistry.get_connector(TASK_TYPE) is not None


def test_create_larger_than_the_grpc_receive_limit_is_resource_exhausted(
    agents_via_proxy: AsyncAgentServiceStub, still_serving: None, emulator: Any, bq_client: bigquery.Client
) -> None:
    execution = new_execution()
    template = _task_template("SELECT 1 AS one -- " + "y" * (5 * 2**20))(emulator.project)
    request = agent_pb2.CreateTaskRequest(template=template, task_execution_metadata=execution_metadata_pb(execution))
    assert request.ByteSize() > 4 * 2**20
    with pytest.raises(grpc.RpcError) as refused:
        agents_via_proxy.CreateTask(request, timeout=60)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert jobs_of(bq_client, execution) == []
