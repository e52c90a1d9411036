"""The fault-injecting proxy as the real google-cloud-bigquery client and our jobs API see it, through the proxy
to the emulator: each fault must look like the real thing (an HTTP error, a connection error, a lost response).
The proxy's own behaviour, against a stdlib upstream, is tested in tests/core/test_faultproxy.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flyte_bigquery_core.clients import ClientPool
from flyte_bigquery_core.jobs_api import JobsApi
from flyte_bigquery_core.settings import Settings
from flyte_bigquery_core.testing.faultproxy import FaultProxy
from google.api_core import exceptions as api_exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery


@pytest.fixture
def proxied(emulator: Any) -> Iterator[tuple[FaultProxy, bigquery.Client]]:
    with FaultProxy(emulator.rest_url) as p:
        client = bigquery.Client(
            project=emulator.project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=p.url),
        )
        try:
            yield p, client
        finally:
            client.close()


@pytest.fixture
def jobs_api(proxied: tuple[FaultProxy, bigquery.Client]) -> Iterator[JobsApi]:
    """The connector's jobs API, its traffic through the proxy, with a short retry budget."""
    pool = ClientPool(max_workers=2, settings=Settings(emulator_host=proxied[0].url, retry_seconds=5.0))
    try:
        yield pool.jobs()
    finally:
        pool.close()


def test_client_sees_injected_status_as_the_api_error(proxied: tuple[FaultProxy, bigquery.Client]) -> None:
    proxy, client = proxied
    proxy.add_rule("status", "GET", r"/jobs/[^/]+$", status=503)
    with pytest.raises(api_exceptions.ServiceUnavailable, match="fault injected"):
        client.get_job("whatever", location="US", retry=None)


def _query_job(project: str, job_id: str) -> dict[str, Any]:
    return {
        "jobReference": {"projectId": project, "jobId": job_id, "location": "US"},
        "configuration": {"query": {"query": "SELECT 1 AS one", "useLegacySql": False}},
    }


def test_lost_insert_response_is_adopted_by_the_jobs_api(
    proxied: tuple[FaultProxy, bigquery.Client], jobs_api: JobsApi
) -> None:
    proxy, client = proxied
    proxy.add_rule("drop", "POST", r"/jobs$")
    job_id = f"faultproxy-{time.monotonic_ns()}"
    result = asyncio.run(jobs_api.insert(_query_job(client.project, job_id)))
    assert result.reattached and result.job["jobReference"]["jobId"] == job_id
    assert [(e.upstream_status, e.status) for e in proxy.exchanges("jobs.insert")] == [(200, None), (409, 409)]
    assert asyncio.run(jobs_api.get(client.project, job_id, "US"))["status"]["state"] == "DONE"


def test_truncated_response_is_retried_by_the_jobs_api(
    proxied: tuple[FaultProxy, bigquery.Client], jobs_api: JobsApi
) -> None:
    proxy, client = proxied
    job_id = f"faultproxy-{time.monotonic_ns()}"
    asyncio.run(jobs_api.insert(_query_job(client.project, job_id)))
    proxy.add_rule("truncate", "GET", r"/jobs/[^/]+$")
    job = asyncio.run(jobs_api.get(client.project, job_id, "US"))
    assert job["jobReference"]["jobId"] == job_id
    assert [e.fault for e in proxy.exchanges("jobs.get")] == ["truncate", None]
