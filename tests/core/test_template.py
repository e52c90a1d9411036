"""``{{ .inputs.name }}`` rendering."""

import datetime

import pytest
from flyte_bigquery_core.errors import InvalidTaskError
from flyte_bigquery_core.template import render_query


def test_placeholder_is_replaced_by_the_input_text() -> None:
    assert render_query("SELECT * FROM {{ .inputs.table }}", {"table": "ds.t"}, "t") == "SELECT * FROM ds.t"


def test_spacing_variants_are_accepted() -> None:
    assert render_query("{{.inputs.a}}-{{   .inputs.a   }}", {"a": 1}, "t") == "1-1"


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
    assert render_query("{{ .inputs.a }}", {"a": "{{ x }}"}, "t") == "{{ x }}"


def test_datetime_renders_as_iso() -> None:
    value = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert render_query("{{ .inputs.d }}", {"d": value}, "t") == "2024-01-02T03:04:05+00:00"
