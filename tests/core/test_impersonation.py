"""Impersonated credentials against a loopback generateAccessToken stand-in: one token per principal, reused;
IAM's 403 a permanent failure naming the role, before anything is submitted; no token in any message."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from flyte_bigquery_core.access import Caller
from flyte_bigquery_core.access_policy import AccessPolicy, AccessRule
from flyte_bigquery_core.clients import ClientPool
from flyte_bigquery_core.engine import QueryEngine
from flyte_bigquery_core.errors import PermanentError, TransientError
from flyte_bigquery_core.handle import JobHandle
from flyte_bigquery_core.identity import ExecutionIdentity
from flyte_bigquery_core.impersonation import TOKEN_CREATOR_ROLE, TokenCreatorMissing, impersonated
from flyte_bigquery_core.jobs_api import JobsApi
from flyte_bigquery_core.planning import QueryTask, plan_query
from flyte_bigquery_core.settings import Settings
from flyte_bigquery_core.testing.iam_stand_in import IamStandIn
from flyte_bigquery_core.testing.scripted import Answer, ScriptedSend, scripted_transport
from google.auth.credentials import AnonymousCredentials
from google.oauth2.credentials import Credentials as TokenCredentials

ETL = "etl@analytics.iam.gserviceaccount.com"
OPS = "ops@analytics.iam.gserviceaccount.com"
DENIED = "nope@analytics.iam.gserviceaccount.com"
HOP = "hop@analytics.iam.gserviceaccount.com"
SCOPES = ("https://www.googleapis.com/auth/bigquery",)
RUNNING = {"jobReference": {"projectId": "p", "jobId": "j", "location": "EU"}, "status": {"state": "RUNNING"}}


@pytest.fixture
def iam() -> Iterator[IamStandIn]:
    with IamStandIn(denied={DENIED}) as stand_in:
        yield stand_in


def _api(send: ScriptedSend, caller: Caller, iam: IamStandIn) -> JobsApi:
    credentials = impersonated(TokenCredentials(token="source-token"), caller, SCOPES, iam.url)
    return JobsApi(scripted_transport(send, credentials), 2.0)


def _bearer(request: Any) -> str:
    return str(request.headers["authorization"]).removeprefix("Bearer ")


def test_one_token_per_principal_is_fetched_and_reused(iam: IamStandIn) -> None:
    send = ScriptedSend([Answer(200, RUNNING)] * 5)
    api = _api(send, Caller(ETL, (HOP,)), iam)

    async def calls() -> None:
        for _ in range(5):
            await api.get("p", "j", "EU")

    asyncio.run(calls())
    [exchange] = iam.exchanges
    assert (exchange.principal, exchange.delegates, exchange.bearer) == (
        ETL,
        (f"projects/-/serviceAccounts/{HOP}",),
        True,
    )
    assert {iam.issued[_bearer(r)] for r in send.requests} == {ETL}  # every call ran as the principal


def test_the_pool_keeps_one_credentials_object_per_principal(iam: IamStandIn) -> None:
    settings = Settings(emulator_host="http://127.0.0.1:9", iam_endpoint=iam.url)
    pool = ClientPool(max_workers=2, settings=settings)
    try:
        etl = pool.credentials(settings, Caller(ETL))
        assert pool.credentials(settings, Caller(ETL, quota_project="q")) is etl  # quota is a header, not a token
        assert pool.credentials(settings, Caller(OPS)) is not etl
        assert pool.jobs(settings, caller=Caller(ETL)) is pool.jobs(settings, caller=Caller(ETL))
        assert pool.jobs(settings, caller=Caller(ETL)) is not pool.jobs(settings, caller=Caller(OPS))
    finally:
        pool.close()


def test_with_a_local_bigquery_and_no_iam_endpoint_calls_stay_anonymous() -> None:
    settings = Settings(emulator_host="http://127.0.0.1:9")
    pool = ClientPool(max_workers=2, settings=settings)
    assert isinstance(pool.credentials(settings, Caller(ETL)), AnonymousCredentials)


def test_a_missing_token_creator_role_fails_permanently_before_anything_is_submitted(iam: IamStandIn) -> None:
    send = ScriptedSend([])
    settings = Settings(impersonation_rules=AccessPolicy((AccessRule("all", principals=(DENIED,)),)))
    identity = ExecutionIdentity("flytesnacks", "development", "e", "n0", "wf.q", 0)
    task = QueryTask("wf.q", {"ProjectID": "p", "Location": "EU", "ImpersonateServiceAccount": DENIED}, "SELECT 1")
    plan = plan_query(task, {}, identity, settings, 0.0)
    engine = QueryEngine(_api(send, plan.caller, iam), JobHandle)
    with pytest.raises(TokenCreatorMissing) as caught:
        asyncio.run(engine.submit(plan))
    assert isinstance(caught.value, PermanentError) and caught.value.principal == DENIED
    text = caught.value.for_task("wf.q")
    assert text.startswith("task 'wf.q': cannot run as") and TOKEN_CREATOR_ROLE in text and "(403)" in text
    assert send.requests == []  # nothing reached BigQuery
    assert [e.status for e in iam.exchanges] == [403]


def test_an_unavailable_iam_is_retried_then_transient(iam: IamStandIn) -> None:
    iam.status = 503
    send = ScriptedSend([])
    api = _api(send, Caller(ETL), iam)
    with pytest.raises(TransientError, match="BigQuery was unavailable while fetching job j"):
        asyncio.run(api.get("p", "j", "EU"))
    assert len(iam.exchanges) > 1 and send.requests == []


def test_no_token_reaches_a_message_or_the_handle(iam: IamStandIn) -> None:
    send = ScriptedSend([Answer(200, RUNNING)])
    api = _api(send, Caller(ETL), iam)
    asyncio.run(api.get("p", "j", "EU"))
    [token] = iam.issued
    handle = JobHandle("j", "p", "EU", principal=ETL)
    assert token not in handle.encode().decode()
    iam.denied.add(ETL)
    expired = _api(ScriptedSend([]), Caller(ETL), iam)
    with pytest.raises(TokenCreatorMissing) as caught:
        asyncio.run(expired.get("p", "j", "EU"))
    assert token not in str(caught.value) and "source-token" not in str(caught.value)
