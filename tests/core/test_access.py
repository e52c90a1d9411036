"""A task's identity and project fields, read, checked and authorized at planning; the caller in bq:// URIs."""

from __future__ import annotations

from typing import Any

import pytest
from flyte_bigquery_core.access import Caller, caller_of_uri, task_access, uri_with_caller
from flyte_bigquery_core.access_policy import AccessPolicy, AccessRule, ImpersonationRefused
from flyte_bigquery_core.errors import InvalidTaskError
from flyte_bigquery_core.identity import ExecutionIdentity
from flyte_bigquery_core.planning import QueryTask, plan_query
from flyte_bigquery_core.settings import Settings

ETL = "etl@analytics.iam.gserviceaccount.com"
HOP = "hop@analytics.iam.gserviceaccount.com"
FLYTE = ExecutionIdentity("analytics", "production", "exec1", "n0", "wf.q", 0)
ALLOW = Settings(impersonation_rules=AccessPolicy((AccessRule("etl", "analytics", "production", (ETL,), (HOP,)),)))


def _access(settings: Settings = ALLOW, identity: ExecutionIdentity = FLYTE, **custom: Any) -> Any:
    return task_access({"ProjectID": "data", **custom}, "data", identity, settings, "wf.q")


def test_without_fields_the_connectors_identity_runs_in_the_data_project() -> None:
    access = _access()
    assert (access.caller, access.execution_project, access.rule) == (Caller(), "data", None)


def test_an_allowed_principal_with_its_delegates_and_projects() -> None:
    access = _access(ImpersonateServiceAccount=ETL, Delegates=[HOP], ExecutionProject="compute", QuotaProject="quota")
    assert access.caller == Caller(ETL, (HOP,), "quota")
    assert (access.execution_project, access.rule) == ("compute", "etl")


def test_impersonation_is_denied_by_default() -> None:
    with pytest.raises(ImpersonationRefused, match=r"^task 'wf\.q': may not run as 'etl@"):
        _access(Settings(), ImpersonateServiceAccount=ETL)


@pytest.mark.parametrize(
    ("custom", "says"),
    [
        ({"ImpersonateServiceAccount": "etl"}, "ImpersonateServiceAccount must be a service account's e-mail"),
        ({"ImpersonateServiceAccount": ETL, "Delegates": "hop"}, "Delegates must be a list"),
        ({"ImpersonateServiceAccount": ETL, "Delegates": ["hop/x"]}, "Delegates must be a service account's"),
        ({"Delegates": [HOP]}, "Delegates needs ImpersonateServiceAccount"),
        ({"ExecutionProject": "a/b"}, "ExecutionProject 'a/b' is not a project id"),
        ({"QuotaProject": 3}, "QuotaProject must be a project id"),
    ],
)
def test_malformed_fields_are_refused_naming_the_task_and_the_field(custom: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidTaskError) as error:
        _access(**custom)
    assert str(error.value).startswith("task 'wf.q': BigQueryConfig.") and says in str(error.value)


def test_the_plan_runs_the_job_in_the_execution_project_and_keeps_results_in_the_data_project() -> None:
    custom = {"ProjectID": "data", "Location": "US", "ResultsDataset": "flyte_results", "ExecutionProject": "compute"}
    plan = plan_query(QueryTask("wf.q", custom, "SELECT 1", output_name="results"), {}, FLYTE, Settings(), 0.0)
    assert plan.project == plan.resource["jobReference"]["projectId"] == "compute"
    assert plan.resource["configuration"]["query"]["destinationTable"]["projectId"] == "data"


def test_the_plan_carries_the_caller_and_the_reservation() -> None:
    custom = {"ProjectID": "data", "ImpersonateServiceAccount": ETL, "Reservation": "none"}
    plan = plan_query(QueryTask("wf.q", custom, "SELECT 1"), {}, FLYTE, ALLOW, 0.0)
    assert plan.caller == Caller(ETL)
    assert plan.resource["configuration"]["reservation"] == "none"
    assert "ImpersonateServiceAccount" not in plan.resource["configuration"]["query"]  # never sent as a query field


def test_a_refused_principal_refuses_the_plan_whatever_the_inputs() -> None:
    task = QueryTask("wf.q", {"ProjectID": "data", "ImpersonateServiceAccount": ETL}, "SELECT @missing")
    with pytest.raises(ImpersonationRefused):
        plan_query(task, {}, FLYTE, Settings(), 0.0)


@pytest.mark.parametrize(
    "caller",
    [Caller(ETL), Caller(ETL, (HOP, "b@c.iam.gserviceaccount.com"), "quota")],
    ids=["principal", "delegates-and-quota"],
)
def test_the_caller_travels_in_the_result_uri(caller: Caller) -> None:
    uri = uri_with_caller("bq://data:flyte_results.t1", caller)
    assert uri.startswith("bq://data:flyte_results.t1?principal=etl@analytics")
    assert caller_of_uri(uri) == caller


def test_a_uri_without_a_caller_is_read_as_the_process_itself() -> None:
    assert uri_with_caller("bq://p:d.t", Caller(quota_project="q")) == "bq://p:d.t"
    assert caller_of_uri("bq://p:d.t") == Caller()
