"""What both connectors share: refusals recorded in the handle and reported without any BigQuery call (so
without credentials), and one phase name per outcome."""

from __future__ import annotations

import asyncio
from typing import Any

from flyte_bigquery_core.connector_core import PHASE_NAMES, ConnectorCore
from flyte_bigquery_core.handle import JobHandle
from flyte_bigquery_core.identity import ExecutionIdentity
from flyte_bigquery_core.planning import QueryTask
from flyte_bigquery_core.settings import Settings
from flyte_bigquery_core.status import Outcome

LOCAL = ExecutionIdentity("", "", "", "", "t", 0)
#: No emulator: a call to BigQuery would need Application Default Credentials, which tests do not have.
REAL_BIGQUERY = Settings.from_env({})


async def _values(values: dict[str, Any]) -> dict[str, Any]:
    return values


def test_every_outcome_has_a_flyte_phase_name() -> None:
    assert set(PHASE_NAMES) == set(Outcome)
    assert (PHASE_NAMES[Outcome.RETRYABLE_FAILURE], PHASE_NAMES[Outcome.ABORTED]) == ("RETRYABLE_FAILED", "ABORTED")


def test_a_refused_task_is_recorded_and_reported_without_calling_bigquery() -> None:
    core = ConnectorCore(JobHandle, REAL_BIGQUERY)
    task = QueryTask("t", {"ProjectID": "p", "InputTypes": {"n": "INT64"}}, "SELECT @n", output_name="results")
    handle = asyncio.run(core.create(task, _values({"n": "seven"}), LOCAL))
    assert (handle.job_id, handle.project, handle.output_name) == ("", "p", "results")
    assert handle.error is not None and "'t'" in handle.error and "input 'n'" in handle.error
    observation = asyncio.run(core.observe(handle))
    assert observation.outcome is Outcome.PERMANENT_FAILURE and observation.message == handle.error
    assert asyncio.run(core.metrics(handle)) == []
    assert asyncio.run(core.log_lines(handle)) == [f"refused before submission: {handle.error}"]
    asyncio.run(core.cancel(handle))  # nothing to cancel
