"""Defining a task (both adapters): the custom fields a definition records, and the enum member names Flyte 2's
transport needs, read back and applied when the task is planned."""

from __future__ import annotations

import datetime
from typing import Any, Optional

import pytest
from flyte_bigquery_core.definition import BigQueryConfig, define_task, enum_members
from flyte_bigquery_core.errors import InvalidTaskError
from flyte_bigquery_core.identity import ExecutionIdentity
from flyte_bigquery_core.jobconfig import settings_from_custom
from flyte_bigquery_core.planning import QueryTask, plan_query
from flyte_bigquery_core.settings import Settings
from google.cloud import bigquery

from .types_for_tests import Color, Level

LOCAL = ExecutionIdentity("", "", "", "", "t", 0)

ENUM_MEMBERS = [
    (Color, {"RED": "red", "BLUE": "blue"}),
    (Optional[Level], {"LOW": 1, "HIGH": 3}),
    (list[Color], {"RED": "red", "BLUE": "blue"}),
    (int, None),
    (list[int], None),
    (datetime.date, None),
]


@pytest.mark.parametrize(("declared", "expected"), ENUM_MEMBERS, ids=str)
def test_enum_members_are_found_inside_optional_and_list(declared: Any, expected: Any) -> None:
    assert enum_members(declared) == expected


def test_custom_fields_hold_upstreams_keys_and_ours() -> None:
    config = bigquery.QueryJobConfig(priority="BATCH", labels={"a": "b"})
    settings = BigQueryConfig("proj", "EU", config, MaximumBytes="1 KiB", Estimate=True)
    definition = define_task("t", settings, {"c": Color, "n": int})
    fields = definition.custom_fields("development")
    assert (fields["ProjectID"], fields["Location"], fields["Domain"], fields["priority"]) == (
        "proj",
        "EU",
        "development",
        "BATCH",
    )
    assert fields["QueryJobConfig"]["labels"] == {"a": "b"}
    assert fields["InputTypes"] == {"c": "STRING", "n": "INT64"}
    assert fields["InputEnums"] == {"c": {"RED": "red", "BLUE": "blue"}}
    assert (fields["MaximumBytes"], fields["Estimate"]) == ("1024", True)


def test_an_empty_raw_template_inputs_list_is_not_recorded() -> None:
    assert "RawTemplateInputs" not in define_task("t", BigQueryConfig("p", RawTemplateInputs=[]), {}).custom_fields(
        None
    )


def test_a_missing_project_is_refused_naming_the_task() -> None:
    with pytest.raises(InvalidTaskError, match=r"'t'.*ProjectID"):
        define_task("t", BigQueryConfig(""), {})


def _plan(custom: dict[str, Any], values: dict[str, Any]) -> Any:
    return plan_query(QueryTask("t", custom, "SELECT @c, @l"), values, LOCAL, Settings(), 0.0)


def test_enum_names_become_their_values_as_recorded_even_through_a_struct_double() -> None:
    custom = define_task("t", BigQueryConfig("p"), {"c": Color, "l": list[Level]}).custom_fields(None)
    custom["InputEnums"]["l"] = {"LOW": 1.0, "HIGH": 3.0}  # what a protobuf Struct gives back
    parameters = _plan(custom, {"c": "BLUE", "l": ["HIGH", "LOW"]}).resource["configuration"]["query"][
        "queryParameters"
    ]
    assert parameters[0]["parameterValue"] == {"value": "blue"}
    assert parameters[1]["parameterValue"] == {"arrayValues": [{"value": "3"}, {"value": "1"}]}


def test_secrets_and_input_enums_are_never_job_configuration() -> None:
    custom = {"ProjectID": "p", "secrets": {"google_application_credentials": "KEY"}, "InputEnums": {}}
    assert settings_from_custom(custom, "t").job_config == {"query": {}}


def test_malformed_input_enums_are_refused_naming_the_task() -> None:
    with pytest.raises(InvalidTaskError, match=r"'t'.*InputEnums"):
        settings_from_custom({"ProjectID": "p", "InputEnums": {"c": "RED"}}, "t")
