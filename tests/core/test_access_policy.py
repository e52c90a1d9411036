"""The operator's allow-list: who may run as whom, deny by default, and what a malformed list says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flyte_bigquery_core.access_policy import IMPERSONATION_RULES_ENV, AccessPolicy, ImpersonationRefused, parse_policy
from flyte_bigquery_core.errors import PermanentError, SettingsError
from flyte_bigquery_core.settings import Settings

ETL = "etl@analytics.iam.gserviceaccount.com"
HOP = "hop@analytics.iam.gserviceaccount.com"
RULES = {
    "rules": [
        {"name": "etl-prod", "project": "analytics", "domain": "production", "principals": [ETL]},
        {
            "name": "sandbox",
            "project": "*",
            "domain": "development",
            "principals": ["*@sandbox.iam.gserviceaccount.com"],
            "delegates": [HOP],
        },
    ]
}
POLICY = parse_policy(json.dumps(RULES))


@pytest.mark.parametrize(
    ("principal", "delegates", "project", "domain", "rule"),
    [
        pytest.param(ETL, (), "analytics", "production", "etl-prod", id="listed-for-its-project-and-domain"),
        pytest.param(ETL.upper(), (), "analytics", "production", "etl-prod", id="e-mails-compare-in-lower-case"),
        pytest.param("a@sandbox.iam.gserviceaccount.com", (), "any", "development", "sandbox", id="patterns"),
        pytest.param("a@sandbox.iam.gserviceaccount.com", (HOP,), "x", "development", "sandbox", id="listed-delegate"),
    ],
)
def test_a_listed_principal_is_allowed_by_its_rule(
    principal: str, delegates: tuple[str, ...], project: str, domain: str, rule: str
) -> None:
    assert POLICY.authorize(principal, delegates, project, domain).name == rule


@pytest.mark.parametrize(
    ("policy", "principal", "delegates", "project", "domain", "rule", "says"),
    [
        pytest.param(AccessPolicy(), ETL, (), "analytics", "production", None, "is not set", id="no-rules-deny"),
        pytest.param(POLICY, ETL, (), "analytics", "staging", None, "no impersonation rule covers", id="no-rule"),
        pytest.param(
            POLICY, "other@analytics.iam.gserviceaccount.com", (), "analytics", "production", "etl-prod",
            "('etl-prod') do not list it", id="rule-does-not-list-it",
        ),
        pytest.param(
            POLICY, "a@sandbox.iam.gserviceaccount.com", ("x@y.iam.gserviceaccount.com",), "p", "development",
            "sandbox", "not the delegate 'x@y.iam.gserviceaccount.com'", id="unlisted-delegate",
        ),
        pytest.param(POLICY, ETL, (), "", "", None, "(none: a local run)", id="local-runs-only-match-wildcards"),
    ],
)  # fmt: skip
def test_a_refusal_names_the_task_the_principal_and_the_rule(
    policy: AccessPolicy,
    principal: str,
    delegates: tuple[str, ...],
    project: str,
    domain: str,
    rule: str | None,
    says: str,
) -> None:
    with pytest.raises(ImpersonationRefused) as refused:
        policy.authorize(principal, delegates, project, domain, task="wf.q")
    assert isinstance(refused.value, PermanentError)
    assert (refused.value.principal, refused.value.rule) == (principal, rule)
    text = str(refused.value)
    assert text.startswith("task 'wf.q': may not run as ") and repr(principal) in text and says in text
    assert "nothing was submitted" in text and IMPERSONATION_RULES_ENV in text


def test_the_rules_can_live_in_a_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(RULES["rules"]))
    settings = Settings.from_env({IMPERSONATION_RULES_ENV: str(path)})
    assert settings.impersonation_rules == POLICY


@pytest.mark.parametrize(
    ("value", "says"),
    [
        pytest.param('{"rules": [', "is not valid JSON (line 1", id="bad-json"),
        pytest.param("/no/such/rules.json", "cannot be read: FileNotFoundError", id="missing-file"),
        pytest.param('{"rules": {}}', "expected a list of rules", id="not-a-list"),
        pytest.param('[{"principals": []}]', "principals is empty", id="allows-nobody"),
        pytest.param('[{"principals": ["a@b.c"], "domian": "x"}]', "unknown key(s) domian", id="typo"),
        pytest.param('[{"name": "a", "principals": ["a@b.c"]}, {"name": "a", "principals": ["x@b.c"]}]',
                     "used twice", id="duplicate-names"),
        pytest.param('[{"principals": "a@b.c"}]', "must be a list", id="principals-not-a-list"),
    ],
)  # fmt: skip
def test_a_malformed_allow_list_fails_at_start_up_naming_the_variable(value: str, says: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({IMPERSONATION_RULES_ENV: value})
    assert str(error.value).startswith(f"{IMPERSONATION_RULES_ENV} is malformed") and says in str(error.value)
