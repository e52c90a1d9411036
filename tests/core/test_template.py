"""``{{ .inputs.name }}`` rendering."""

import datetime
from collections.abc import Collection
from typing import Any

import pytest
from flyte_bigquery_core.errors import InvalidTaskError
from flyte_bigquery_core.jobconfig import settings_from_custom
from flyte_bigquery_core.template import is_identifier_path, render_query


def test_placeholder_is_replaced_by_the_input_text() -> None:
    assert render_query("SELECT * FROM {{ .inputs.table }}", {"table": "ds.t"}, "t") == "SELECT * FROM ds.t"


def test_spacing_variants_are_accepted() -> None:
    assert render_query("{{.inputs.a}}-{{   .inputs.a   }}", {"a": "x"}, "t") == "x-x"


def test_query_without_placeholders_is_returned_unchanged_with_comments_and_newlines() -> None:
    sql = "-- comment\nSELECT 1\n\n  -- another\n"
    assert render_query(sql, {}, "t") == sql


def test_unknown_placeholder_names_it_and_the_declared_inputs() -> None:
    with pytest.raises(InvalidTaskError) as e:
        render_query("SELECT {{ .inputs.nope }}", {"a": 1, "b": 2}, "my_task")
    assert "my_task" in str(e.value)
    assert "nope" in str(e.value)
    assert "a, b" in str(e.value)


def test_malformed_placeholder_is_an_error() -> None:
    with pytest.raises(InvalidTaskError, match="malformed"):
        render_query("SELECT {{ inputs.a }}", {"a": 1}, "t")


def test_other_scopes_are_refused() -> None:
    with pytest.raises(InvalidTaskError, match="not supported"):
        render_query("SELECT '{{ .outputs.a }}'", {"a": 1}, "t")


def test_braces_inside_a_value_are_not_reinterpreted() -> None:
    assert render_query("{{ .inputs.a }}", {"a": "{{ x }}"}, "t", raw_inputs=True) == "{{ x }}"


def test_datetime_renders_as_iso() -> None:
    value = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert render_query("{{ .inputs.d }}", {"d": value}, "t", raw_inputs={"d"}) == "2024-01-02T03:04:05+00:00"


# --- only identifier paths are rendered, unless the task opts into raw SQL ----------------------------------

# (value, whether it is a GoogleSQL identifier path)
IDENTIFIER_PATHS = [
    ("t", True),
    ("_t1", True),
    ("dataset.table", True),
    ("my_project.dataset.table", True),
    ("`my-project`.dataset.table", True),
    ("`my-project.dataset.table`", True),
    ("`example.com:my-project`.dataset.table", True),
    ("`my table`", True),
    ("`select`", True),
    ("Select", False),  # a reserved keyword, unquoted
    ("dataset.from", False),
    ("my-project.dataset.table", False),  # a dash needs backticks
    ("1table", False),
    ("", False),
    ("t; DROP TABLE x", False),
    ("t --", False),
    ("t /* c */", False),
    ("t\nUNION ALL SELECT 1", False),
    ("t`", False),
    ("`t", False),
    ("`a`b`", False),
    ("`a`.`b``", False),
    ("`a\\`", False),
    ("`a\nb`", False),
    ("``", False),
    ("a..b", False),
    ("a.", False),
    (".a", False),
    (" t", False),
    ("t'", False),
    ('t"', False),
    ("@x", False),
    ("dataset.tablé", False),
    ("3", False),
]


@pytest.mark.parametrize(("value", "valid"), IDENTIFIER_PATHS, ids=[repr(v) for v, _ in IDENTIFIER_PATHS])
def test_identifier_paths_follow_googlesql(value: str, valid: bool) -> None:
    assert is_identifier_path(value) is valid


@pytest.mark.parametrize(("value", "valid"), IDENTIFIER_PATHS, ids=[repr(v) for v, _ in IDENTIFIER_PATHS])
def test_a_rendered_value_must_be_an_identifier_path(value: str, valid: bool) -> None:
    template = "SELECT * FROM {{ .inputs.table }} WHERE x = 1"
    if valid:
        assert render_query(template, {"table": value}, "t") == f"SELECT * FROM {value} WHERE x = 1"
    else:
        with pytest.raises(InvalidTaskError):
            render_query(template, {"table": value}, "t")


@pytest.mark.parametrize("value", ["t; DROP TABLE x", "secret-token-123 --", "1 OR 1=1", "2024-01-02", 10, True, 1.5])
def test_a_refusal_names_the_input_and_the_parameter_but_never_the_value(value: Any) -> None:
    with pytest.raises(InvalidTaskError) as e:
        render_query("SELECT * FROM t WHERE a = {{ .inputs.pick }}", {"pick": value}, "my_task")
    message = str(e.value)
    assert "'pick'" in message and "@pick" in message and "RawTemplateInputs" in message and "my_task" in message
    assert str(value) not in message


