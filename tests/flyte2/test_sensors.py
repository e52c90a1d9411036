"""BigQuery sensors for Flyte 2 against the local BigQuery: Flyte 2 tasks of task type ``bigquery_sensor`` served
by our connector (registered on import and through the ``flyte.connectors`` entry point), each ``get`` one poke
with metadata calls only; bad settings and inputs, the timeout, BigQuery unavailable, a local run that waits then
queries, and a sensor behind our gRPC service."""

from __future__ import annotations

import asyncio
import datetime
import importlib.metadata
import time
from collections.abc import Iterator
from typing import Any

import flyte
import pytest
from flyte.connectors import ConnectorRegistry
from flyte_bigquery_core.errors import InvalidMetadataError, InvalidTaskError
from flyte_bigquery_core.testing.faultproxy import partitions_summary
from flyte_bigquery_core.testing.service_process import ServiceProcess
from flyteidl2.connector import connector_pb2 as pb
from flyteplugins.bigquery import (
    BigQueryConfig,
    BigQueryPartitionSensor,
    BigQueryTableModifiedSensor,
    BigQueryTableSensor,
    BigQueryTask,
)
from flyteplugins.bigquery.sensors import SENSOR_TASK_TYPE, BigQuerySensorConnector, BigQuerySensorMetadata
from google.cloud import bigquery
from google.protobuf import json_format

from .helpers import PROJECT, execution_metadata, faults_in_front, new_execution, phase, template_of
from .service_helpers import inputs_of, served, service_process

METADATA_ENDPOINTS = {"tables.get", "tabledata.list"}
CONFIG = BigQueryConfig(ProjectID=PROJECT, Location="US")


def _poke(sensor: Any, **inputs: Any) -> tuple[BigQuerySensorMetadata, Any]:
    """``create`` then one ``get`` on the sensor connector, as Flyte 2 calls them."""
    connector = BigQuerySensorConnector()
    meta = asyncio.run(connector.create(task_template=template_of(sensor), output_prefix="", inputs=inputs))
    return meta, asyncio.run(connector.get(meta))


def _again(meta: BigQuerySensorMetadata) -> Any:
    return asyncio.run(BigQuerySensorConnector().get(meta))


def test_sensors_are_flyte_2_tasks_of_their_own_task_type_served_by_our_connector() -> None:
    template = template_of(BigQueryTableSensor(name="s_table", plugin_config=CONFIG, table="d.t"))
    assert template.type == SENSOR_TASK_TYPE
    assert json_format.MessageToDict(template.custom) == {
        "ProjectID": PROJECT,
        "Location": "US",
        "Sensor": {"kind": "table_exists", "table": "d.t"},
    }
    assert isinstance(ConnectorRegistry.get_connector(SENSOR_TASK_TYPE, 0), BigQuerySensorConnector)
    [entry] = [ep for ep in importlib.metadata.entry_points(group="flyte.connectors") if ep.name == "bigquery_sensor"]
    assert entry.load() is BigQuerySensorConnector
    partition = BigQueryPartitionSensor(name="s_partition", plugin_config=CONFIG, table="d.t")
    modified = BigQueryTableModifiedSensor(name="s_modified", plugin_config=CONFIG, table="d.t")
    assert list(partition.interface.inputs) == ["partition"] and list(modified.interface.inputs) == ["after"]


@pytest.mark.parametrize(
    ("config", "table", "text"),
    [
        (CONFIG, "d.t$20240101", "task 's_bad': sensor table 'd.t$20240101' is not a table path"),
        (BigQueryConfig(ProjectID=""), "d.t", "task 's_bad'"),
    ],
)
def test_bad_sensor_settings_are_refused_when_defined(config: BigQueryConfig, table: str, text: str) -> None:
    with pytest.raises(InvalidTaskError) as caught:
        BigQueryTableSensor(name="s_bad", plugin_config=config, table=table)
    assert text in str(caught.value)


