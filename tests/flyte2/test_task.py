"""BigQueryTask and BigQueryConfig for Flyte 2: what the template records, checked at definition time."""

from __future__ import annotations

import datetime
import decimal
import json
import time
from typing import Any, Optional

import pytest
from flyte.io import DataFrame
from flyte_bigquery_core.errors import InvalidTaskError, UnsupportedInputError
from flyte_bigquery_core.params import input_type
from flyte_bigquery_core.planning import plan_query
from flyte_bigquery_core.settings import Settings
from flyteplugins.bigquery import BigQueryConfig, BigQueryTask
from flyteplugins.bigquery.connector import execution_identity, query_task
from google.cloud import bigquery

from .helpers import PROJECT, template_of
from .types_for_tests import Color, Level, Window

PRINCIPAL = "etl@p.iam.gserviceaccount.com"
SQL = """-- top rows
SELECT name,   'two  spaces' AS s  -- kept
FROM samples.daily_downloads
WHERE day = @day"""


def _task(**kwargs: Any) -> BigQueryTask:
    kwargs.setdefault("plugin_config", BigQueryConfig(ProjectID=PROJECT, Location="US"))
    return BigQueryTask(name="q", query_template=kwargs.pop("query_template", SQL), **kwargs)


def test_the_statement_is_sent_exactly_as_written() -> None:
    assert template_of(_task(inputs={"day": datetime.date})).sql.statement == SQL


def test_the_task_type_is_upstreams() -> None:
    assert template_of(_task()).type == "bigquery_query_job_task"


def test_upstreams_custom_fields_are_written() -> None:
    config = bigquery.QueryJobConfig(priority="BATCH", labels={"team": "x"}, maximum_bytes_billed=10**9)
    custom = template_of(_task(plugin_config=BigQueryConfig(PROJECT, "EU", config))).custom
    assert (custom["ProjectID"], custom["Location"], custom["Domain"]) == (PROJECT, "EU", "development")
    assert custom["priority"] == "BATCH" and custom["maximumBytesBilled"] == "1000000000"  # flattened, as upstream
    assert custom["QueryJobConfig"]["labels"] == {"team": "x"}  # and complete, which upstream loses


def test_a_missing_location_is_written_as_null_as_upstream_does() -> None:
    custom = template_of(_task(plugin_config=BigQueryConfig(PROJECT))).custom
    assert "Location" in custom and custom["Location"] is None


INPUT_TYPES = [
    int,
    float,
    str,
    bool,
    bytes,
    datetime.date,
    datetime.datetime,
    datetime.time,
    datetime.timedelta,
    decimal.Decimal,
    dict,
    list[int],
    Optional[str],
    Color,
    Window,
    list[Window],
]


@pytest.mark.parametrize("declared", INPUT_TYPES, ids=str)
def test_each_input_type_is_recorded_as_the_core_maps_it(declared: Any) -> None:
    custom = template_of(_task(query_template="SELECT @x", inputs={"x": declared})).custom
    assert custom["InputTypes"] == {"x": input_type(declared, "q", "x")}


def test_enum_member_names_are_recorded_because_flyte_2_carries_enums_by_name() -> None:
    custom = template_of(_task(query_template="SELECT @c, @l", inputs={"c": Color, "l": list[Level]})).custom
    assert custom["InputEnums"] == {"c": {"RED": "red", "BLUE": "blue"}, "l": {"LOW": 1, "HIGH": 9}}


def test_the_credentials_secret_is_recorded_as_upstream_does() -> None:
    custom = template_of(_task(google_application_credentials="BQ_KEY")).custom
    assert custom["secrets"] == {"google_application_credentials": "BQ_KEY"}


def test_secrets_never_reach_the_job_configuration() -> None:
    template = template_of(_task(query_template="SELECT 1", google_application_credentials="BQ_KEY"))
    plan = plan_query(query_task(template), {}, execution_identity(template, None), Settings.from_env({}), time.time())
    assert "secrets" not in str(plan.resource) and "BQ_KEY" not in str(plan.resource)


def test_the_identity_and_capacity_fields_reach_the_plan_through_the_core() -> None:
    config = BigQueryConfig(
        PROJECT, "US", ImpersonateServiceAccount=PRINCIPAL, ExecutionProject="compute", Reservation="none"
    )
    template = template_of(_task(query_template="SELECT 1", plugin_config=config))
    assert (template.custom["ImpersonateServiceAccount"], template.custom["Reservation"]) == (PRINCIPAL, "none")
    rules = json.dumps([{"name": "q", "principals": [PRINCIPAL]}])
    settings = Settings.from_env({"FLYTEKITPLUGINS_BIGQUERY_IMPERSONATION_RULES": rules})
    plan = plan_query(query_task(template), {}, execution_identity(template, None), settings, time.time())
    assert plan.caller.principal == PRINCIPAL and plan.project == "compute"
    assert plan.resource["configuration"]["reservation"] == "none"


def test_an_output_is_declared_only_when_asked_for() -> None:
    assert len(template_of(_task()).interface.outputs.variables) == 0
    outputs = template_of(_task(output_dataframe_type=DataFrame)).interface.outputs.variables
    assert [v.key for v in outputs] == ["results"]


def test_optional_inputs_default_to_none_and_others_are_required() -> None:
    task = _task(query_template="SELECT @a, @b", inputs={"a": int, "b": Optional[int]})
    assert task.native_interface.required_inputs() == ["a"]


def test_the_timeout_reaches_the_core() -> None:
    template = template_of(_task(timeout=90))
    assert query_task(template).timeout_seconds == 90


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"plugin_config": BigQueryConfig(ProjectID="")}, r"'q'.*ProjectID"),
        ({"plugin_config": None}, r"'q'.*ProjectID"),
        ({"plugin_config": BigQueryConfig(PROJECT, MaximumBytes="lots")}, r"'q'.*MaximumBytes.*'10 GiB'"),
        ({"plugin_config": BigQueryConfig(PROJECT, RawTemplateInputs=["nope"])}, r"'q'.*RawTemplateInputs"),
    ],
    ids=["empty-project", "no-config", "byte-limit", "raw-inputs"],
)
def test_a_bad_configuration_is_refused_at_definition_naming_the_task(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidTaskError, match=expected):
        _task(**kwargs)


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        (tuple[int, str], r"'q'.*input 'x'.*tuple.*use list\[T\]"),
        (list[list[int]], r"'q'.*input 'x'.*list of lists"),
        (DataFrame, r"'q'.*input 'x'.*no BigQuery query parameter type"),
    ],
    ids=["tuple", "list-of-lists", "dataframe"],
)
def test_an_input_type_with_no_bigquery_form_is_refused_naming_the_task_and_input(declared: Any, expected: str) -> None:
    with pytest.raises(UnsupportedInputError, match=expected):
        _task(query_template="SELECT @x", inputs={"x": declared})
