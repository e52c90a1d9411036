"""Deterministic job ids and labels."""

import re

from flyte_bigquery_core.identity import (
    ExecutionIdentity,
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
