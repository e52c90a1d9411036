"""BigQueryConfig / BigQueryTask: drop-in serialization, validation, and local execution."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from typing import Any, Optional, Union

import pandas as pd
import pytest
from flyte_bigquery_core.jobconfig import ACCESS_KEYS
from flyte_bigquery_core.params import input_type
from flytekit import StructuredDataset, kwtypes, task, workflow
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile
from google.cloud import bigquery
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask, InvalidTaskError, UnsupportedInputError

from .core.types_for_tests import Color, Mixed, Pair
from .helpers import pyflyte_run, template_of


def _upstream_custom(project: str, location: str | None, job_config: bigquery.QueryJobConfig | None) -> dict:
    """The custom fields the upstream 1.16 plugin writes, computed from the client's own API repr."""
    config: dict[str, Any] = {"Location": location, "ProjectID": project, "Domain": "development"}
    if job_config is not None:
        config.update(job_config.to_api_repr()["query"])
    s = Struct()
    s.update(config)
    return json_format.MessageToDict(s)


def test_task_type_and_sql_are_upstreams() -> None:
    t = BigQueryTask(name="t", query_template="SELECT 1", task_config=BigQueryConfig(ProjectID="p"))
    template = template_of(t)
    assert template.type == "bigquery_query_job_task"
    assert template.sql.statement == "SELECT 1"


def test_custom_fields_contain_upstreams_exactly() -> None:
    job_config = bigquery.QueryJobConfig(
        priority="BATCH", use_query_cache=False, maximum_bytes_billed=10**9, labels={"team": "data"}
    )
    t = BigQueryTask(
        name="t", query_template="SELECT 1", task_config=BigQueryConfig("p", "EU", job_config), inputs={"x": int}
    )
    custom = template_of(t).custom
    expected = _upstream_custom("p", "EU", job_config)
    assert {k: custom[k] for k in expected} == expected
    # our additions: the complete config (upstream loses labels) and the input descriptors
    assert set(custom) - set(expected) == {"QueryJobConfig", "InputTypes"}
    assert custom["QueryJobConfig"]["labels"] == {"team": "data"}


@dataclasses.dataclass
class Visit:
    x: int
    seen: datetime.date
    at: Optional[datetime.datetime] = None


def test_custom_fields_record_each_input_as_a_bigquery_type_expression() -> None:
    t = BigQueryTask(
        name="typed",
        query_template="SELECT 1",
        task_config=BigQueryConfig(ProjectID="p", Location="EU"),
        inputs={
            "flag": bool,
            "n": int,
            "ratio": float,
            "name": str,
            "raw": bytes,
            "day": datetime.date,
            "clock": datetime.time,
            "ts": datetime.datetime,
            "span": datetime.timedelta,
            "amount": decimal.Decimal,
            "color": Color,
            "doc": dict,
            "maybe": Optional[int],
            "ids": list[int],
            "visit": Visit,
            "visits": list[Visit],
        },
    )
    assert template_of(t).custom == {
        "Location": "EU",
        "ProjectID": "p",
        "Domain": "development",
        "InputTypes": {
            "flag": "BOOL",
            "n": "INT64",
            "ratio": "FLOAT64",
            "name": "STRING",
            "raw": "BYTES",
            "day": "DATE",
            "clock": "TIME",
            "ts": "TIMESTAMP|DATETIME",
            "span": "INTERVAL",
            "amount": "NUMERIC|BIGNUMERIC",
            "color": "STRING",
            "doc": "JSON",
            "maybe": "INT64",
            "ids": "ARRAY<INT64>",
            "visit": "STRUCT<x INT64, seen DATE, at TIMESTAMP|DATETIME>",
            "visits": "ARRAY<STRUCT<x INT64, seen DATE, at TIMESTAMP|DATETIME>>",
        },
    }


@pytest.mark.parametrize(
    ("declared", "fragment"),
    [
        (Any, "does not pin"),
        (set[int], "set"),
        (list[list[int]], "list of lists"),
        (Union[int, str], "Union of several types"),
        (object, "object"),
        (tuple[int, str], "tuple"),
        (Pair, "NamedTuple"),
        (Mixed, "Enum"),
    ],
    ids=["any", "set", "list-of-lists", "union", "object", "tuple", "namedtuple", "enum-of-mixed-values"],
)
def test_unsupported_input_type_is_refused_when_the_task_is_defined(declared: Any, fragment: str) -> None:
    with pytest.raises(UnsupportedInputError) as caught:
        BigQueryTask(
            name="my_query",
            query_template="SELECT @p",
            task_config=BigQueryConfig(ProjectID="p"),
            inputs={"p": declared},
        )
    message = str(caught.value)
    assert message.startswith("task 'my_query': input 'p'")
    assert fragment in message


@pytest.mark.parametrize("flytekit_type", [FlyteFile, FlyteDirectory, StructuredDataset])
def test_input_type_refuses_flytekit_types(flytekit_type: type) -> None:
    with pytest.raises(UnsupportedInputError, match=r"task 't': input 'x' has Python type flytekit\..*supported types"):
        input_type(flytekit_type, "t", "x")


def test_query_keeps_comments_and_line_breaks() -> None:
    sql = "-- pick one\nSELECT 1 -- one\nFROM x\n\tWHERE y"
    t = BigQueryTask(name="t", query_template=sql, task_config=BigQueryConfig(ProjectID="p"))
    assert template_of(t).sql.statement == sql


