"""Defining a load, extract or copy task in the core, as both adapters do (``define_transfer``): the custom fields
recorded, what is left to the connector at run time, and the refusals that name the task. No SDK, no BigQuery."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flyte_bigquery_core.definition import BigQueryConfig
from flyte_bigquery_core.errors import InvalidTaskError
from flyte_bigquery_core.load import LoadSpec
from flyte_bigquery_core.table_copy import CopySpec
from flyte_bigquery_core.transfer_definition import check_partition_type, define_transfer, schema_fields

ETL = "etl@analytics-prod.iam.gserviceaccount.com"


class _Column:
    """A column that spells itself as REST does, like google-cloud-bigquery's ``SchemaField``."""

    def to_api_repr(self) -> dict[str, Any]:
        return {"name": "n", "type": "INT64", "mode": "REQUIRED"}


def test_the_custom_fields_hold_the_project_the_spec_the_labels_and_the_identity() -> None:
    config = BigQueryConfig(ProjectID="proj", Location="EU", ExecutionProject="compute", QuotaProject="quota")
    definition = define_transfer(
        "wf.copy", "copy", config, CopySpec(destination="ds.c", sources=("ds.t",)), {}, (str,), {"team": "data"}
    )
    custom = definition.custom_fields("development")
    assert (custom["ProjectID"], custom["Location"], custom["Domain"], custom["Labels"]) == (
        "proj",
        "EU",
        "development",
        {"team": "data"},
    )
    assert custom["CopyJob"]["destination"] == "ds.c" and custom["CopyJob"]["sources"] == ["ds.t"]
    assert (custom["ExecutionProject"], custom["QuotaProject"]) == ("compute", "quota")


def test_an_impersonating_task_is_defined_and_its_principal_left_to_the_connectors_allow_list() -> None:
    # No allow-list is configured here (deny by default): the connector decides when the task runs, not here.
    config = BigQueryConfig(ProjectID="proj", ImpersonateServiceAccount=ETL, Delegates=[ETL])
    spec = LoadSpec(destination="ds.t")
    definition = define_transfer("wf.load", "load", config, spec, {"source": str}, (str,))
    assert definition.custom_fields(None)["ImpersonateServiceAccount"] == ETL


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"source": int}, "input 'source' is declared as <class 'int'>; expected one of str, list[str]"),
        ({"source": str, "partition": float}, "input 'partition' is declared as <class 'float'>"),
        ({"source": str, "day": dt.date}, "input(s) day are not read by a load task"),
    ],
)
def test_an_input_the_kind_cannot_read_is_refused_naming_it(inputs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTaskError) as e:
        define_transfer("wf.load", "load", BigQueryConfig(ProjectID="p"), LoadSpec("ds.t"), inputs, (str, list[str]))
    assert e.value.task == "wf.load" and message in str(e.value)


def test_query_only_settings_are_refused_rather_than_ignored() -> None:
    config = BigQueryConfig(ProjectID="p", ResultsDataset="results", MaximumBytes=10)
    with pytest.raises(InvalidTaskError, match=r"BigQueryConfig.ResultsDataset, MaximumBytes only apply to query"):
        define_transfer("wf.c", "copy", config, CopySpec("ds.c", ("ds.t",)), {}, ())


@pytest.mark.parametrize(
    ("schema", "fields"),
    [
        (None, None),
        ({"day": "DATE"}, ({"name": "day", "type": "DATE"},)),
        ([{"name": "day", "type": "DATE"}], ({"name": "day", "type": "DATE"},)),
        ([_Column()], ({"name": "n", "type": "INT64", "mode": "REQUIRED"},)),
    ],
)
def test_a_schema_is_spelled_as_rest_fields(schema: Any, fields: Any) -> None:
    assert schema_fields(schema, "wf.load") == fields


def test_a_partition_input_may_be_a_date_a_datetime_an_integer_or_a_decorator() -> None:
    for kind in (dt.date, dt.datetime, int, str, None):
        check_partition_type(kind, "wf.load")
    with pytest.raises(InvalidTaskError, match=r"expected one of datetime\.date"):
        check_partition_type(bytes, "wf.load")