def test_the_table_sensor_waits_until_the_table_exists(emulator: Any, dataset: str, bq_client: bigquery.Client) -> None:
    sensor = BigQueryTableSensor(name="s_table", plugin_config=CONFIG, table=f"{dataset}.arrivals")
    meta, resource = _poke(sensor)
    assert phase(resource) == "RUNNING"
    assert resource.message == f"table {PROJECT}:{dataset}.arrivals does not exist yet"
    bq_client.query(f"CREATE TABLE {dataset}.arrivals (x INT64)").result()
    resource = _again(meta)
    assert phase(resource) == "SUCCEEDED"
    assert resource.custom_info == {"table": f"{PROJECT}:{dataset}.arrivals", "exists": True}

    async def logs_and_metrics() -> tuple[list[str], list[Any]]:
        connector = BigQuerySensorConnector()
        lines = [line async for response in connector.get_logs(meta) for line in response.body.results]
        return lines, list((await connector.get_metrics(meta)).results)

    assert asyncio.run(logs_and_metrics()) == ([resource.message], [])


def test_the_modified_sensor_waits_for_a_change_after_the_given_time(
    emulator: Any, dataset: str, bq_client: bigquery.Client
) -> None:
    table = bq_client.create_table(f"{PROJECT}.{dataset}.facts")
    sensor = BigQueryTableModifiedSensor(name="s_modified", plugin_config=CONFIG, table=f"{dataset}.facts")
    meta, resource = _poke(sensor, after=datetime.datetime.now(datetime.timezone.utc))
    assert phase(resource) == "RUNNING"
    time.sleep(0.01)
    table.description = "refreshed"
    bq_client.update_table(table, ["description"])  # the local BigQuery moves lastModifiedTime on metadata changes
    resource = _again(meta)
    assert phase(resource) == "SUCCEEDED", resource.message
    assert resource.message is not None and "was modified at" in resource.message


def test_the_partition_sensor_fails_for_a_table_that_is_not_partitioned(emulator: Any) -> None:
    sensor = BigQueryPartitionSensor(name="s_partition", plugin_config=CONFIG, table="samples.daily_downloads")
    _, resource = _poke(sensor, partition="2025-06-01")
    assert phase(resource) == "FAILED"
    assert resource.message == (
        f"task 's_partition': table {PROJECT}:samples.daily_downloads is not partitioned, "
        "so partition 20250601 can never appear"
    )


def test_the_partition_sensor_reads_metadata_only(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, dataset: str, bq_client: bigquery.Client
) -> None:
    bq_client.query(f"CREATE TABLE {dataset}.events (day DATE, n INT64) PARTITION BY day").result()
    with faults_in_front(emulator, monkeypatch) as faults:
        summary = r"__PARTITIONS_SUMMARY__/data$"
        faults.add_rule(
            "rewrite", "GET", summary, count=1, transform=partitions_summary("20240101"), rewrite_status=200
        )
        sensor = BigQueryPartitionSensor(name="s_partition", plugin_config=CONFIG, table=f"{dataset}.events")
        meta, resource = _poke(sensor, partition="20240102")
        assert phase(resource) == "RUNNING", resource.message
        assert resource.message == f"partition 20240102 of {PROJECT}:{dataset}.events does not exist yet"
        both = partitions_summary("20240101", "20240102")
        faults.add_rule("rewrite", "GET", summary, count=1, transform=both, rewrite_status=200)
        resource = _again(meta)
        assert phase(resource) == "SUCCEEDED", resource.message
        assert {e.endpoint for e in faults.log} == METADATA_ENDPOINTS  # no job, no query: 0 bytes scanned