def test_output_results_only_when_declared() -> None:
    without = BigQueryTask(name="a", query_template="SELECT 1", task_config=BigQueryConfig(ProjectID="p"))
    with_out = BigQueryTask(
        name="b",
        query_template="SELECT 1",
        task_config=BigQueryConfig(ProjectID="p"),
        output_structured_dataset_type=StructuredDataset,
    )
    assert list(without.python_interface.outputs) == []
    assert list(with_out.python_interface.outputs) == ["results"]


@pytest.mark.parametrize("project", ["", "  "])
def test_empty_project_is_refused_naming_the_task(project: str) -> None:
    with pytest.raises(InvalidTaskError, match=r"'my_query'.*ProjectID"):
        BigQueryTask(name="my_query", query_template="SELECT 1", task_config=BigQueryConfig(ProjectID=project))


# (BigQueryConfig.RawTemplateInputs, the custom field written: absent keeps older and upstream templates' meaning)
RAW_TEMPLATE_INPUTS = [
    (False, None),
    ([], None),
    (True, True),
    (["table"], ["table"]),
    (["where", "table"], ["table", "where"]),
]


@pytest.mark.parametrize(("raw", "serialized"), RAW_TEMPLATE_INPUTS)
def test_raw_template_inputs_are_serialized_only_when_opted_in(raw: Any, serialized: Any) -> None:
    t = BigQueryTask(
        name="t",
        query_template="SELECT * FROM {{ .inputs.table }} WHERE {{ .inputs.where }}",
        task_config=BigQueryConfig(ProjectID="p", RawTemplateInputs=raw),
        inputs=kwtypes(table=str, where=str),
    )
    assert template_of(t).custom.get("RawTemplateInputs") == serialized


def test_identity_and_capacity_fields_are_serialized_only_when_set() -> None:
    config = BigQueryConfig(
        ProjectID="data",
        ImpersonateServiceAccount="etl@p.iam.gserviceaccount.com",
        Delegates=["hop@p.iam.gserviceaccount.com"],
        ExecutionProject="compute",
        QuotaProject="quota",
        Reservation="none",
    )
    custom = template_of(BigQueryTask(name="t", query_template="SELECT 1", task_config=config)).custom
    assert {k: custom[k] for k in ACCESS_KEYS} == {
        "ImpersonateServiceAccount": "etl@p.iam.gserviceaccount.com",
        "Delegates": ["hop@p.iam.gserviceaccount.com"],
        "ExecutionProject": "compute",
        "QuotaProject": "quota",
        "Reservation": "none",
    }
    plain = template_of(BigQueryTask(name="t", query_template="SELECT 1", task_config=BigQueryConfig("p"))).custom
    assert not ACCESS_KEYS & set(plain)


def test_a_reservation_that_is_not_one_is_refused_at_definition() -> None:
    with pytest.raises(InvalidTaskError, match=r"^task 'res_task': BigQueryConfig.Reservation is not a reservation"):
        BigQueryTask(name="res_task", query_template="SELECT 1", task_config=BigQueryConfig("p", Reservation="prod"))


@pytest.mark.parametrize("raw", [["nope"], "table", 1])
def test_raw_template_inputs_naming_no_input_are_refused_at_definition(raw: Any) -> None:
    with pytest.raises(InvalidTaskError, match=r"'raw_task'.*RawTemplateInputs.*inputs: table"):
        BigQueryTask(
            name="raw_task",
            query_template="SELECT * FROM {{ .inputs.table }}",
            task_config=BigQueryConfig(ProjectID="p", RawTemplateInputs=raw),
            inputs=kwtypes(table=str),
        )


def test_local_run_passes_pickled_types_without_unpickling(emulator: Any) -> None:
    """bytes, Decimal and time travel as pickles in Flyte; the connector decodes them safely."""
    q = BigQueryTask(
        name="pickled",
        query_template="SELECT @b AS b, @d AS d, @t AS t, @day AS day",
        task_config=BigQueryConfig(ProjectID=emulator.project),
        inputs=kwtypes(b=bytes, d=decimal.Decimal, t=datetime.time, day=datetime.date),
        output_structured_dataset_type=StructuredDataset,
    )

    @task
    def read(sd: StructuredDataset) -> pd.DataFrame:
        return sd.open(pd.DataFrame).all()

    @workflow
    def wf() -> pd.DataFrame:
        return read(
            sd=q(b=b"\x00\x01", d=decimal.Decimal("1.25"), t=datetime.time(1, 2, 3), day=datetime.date(2024, 2, 29))
        )

    row = wf().iloc[0].to_dict()
    assert row == {
        "b": b"\x00\x01",
        "d": decimal.Decimal("1.25"),
        "t": datetime.time(1, 2, 3),
        "day": datetime.date(2024, 2, 29),
    }


def test_local_run_of_a_failing_query_raises_with_bigquerys_message(emulator: Any) -> None:
    q = BigQueryTask(
        name="broken",
        query_template="SELECT * FROM samples.no_such_table",
        task_config=BigQueryConfig(ProjectID=emulator.project),
    )
    with pytest.raises(Exception, match="broken") as e:
        q()
    assert "BigQuery job failed" in str(e.value)


def test_demo_workflow_runs_unchanged_under_pyflyte_run(emulator: Any) -> None:
    """The public docs' example, dataset swapped for the seeded one, through the real CLI."""
    proc = pyflyte_run(emulator, "examples/demo_workflow.py", "wf", "--version", "1.16.0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "flytekit" in proc.stdout
    assert "downloads" in proc.stdout
