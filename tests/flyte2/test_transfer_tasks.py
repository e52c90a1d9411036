"""Defining Flyte 2 load, extract and copy tasks: the templates Flyte 2's serializer writes for them (the same
custom fields as the flytekit tasks', from the same core definition), their connectors' entry points, and the
mistakes refused at definition, each naming the task and what was expected. No BigQuery needed."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import uuid
from typing import Any

import flyte
import pytest
from flyte.connectors import ConnectorRegistry
from flyte.io import DataFrame, Dir, File
from flyteidl2.core.types_pb2 import BlobType
from flyteplugins.bigquery import (
    BigQueryConfig,
    BigQueryCopyTask,
    BigQueryExtractTask,
    BigQueryLoadTask,
    CopyConnector,
    ExtractConnector,
    InvalidTaskError,
    LoadConnector,
    TimePartitioning,
)
from google.cloud import bigquery
from google.protobuf import json_format

from . import helpers as h

CONFIG = BigQueryConfig(ProjectID="proj", Location="EU")


def _template(task: Any) -> Any:
    flyte.TaskEnvironment.from_task(f"env_{uuid.uuid4().hex[:8]}", task)
    return h.template_of(task)


def _variables(variable_map: Any) -> dict[str, Any]:
    return {entry.key: entry.value.type for entry in variable_map.variables}


def test_a_load_template_holds_the_spec_the_labels_and_the_interface() -> None:
    task = BigQueryLoadTask(
        name="t.load",
        plugin_config=CONFIG,
        destination="ds.events$20240101",
        source_type=File,
        schema=[bigquery.SchemaField("day", "DATE"), bigquery.SchemaField("n", "INT64", mode="REQUIRED")],
        write_disposition="WRITE_TRUNCATE",
        time_partitioning=TimePartitioning("DAY", "day"),
        clustering=["n"],
        labels={"team": "data"},
    )
    template = _template(task)
    assert template.type == "bigquery_load_job_task"
    custom = json_format.MessageToDict(template.custom)
    assert (custom["ProjectID"], custom["Location"], custom["Domain"], custom["Labels"]) == (
        "proj",
        "EU",
        "development",
        {"team": "data"},
    )
    spec = custom["LoadJob"]
    assert spec["destination"] == "ds.events$20240101" and spec["timePartitioning"] == {"type": "DAY", "field": "day"}
    assert [f["name"] for f in spec["schema"]] == ["day", "n"] and spec["clustering"] == ["n"]
    inputs, outputs = _variables(template.interface.inputs), _variables(template.interface.outputs)
    assert list(inputs) == ["source"] and inputs["source"].blob.dimensionality == BlobType.SINGLE
    assert list(outputs) == ["table"] and outputs["table"].HasField("structured_dataset_type")


@pytest.mark.parametrize(
    ("make", "task_type", "output"),
    [
        (
            lambda: BigQueryExtractTask(name="t.x", plugin_config=CONFIG, destination="gs://b/o", source="ds.t"),
            "bigquery_extract_job_task",
            "directory",
        ),
        (
            lambda: BigQueryCopyTask(name="t.c", plugin_config=CONFIG, destination="ds.c", sources=["ds.t"]),
            "bigquery_copy_job_task",
            "table",
        ),
        (
            lambda: BigQueryLoadTask(name="t.l", plugin_config=CONFIG, destination="ds.t", source_uris=["gs://b/*"]),
            "bigquery_load_job_task",
            "table",
        ),
    ],
)
def test_a_task_without_a_source_input_declares_only_its_output(make: Any, task_type: str, output: str) -> None:
    template = _template(make())
    assert template.type == task_type
    assert not template.interface.inputs.variables and list(_variables(template.interface.outputs)) == [output]


def test_an_extract_outputs_a_dir_and_a_load_may_read_a_partition_input() -> None:
    extract = _template(BigQueryExtractTask(name="t.x", plugin_config=CONFIG, destination="gs://b/o", source="ds.t"))
    assert _variables(extract.interface.outputs)["directory"].blob.dimensionality == BlobType.MULTIPART
    daily = BigQueryLoadTask(
        name="t.daily", plugin_config=CONFIG, destination="ds.events", source_type=Dir, partition_type=dt.date
    )
    assert sorted(_variables(_template(daily).interface.inputs)) == ["partition", "source"]


@pytest.mark.parametrize("source_type", [File, Dir, DataFrame, str, list[str]])
def test_a_load_reads_every_kind_of_source(source_type: Any) -> None:
    task = BigQueryLoadTask(name="t.l", plugin_config=CONFIG, destination="ds.t", source_type=source_type)
    assert task.interface.inputs["source"][0] == source_type


def test_identity_and_capacity_fields_reach_the_template_as_for_a_query() -> None:
    config = BigQueryConfig(
        ProjectID="proj",
        ImpersonateServiceAccount="etl@proj.iam.gserviceaccount.com",
        ExecutionProject="compute-proj",
        QuotaProject="quota-proj",
        Reservation="projects/admin/locations/US/reservations/etl",
    )
    task = BigQueryCopyTask(name="t.c", plugin_config=config, destination="ds.c", sources=["ds.t"])
    custom = json_format.MessageToDict(_template(task).custom)
    assert {k: custom[k] for k in ("ImpersonateServiceAccount", "ExecutionProject", "QuotaProject", "Reservation")} == {
        "ImpersonateServiceAccount": "etl@proj.iam.gserviceaccount.com",
        "ExecutionProject": "compute-proj",
        "QuotaProject": "quota-proj",
        "Reservation": "projects/admin/locations/US/reservations/etl",
    }


@pytest.mark.parametrize(
    ("entry_point", "connector_type"),
    [("bigquery_load", LoadConnector), ("bigquery_extract", ExtractConnector), ("bigquery_copy", CopyConnector)],
)
def test_each_connector_is_an_entry_point_and_registered(entry_point: str, connector_type: type) -> None:
    [found] = [e for e in importlib.metadata.entry_points(group="flyte.connectors") if e.name == entry_point]
    assert found.load() is connector_type
    assert isinstance(ConnectorRegistry.get_connector(connector_type.task_type_name), connector_type)


REFUSED = [
    pytest.param(
        lambda: BigQueryLoadTask(
            name="t.bad", plugin_config=CONFIG, destination="ds.t", source_type=str, partition_type=float
        ),
        "input 'partition' is declared as <class 'float'>",
        id="float-partition",
    ),
    pytest.param(
        lambda: BigQueryLoadTask(name="t.bad", plugin_config=CONFIG, destination="ds.t", source_type=int),
        "input 'source' is declared as <class 'int'>; expected one of File, Dir, DataFrame, str, list[str]",
        id="load-int-source",
    ),
    pytest.param(
        lambda: BigQueryExtractTask(name="t.bad", plugin_config=CONFIG, destination="gs://b/o", source_type=File),
        "expected one of DataFrame, str",
        id="extract-file-source",
    ),
    pytest.param(
        lambda: BigQueryLoadTask(name="t.bad", plugin_config=CONFIG, destination="ds.t"),
        "no 'source' input and LoadJob.source_uris is empty",
        id="load-without-source",
    ),
    pytest.param(
        lambda: BigQueryExtractTask(
            name="t.bad", plugin_config=CONFIG, destination="gs://b/o", source="ds.t", compression="DEFLATE"
        ),
        "'DEFLATE' is not available for PARQUET",
        id="extract-bad-compression",
    ),
    pytest.param(
        lambda: BigQueryCopyTask(
            name="t.bad", plugin_config=CONFIG, destination="ds.c", sources=["ds.a", "ds.b"], operation="SNAPSHOT"
        ),
        "a SNAPSHOT takes one source table",
        id="snapshot-of-two",
    ),
    pytest.param(
        lambda: BigQueryLoadTask(
            name="t.bad",
            plugin_config=BigQueryConfig(ProjectID="proj", MaximumBytes=10),
            destination="ds.t",
            source_type=str,
        ),
        "BigQueryConfig.MaximumBytes only apply to query tasks",
        id="query-only-setting",
    ),
    pytest.param(
        lambda: BigQueryCopyTask(
            name="t.bad", plugin_config=BigQueryConfig(ProjectID=""), destination="ds.c", sources=["ds.a"]
        ),
        "BigQueryConfig.ProjectID is missing",
        id="no-project",
    ),
    pytest.param(
        lambda: BigQueryCopyTask(
            name="t.bad",
            plugin_config=BigQueryConfig(ProjectID="proj", Reservation="etl"),
            destination="ds.c",
            sources=["ds.a"],
        ),
        "BigQueryConfig.Reservation is not a reservation",
        id="bad-reservation",
    ),
    pytest.param(
        lambda: BigQueryLoadTask(
            name="t.bad", plugin_config=CONFIG, destination="ds.t", source_type=str, schema=[object()]
        ),
        "schema holds a object",
        id="bad-schema",
    ),
]


@pytest.mark.parametrize(("make", "message"), REFUSED)
def test_a_task_that_cannot_work_is_refused_when_defined(make: Any, message: str) -> None:
    with pytest.raises(InvalidTaskError) as e:
        make()
    assert e.value.task == "t.bad" and message in str(e.value)
