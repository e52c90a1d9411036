"""BigQuery sensors end to end: flytekit BaseSensor tasks run by our sensor connector (in-process and behind
flytekit's gRPC service) against the local BigQuery, with metadata calls only."""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import grpc
import pytest
from flyte_bigquery_core.testing.faultproxy import FaultProxy, partitions_summary
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service.agent_pb2_grpc import AgentMetadataServiceStub, AsyncAgentServiceStub
from flytekit import workflow
from flytekit.extend.backend.base_connector import ConnectorRegistry
from google.cloud import bigquery

from flytekitplugins.bigquery import (
    BigQueryConfig,
    BigQueryPartitionSensor,
    BigQueryTableModifiedSensor,
    BigQueryTableSensor,
    BigQueryTask,
    InvalidTaskError,
)
from flytekitplugins.bigquery.check_task import CHECK_TASK_TYPE
from flytekitplugins.bigquery.sensors import SENSOR_TASK_TYPE, BigQuerySensorConnector, BigQuerySensorMetadata
from flytekitplugins.bigquery.testing.service_process import GRPC_OPTIONS

from .helpers import create_request, get_resource, literals_of, new_execution, poll, template_of

SENSOR = agent_pb2.TaskCategory(name=SENSOR_TASK_TYPE, version=0)
METADATA_ENDPOINTS = {"tables.get", "tabledata.list"}


def _config(project: str) -> BigQueryConfig:
    return BigQueryConfig(ProjectID=project, Location="US")


def _poke(sensor: Any, **inputs: Any) -> tuple[BigQuerySensorMetadata, Any]:
    """``create`` then one ``get`` on the sensor connector, as Flyte calls it."""
    connector = BigQuerySensorConnector()
    meta = asyncio.run(connector.create(template_of(sensor), literals_of(sensor, **inputs)))
    return meta, asyncio.run(connector.get(meta))


def test_sensors_are_flytekit_sensors_of_their_own_task_type() -> None:
    sensor = BigQueryTableSensor(name="s.table", task_config=_config("p"), table="d.t")
    template = template_of(sensor)
    assert template.type == SENSOR_TASK_TYPE
    assert template.custom == {"ProjectID": "p", "Location": "US", "Sensor": {"kind": "table_exists", "table": "d.t"}}
    assert isinstance(ConnectorRegistry.get_connector(SENSOR_TASK_TYPE), BigQuerySensorConnector)
    partition = BigQueryPartitionSensor(name="s.partition", task_config=_config("p"), table="d.t")
    assert list(partition.python_interface.inputs) == ["partition"]


def test_a_malformed_table_path_is_refused_when_the_sensor_is_defined() -> None:
    with pytest.raises(InvalidTaskError, match=r"task 's.bad': sensor table 'd.t\$20240101' is not a table path"):
        BigQueryTableSensor(name="s.bad", task_config=_config("p"), table="d.t$20240101")


def test_the_table_sensor_waits_until_the_table_exists(emulator: Any, dataset: str, bq_client: bigquery.Client) -> None:
    sensor = BigQueryTableSensor(name="s.table", task_config=_config(emulator.project), table=f"{dataset}.arrivals")
    meta, resource = _poke(sensor)
    assert resource.phase == TaskExecution.RUNNING
    assert resource.message == f"table {emulator.project}:{dataset}.arrivals does not exist yet"
    bq_client.query(f"CREATE TABLE {dataset}.arrivals (x INT64)").result()
    connector = BigQuerySensorConnector()
    resource = asyncio.run(connector.get(meta))
    assert resource.phase == TaskExecution.SUCCEEDED
    assert resource.custom_info == {"table": f"{emulator.project}:{dataset}.arrivals", "exists": True}
    assert list(asyncio.run(connector.get_logs(meta)).body.results) == [resource.message]
    assert list(asyncio.run(connector.get_metrics(meta)).results) == []


def test_the_modified_sensor_waits_for_a_change_after_the_given_time(
    emulator: Any, dataset: str, bq_client: bigquery.Client
) -> None:
    table = bq_client.create_table(f"{emulator.project}.{dataset}.facts")
    sensor = BigQueryTableModifiedSensor(
        name="s.modified", task_config=_config(emulator.project), table=f"{dataset}.facts"
    )
    after = datetime.datetime.now(datetime.timezone.utc)
    meta, resource = _poke(sensor, after=after)
    assert resource.phase == TaskExecution.RUNNING
    time.sleep(0.01)
    table.description = "refreshed"
    bq_client.update_table(table, ["description"])  # the local BigQuery moves lastModifiedTime on metadata changes
    resource = asyncio.run(BigQuerySensorConnector().get(meta))
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert "was modified at" in resource.message


def test_the_partition_sensor_fails_for_a_table_that_is_not_partitioned(emulator: Any) -> None:
    sensor = BigQueryPartitionSensor(
        name="s.partition", task_config=_config(emulator.project), table="samples.daily_downloads"
    )
    _, resource = _poke(sensor, partition="2025-06-01")
    assert resource.phase == TaskExecution.FAILED
    assert resource.message == (
        f"task 's.partition': table {emulator.project}:samples.daily_downloads is not partitioned, "
        "so partition 20250601 can never appear"
    )


def test_a_bad_input_fails_the_sensor_before_any_call(emulator: Any) -> None:
    sensor = BigQueryPartitionSensor(name="s.partition", task_config=_config(emulator.project), table="d.t")
    meta, resource = _poke(sensor, partition="soon")
    assert meta.spec is None and meta.error is not None
    assert resource.phase == TaskExecution.FAILED
    assert "task 's.partition': input 'partition' is not a partition id" in resource.message