def test_bigquery_unavailable_keeps_the_sensor_waiting(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with faults_in_front(emulator, monkeypatch) as faults:
        monkeypatch.setenv("FLYTEKITPLUGINS_BIGQUERY_RETRY_SECONDS", "1")
        sensor = BigQueryTableSensor(name="s_table", plugin_config=CONFIG, table="samples.daily_downloads")
        faults.add_rule("status", "GET", r"/tables/", count=None, status=503)
        meta, resource = _poke(sensor)
        assert phase(resource) == "RUNNING" and resource.message is not None
        assert "will check again" in resource.message
        faults.clear()
        assert phase(_again(meta)) == "SUCCEEDED"


def test_a_bad_input_fails_the_sensor_before_any_call(emulator: Any) -> None:
    sensor = BigQueryPartitionSensor(name="s_partition", plugin_config=CONFIG, table="d.t")
    meta, resource = _poke(sensor, partition="soon")
    assert meta.spec is None and meta.error is not None
    assert phase(resource) == "FAILED"
    assert resource.message is not None
    assert "task 's_partition': input 'partition' is not a partition id" in resource.message


def test_a_sensor_past_its_timeout_fails_instead_of_waiting_forever(emulator: Any, dataset: str) -> None:
    sensor = BigQueryTableSensor(name="s_table", plugin_config=CONFIG, table=f"{dataset}.never", timeout=1)
    meta, resource = _poke(sensor)
    assert phase(resource) == "RUNNING"
    time.sleep(1.1)
    resource = _again(meta)
    assert phase(resource) == "FAILED"
    assert resource.message == f"task 's_table': timed out waiting: table {PROJECT}:{dataset}.never does not exist yet"


def test_garbage_sensor_metadata_is_refused_clearly() -> None:
    wrong_kind = b'{"spec": {"task": "t", "kind": "rows", "project": "p", "dataset": "d", "table": "t"}}'
    for garbage in (b"\xff", b"[]", b'{"spec": 1}', b'{"spec": {"nope": 1}}', wrong_kind):
        with pytest.raises(InvalidMetadataError, match="not BigQuery sensor metadata"):
            BigQuerySensorMetadata.decode(garbage)


# --- a local run: wait, then query -------------------------------------------------------------------------------

ready = BigQueryTableSensor(name="s_ready", plugin_config=CONFIG, table="samples.daily_downloads")
never = BigQueryTableSensor(name="s_never", plugin_config=CONFIG, table="samples.never_there", timeout=1)
days = BigQueryTask(
    name="s_days",
    query_template="SELECT COUNT(DISTINCT day) AS days FROM samples.daily_downloads",
    plugin_config=CONFIG,
    outputs={"days": int},
)
env = flyte.TaskEnvironment.from_task("bq_sensor_env", ready, never, days)


@env.task
async def wait_then_count(give_up: bool) -> int:
    await (never if give_up else ready)()
    return await days()


@pytest.fixture(scope="module")
def local(emulator: Any) -> None:
    flyte.init()


def test_a_local_run_waits_for_a_table_then_queries_it(local: None, bq_client: bigquery.Client) -> None:
    [(expected,)] = bq_client.query("SELECT COUNT(DISTINCT day) FROM samples.daily_downloads").result()
    [counted] = flyte.with_runcontext(mode="local").run(wait_then_count, give_up=False).outputs()
    assert counted == expected


def test_a_local_run_of_a_sensor_past_its_timeout_fails(local: None) -> None:
    with pytest.raises(Exception, match=r"s_never.*FAILED.*timed out waiting"):
        flyte.with_runcontext(mode="local").run(wait_then_count, give_up=True).outputs()


# --- behind our gRPC service ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(emulator: Any) -> Iterator[ServiceProcess]:
    with service_process() as process:
        yield process
        assert process.stop() == 0, process.log_text()[-3000:]


def _request(sensor: Any, inputs: Any = None) -> pb.CreateTaskRequest:
    request = pb.CreateTaskRequest(
        template=template_of(sensor),
        output_prefix="/tmp/unused",
        task_execution_metadata=execution_metadata(new_execution()),
    )
    if inputs is not None:
        request.inputs.CopyFrom(inputs)
    return request


def test_through_the_service_the_modified_sensor_takes_its_input_and_succeeds(service: ServiceProcess) -> None:
    sensor = BigQueryTableModifiedSensor(name="s_modified", plugin_config=CONFIG, table="samples.daily_downloads")
    inputs = asyncio.run(inputs_of({"after": (datetime.datetime, datetime.datetime(2000, 1, 1))}))
    resource = served(service, _request(sensor, inputs))
    assert phase(resource) == "SUCCEEDED", resource.message
    assert "was modified at" in resource.message


def test_through_the_service_a_bad_input_is_a_failed_task_not_a_grpc_error(service: ServiceProcess) -> None:
    sensor = BigQueryPartitionSensor(name="s_partition", plugin_config=CONFIG, table="samples.daily_downloads")
    inputs = asyncio.run(inputs_of({"partition": (str, "soon")}))
    resource = served(service, _request(sensor, inputs))
    assert phase(resource) == "FAILED"
    assert "task 's_partition': input 'partition' is not a partition id" in resource.message
