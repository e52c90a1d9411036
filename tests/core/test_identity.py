"""Deterministic job ids and labels."""

import re
import unicodedata

import pytest
from flyte_bigquery_core.errors import InvalidTaskError
from flyte_bigquery_core.identity import (
    ExecutionIdentity,
    LabelCollisionError,
    flyte_labels,
    job_id,
    local_job_id,
    query_fingerprint,
    sanitize_labels,
)

_JOB_ID_RULE = re.compile(r"^[A-Za-z0-9_-]{1,1024}$")
_IDENTITY = ExecutionIdentity("flytesnacks", "development", "f3a9c2b1e", "n0", "wf.sql.bigquery.w_io", 0)


def test_same_attempt_and_query_give_the_same_job_id() -> None:
    fp = query_fingerprint("SELECT 1", [])
    assert job_id(_IDENTITY, fp) == job_id(_IDENTITY, fp)


def test_new_attempt_gets_a_new_job_id() -> None:
    fp = query_fingerprint("SELECT 1", [])
    assert job_id(_IDENTITY, fp) != job_id(_IDENTITY.with_attempt(1), fp)


def test_different_parameters_give_a_different_job_id() -> None:
    a = query_fingerprint("SELECT @x", [{"name": "x", "parameterValue": {"value": "1"}}])
    b = query_fingerprint("SELECT @x", [{"name": "x", "parameterValue": {"value": "2"}}])
    assert job_id(_IDENTITY, a) != job_id(_IDENTITY, b)


def test_names_that_sanitize_alike_still_get_different_job_ids() -> None:
    fp = query_fingerprint("SELECT 1", [])
    one = ExecutionIdentity("p", "d", "a.b", "n0", "t", 0)
    two = ExecutionIdentity("p", "d", "a_b", "n0", "t", 0)
    assert job_id(one, fp) != job_id(two, fp)


def test_job_id_follows_bigquery_rules_for_hostile_names() -> None:
    weird = ExecutionIdentity("p", "d", "exé/cu tion:" + "x" * 3000, "node.with.dots", "t", 7)
    assert _JOB_ID_RULE.match(job_id(weird, query_fingerprint("SELECT 1", [])))


def test_local_job_ids_are_unique_and_valid() -> None:
    a, b = local_job_id(), local_job_id()
    assert a != b
    assert _JOB_ID_RULE.match(a)


def test_identity_without_execution_is_unknown() -> None:
    assert not ExecutionIdentity("", "", "", "", "t", 0).is_known


def test_flyte_labels_name_the_attempt() -> None:
    labels = flyte_labels(_IDENTITY.with_attempt(2))
    assert labels["flyte_execution"] == "f3a9c2b1e"
    assert labels["flyte_node"] == "n0"
    assert labels["flyte_attempt"] == "2"
    assert labels["flyte_task"] == "w_io"


def test_sanitize_labels_follows_bigquery_label_rules() -> None:
    labels = sanitize_labels({"Team Name": "Data.Eng", "9lives": "X" * 100, "": "dropped"})
    assert labels == {"team_name": "data_eng", "l9lives": "x" * 63}


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"Équipe": "Zürich"}, {"équipe": "zürich"}),  # international letters are kept, lowercased
        ({"部门": "数据"}, {"部门": "数据"}),  # caseless letters (Unicode Lo) are allowed, keys start with one
        ({"ΟΜΑΔΑ": "ΑΘΗΝΑ"}, {"ομαδα": "αθηνα"}),  # str.lower is Unicode-aware
        ({"Straße": "x"}, {"straße": "x"}),
        ({"e\u0301quipe": "cafe\u0301"}, {"équipe": "café"}),  # decomposed accents compose (NFC), not "_"
        ({"team": "٣"}, {"team": "٣"}),  # numeric characters are not only 0-9
        ({"1st": "a b"}, {"l1st": "a_b"}),  # a key must start with a letter
        ({"_x": "v"}, {"l_x": "v"}),
        ({"ok-key_1": "ok-value_2"}, {"ok-key_1": "ok-value_2"}),
        ({"a😀": "b🙂"}, {"a_": "b_"}),  # symbols are not letters
        ({"é" * 70: "ü" * 70}, {"é" * 63: "ü" * 63}),  # 63 characters, not bytes
        ({"!!!": "v"}, {"l___": "v"}),
        ({"": "dropped"}, {}),
    ],
)
def test_labels_follow_bigquerys_international_label_rules(labels: dict[str, str], expected: dict[str, str]) -> None:
    assert sanitize_labels(labels) == expected


_LABEL_CHAR = {"Ll", "Lo", "Nd", "Nl", "No"}


@pytest.mark.parametrize("text", ["Ünïcödé Ñame", "ǅemal", "İstanbul", "ﬀ ligature", "x" * 100, "Ω≈ç√∫"])
def test_every_sanitized_label_matches_bigquerys_character_classes(text: str) -> None:
    ((key, value),) = sanitize_labels({text: text}).items()
    assert unicodedata.category(key[0]) in {"Ll", "Lo"}
    for part in (key, value):
        assert 0 < len(part) <= 63
        assert all(c in "_-" or unicodedata.category(c) in _LABEL_CHAR for c in part), part


@pytest.mark.parametrize(
    ("labels", "first", "second"),
    [
        ({"Team": "a", "team": "b"}, "Team", "team"),
        ({"cost center": "a", "cost.center": "b"}, "cost center", "cost.center"),
        ({"x" * 63 + "a": "1", "x" * 63 + "b": "2"}, "x" * 63 + "a", "x" * 63 + "b"),
        ({"Équipe": "a", "équipe": "b"}, "Équipe", "équipe"),
    ],
)
def test_keys_that_sanitize_alike_are_refused_naming_both(labels: dict[str, str], first: str, second: str) -> None:
    with pytest.raises(LabelCollisionError) as e:
        sanitize_labels(labels)
    assert e.value.keys == (first, second)
    assert repr(first) in str(e.value) and repr(second) in str(e.value)


def test_a_label_collision_is_the_users_invalid_task() -> None:
    with pytest.raises(InvalidTaskError):
        sanitize_labels({"A": "1", "a": "2"})