def test_a_sensor_past_its_timeout_fails_instead_of_waiting_forever(emulator: Any, dataset: str) -> None:
    sensor = BigQueryTableSensor(
        name="s.table",
        task_config=_config(emulator.project),
        table=f"{dataset}.never",
        timeout=datetime.timedelta(seconds=1),
    )
    meta, resource = _poke(sensor)
    assert resource.phase == TaskExecution.RUNNING
    time.sleep(1.1)
    resource = asyncio.run(BigQuerySensorConnector().get(meta))
    assert resource.phase == TaskExecution.FAILED
    assert (
        resource.message
        == f"task 's.table': timed out waiting: table {emulator.project}:{dataset}.never does not exist yet"
    )


def test_garbage_sensor_metadata_is_refused_clearly() -> None:
    from flyte_bigquery_core.errors import InvalidMetadataError

    wrong_kind = b'{"spec": {"task": "t", "kind": "rows", "project": "p", "dataset": "d", "table": "t"}}'
    for garbage in (b"\xff", b"[]", b'{"spec": 1}', b'{"spec": {"nope": 1}}', wrong_kind):
        with pytest.raises(InvalidMetadataError, match="not BigQuery sensor metadata"):
            BigQuerySensorMetadata.decode(garbage)


# --- a local workflow: wait, then query -----------------------------------------------------------------


def test_a_local_workflow_waits_for_a_table_then_queries_it(emulator: Any) -> None:
    config = _config(emulator.project)
    ready = BigQueryTableSensor(name="s.ready", task_config=config, table="samples.daily_downloads")
    days = BigQueryTask(
        name="s.days",
        query_template="SELECT COUNT(DISTINCT day) AS days FROM samples.daily_downloads",
        task_config=config,
        outputs={"days": int},
    )

    @workflow
    def wf() -> int:
        waited = ready()
        counted = days()
        waited >> counted
        return counted

    assert wf() > 0


# --- behind the service ---------------------------------------------------------------------------------------


def test_through_the_service_the_partition_sensor_reads_metadata_only(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any, dataset: str, bq_client: bigquery.Client
) -> None:
    bq_client.query(f"CREATE TABLE {dataset}.events (day DATE, n INT64) PARTITION BY day").result()
    faults.add_rule(
        "rewrite",
        "GET",
        r"__PARTITIONS_SUMMARY__/data$",
        count=1,
        transform=partitions_summary("20240101"),
        rewrite_status=200,
    )
    sensor = BigQueryPartitionSensor(
        name="s.partition", task_config=_config(emulator.project), table=f"{dataset}.events"
    )
    request = create_request(sensor, new_execution(), partition="20240102")
    meta = agents_via_proxy.CreateTask(request, timeout=60).resource_meta
    resource = get_resource(agents_via_proxy, meta, SENSOR)
    assert resource.phase == TaskExecution.RUNNING, resource.message
    assert resource.message == f"partition 20240102 of {emulator.project}:{dataset}.events does not exist yet"

    faults.add_rule(
        "rewrite",
        "GET",
        r"__PARTITIONS_SUMMARY__/data$",
        count=1,
        transform=partitions_summary("20240101", "20240102"),
        rewrite_status=200,
    )
    resource = poll(agents_via_proxy, meta, category=SENSOR)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert {e.endpoint for e in faults.log} == METADATA_ENDPOINTS  # no job, no query: 0 bytes scanned


def test_through_the_service_bigquery_unavailable_keeps_the_sensor_waiting(
    agents_via_proxy: AsyncAgentServiceStub, faults: FaultProxy, emulator: Any
) -> None:
    sensor = BigQueryTableSensor(name="s.table", task_config=_config(emulator.project), table="samples.daily_downloads")
    meta = agents_via_proxy.CreateTask(create_request(sensor, new_execution()), timeout=60).resource_meta
    faults.add_rule("status", "GET", r"/tables/", count=None, status=503)
    resource = get_resource(agents_via_proxy, meta, SENSOR)
    assert resource.phase == TaskExecution.RUNNING and "will check again" in resource.message
    faults.clear()
    assert poll(agents_via_proxy, meta, category=SENSOR).phase == TaskExecution.SUCCEEDED


def test_through_the_service_a_bad_input_is_a_failed_task_not_a_grpc_error(
    agents: AsyncAgentServiceStub, emulator: Any
) -> None:
    sensor = BigQueryTableModifiedSensor(name="s.modified", task_config=_config(emulator.project), table="d.t")
    template = template_of(sensor).to_flyte_idl()
    template.custom.fields["Sensor"].struct_value.fields["table"].string_value = "not a table"
    request = create_request(sensor, new_execution(), template=template, after=datetime.datetime(2024, 1, 1))
    meta = agents.CreateTask(request, timeout=60).resource_meta
    resource = get_resource(agents, meta, SENSOR)
    assert resource.phase == TaskExecution.FAILED
    assert "task 's.modified': sensor table 'not a table' is not a table path" in resource.message


def test_the_service_lists_the_sensor_and_check_connectors(service: Any) -> None:
    with grpc.insecure_channel(service.target, options=GRPC_OPTIONS) as channel:
        agents = AgentMetadataServiceStub(channel).ListAgents(agent_pb2.ListAgentsRequest(), timeout=10).agents
    served = {agent.name: list(agent.supported_task_types) for agent in agents}
    assert served["BigQuery Sensor Connector"] == [SENSOR_TASK_TYPE]
    assert served["BigQuery Check Connector"] == [CHECK_TASK_TYPE]