# (template, value, rendered or None for refused): the context the template gives the placeholder
IN_CONTEXT = [
    ("SELECT * FROM `{{ .inputs.p }}.ds.t`", "my-project", "SELECT * FROM `my-project.ds.t`"),
    ("SELECT * FROM `{{ .inputs.p }}`.ds.t", "example.com:my-project", "SELECT * FROM `example.com:my-project`.ds.t"),
    ("SELECT * FROM `{{ .inputs.p }}.ds.t`", "a` UNION SELECT 1 --", None),
    ("SELECT * FROM `{{ .inputs.p }}.ds.t`", "a b", None),
    ("SELECT * FROM `{{ .inputs.p }}.ds.t`", "a\\", None),
    ("SELECT * FROM `{{ .inputs.p }}.ds.t`", "", None),
    # A backtick inside a string literal or a comment opens no quoted identifier.
    ("SELECT '`' AS q, {{ .inputs.p }}", "my-project", None),
    ('SELECT "`" AS q, {{ .inputs.p }}', "a; DROP TABLE x", None),
    ('SELECT """`\\"""" AS q, {{ .inputs.p }}', "a b", None),
    ("SELECT 'it\\'s `' AS q, {{ .inputs.p }}", "a b", None),
    ("-- a ` in a comment\nSELECT {{ .inputs.p }}", "a b", None),
    ("# a ` in a comment\nSELECT {{ .inputs.p }}", "a b", None),
    ("/* ` */ SELECT {{ .inputs.p }}", "a b", None),
    ("SELECT 1 -- from {{ .inputs.p }}", "ds.t", "SELECT 1 -- from ds.t"),
    ("SELECT 1 -- from {{ .inputs.p }}", "t\nDROP TABLE x", None),
    ("SELECT 'name: {{ .inputs.p }}'", "ds.t", "SELECT 'name: ds.t'"),
    ("SELECT 'name: {{ .inputs.p }}'", "x' OR '1'='1", None),
    ("SELECT `a`.{{ .inputs.p }}", "b", "SELECT `a`.b"),
]


@pytest.mark.parametrize(("template", "value", "rendered"), IN_CONTEXT)
def test_a_placeholder_inside_backticks_takes_a_name_part(template: str, value: str, rendered: str | None) -> None:
    if rendered is not None:
        assert render_query(template, {"p": value}, "t") == rendered
    else:
        with pytest.raises(InvalidTaskError, match="@p"):
            render_query(template, {"p": value}, "t")


# (raw_inputs, which of the two inputs a (a fragment) and b (a table) are pasted raw)
OPT_IN = [
    (True, "SELECT * FROM ds.t WHERE x > 1 AND y = 'z'"),
    (["a"], "SELECT * FROM ds.t WHERE x > 1 AND y = 'z'"),
    (frozenset({"a", "b"}), "SELECT * FROM ds.t WHERE x > 1 AND y = 'z'"),
    ([], None),
    (False, None),
    (["b"], None),
]


@pytest.mark.parametrize(("raw_inputs", "rendered"), OPT_IN)
def test_raw_template_inputs_paste_the_listed_inputs(raw_inputs: bool | Collection[str], rendered: str | None) -> None:
    template = "SELECT * FROM {{ .inputs.b }} WHERE {{ .inputs.a }}"
    inputs = {"a": "x > 1 AND y = 'z'", "b": "ds.t"}
    if rendered is not None:
        assert render_query(template, inputs, "t", raw_inputs=raw_inputs) == rendered
    else:
        with pytest.raises(InvalidTaskError, match="'a'"):
            render_query(template, inputs, "t", raw_inputs=raw_inputs)


# (custom field RawTemplateInputs, TaskSettings.raw_template_inputs): absent means identifiers only
RAW_SETTINGS = [
    ({}, frozenset()),
    ({"RawTemplateInputs": False}, frozenset()),
    ({"RawTemplateInputs": True}, True),
    ({"RawTemplateInputs": ["a", "b"]}, frozenset({"a", "b"})),
    ({"RawTemplateInputs": []}, frozenset()),
]


@pytest.mark.parametrize(("custom", "expected"), RAW_SETTINGS)
def test_raw_template_inputs_are_read_from_the_custom_fields(
    custom: dict[str, Any], expected: bool | frozenset[str]
) -> None:
    settings = settings_from_custom({"ProjectID": "p", **custom}, "t")
    assert settings.raw_template_inputs == expected
    assert "RawTemplateInputs" not in settings.job_config.get("query", {})  # never sent to BigQuery


@pytest.mark.parametrize("value", ["a", 1, [1], {"a": True}])
def test_a_malformed_raw_template_inputs_is_refused(value: Any) -> None:
    with pytest.raises(InvalidTaskError, match="RawTemplateInputs"):
        settings_from_custom({"ProjectID": "p", "RawTemplateInputs": value}, "t")
