"""Defining load, extract and copy tasks: what their templates hold, and the mistakes refused at definition,
each naming the task and what was expected. No BigQuery needed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile
from flytekit.types.structured import StructuredDataset
from google.cloud import bigquery

from flytekitplugins.bigquery import (
    BigQueryConfig,
    BigQueryCopyTask,
    BigQueryExtractTask,
    BigQueryLoadTask,
    InvalidTaskError,
    TimePartitioning,
)
from flytekitplugins.bigquery.testing.requests import template_of

CONFIG = BigQueryConfig(ProjectID="proj", Location="EU")


def test_a_load_template_holds_the_spec_the_labels_and_the_interface() -> None:
    task = BigQueryLoadTask(
        name="t.load",
        task_config=CONFIG,
        destination="ds.events$20240101",
        source_type=FlyteFile,
        schema=[bigquery.SchemaField("day", "DATE"), bigquery.SchemaField("n", "INT64", mode="REQUIRED")],
        write_disposition="WRITE_TRUNCATE",
        time_partitioning=TimePartitioning("DAY", "day"),
        clustering=["n"],
        labels={"team": "data"},
    )
    template = template_of(task)
    assert template.type == "bigquery_load_job_task"
    custom = template.custom
    assert (custom["ProjectID"], custom["Location"], custom["Domain"], custom["Labels"]) == (
        "proj",
        "EU",
        "development",
        {"team": "data"},
    )
    spec = custom["LoadJob"]
    assert spec["destination"] == "ds.events$20240101" and spec["timePartitioning"] == {"type": "DAY", "field": "day"}
    assert [f["name"] for f in spec["schema"]] == ["day", "n"] and spec["clustering"] == ["n"]
    assert list(template.interface.inputs) == ["source"] and list(template.interface.outputs) == ["table"]


@pytest.mark.parametrize(
    ("make", "output"),
    [
        (
            lambda: BigQueryExtractTask(name="t.x", task_config=CONFIG, destination="gs://b/o", source="ds.t"),
            "directory",
        ),
        (lambda: BigQueryCopyTask(name="t.c", task_config=CONFIG, destination="ds.c", sources=["ds.t"]), "table"),
        (
            lambda: BigQueryLoadTask(name="t.l", task_config=CONFIG, destination="ds.t", source_uris=["gs://b/*"]),
            "table",
        ),
    ],
)
def test_a_task_without_a_source_input_declares_only_its_output(make: Any, output: str) -> None:
    template = template_of(make())
    assert not template.interface.inputs and list(template.interface.outputs) == [output]


def test_a_load_with_a_partition_input_declares_it_beside_the_source() -> None:
    task = BigQueryLoadTask(
        name="t.daily", task_config=CONFIG, destination="ds.events", source_type=FlyteFile, partition_type=dt.date
    )
    assert task.python_interface.inputs == {"source": FlyteFile, "partition": dt.date}


@pytest.mark.parametrize("source_type", [FlyteFile, FlyteDirectory, StructuredDataset, str, list[str]])
def test_a_load_reads_every_kind_of_source(source_type: Any) -> None:
    task = BigQueryLoadTask(name="t.l", task_config=CONFIG, destination="ds.t", source_type=source_type)
    assert task.python_interface.inputs == {"source": source_type}


REFUSED = [
    pytest.param(
        lambda: BigQueryLoadTask(
            name="t.bad", task_config=CONFIG, destination="ds.t", source_type=str, partition_type=float
        ),
        "input 'partition' is declared as <class 'float'>",
        id="float-partition",
    ),
    pytest.param(
        lambda: BigQueryLoadTask(
            name="t.bad", task_config=CONFIG, destination="ds.t$20240101", source_type=str, partition_type=str
        ),
        "names partition $20240101 and the task has a 'partition' input",
        id="partition-twice",
    ),
    pytest.param(
        lambda: BigQueryLoadTask(name="t.bad", task_config=CONFIG, destination="ds.t", source_type=int),
        "input 'source' is declared as <class 'int'>",
        id="load-int-source",
    ),
    pytest.param(
        lambda: BigQueryExtractTask(name="t.bad", task_config=CONFIG, destination="gs://b/o", source_type=FlyteFile),
        "expected one of StructuredDataset, str",
        id="extract-file-source",
    ),
    pytest.param(
        lambda: BigQueryLoadTask(name="t.bad", task_config=CONFIG, destination="ds.t"),
        "no 'source' input and LoadJob.source_uris is empty",
        id="load-without-source",
    ),
    pytest.param(
        lambda: BigQueryExtractTask(
            name="t.bad", task_config=CONFIG, destination="gs://b/o", source="ds.t", compression="DEFLATE"
        ),
        "'DEFLATE' is not available for PARQUET",
        id="extract-bad-compression",
    ),
    pytest.param(
        lambda: BigQueryCopyTask(
            name="t.bad", task_config=CONFIG, destination="ds.c", sources=["ds.a", "ds.b"], operation="SNAPSHOT"
        ),
        "a SNAPSHOT takes one source table",
        id="snapshot-of-two",
    ),
    pytest.param(
        lambda: BigQueryLoadTask(
            name="t.bad",
            task_config=BigQueryConfig(ProjectID="proj", Estimate=True),
            destination="ds.t",
            source_type=str,
        ),
        "BigQueryConfig.Estimate only apply to query tasks",
        id="query-only-setting",
    ),
    pytest.param(
        lambda: BigQueryCopyTask(
            name="t.bad", task_config=BigQueryConfig(ProjectID=""), destination="ds.c", sources=["ds.a"]
        ),
        "BigQueryConfig.ProjectID is missing",
        id="no-project",
    ),
    pytest.param(
        lambda: BigQueryLoadTask(
            name="t.bad", task_config=CONFIG, destination="ds.t", source_type=str, schema=[object()]
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
