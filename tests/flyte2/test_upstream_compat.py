"""Compatibility both ways with upstream's ``flyteplugins-bigquery`` 2.12.1, from the recorded fixtures
(``fixtures/README.md``): templates upstream registers run on our connector, and the templates we write today are
the ones upstream's connector ran successfully."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flyteidl2.core.execution_pb2 import TaskExecution
from flyteidl2.core.tasks_pb2 import TaskTemplate
from flyteplugins.bigquery import BigQueryConnector, BigQueryMetadata
from google.cloud import bigquery
from google.protobuf import json_format

from .fixtures.serialize import serialized
from .helpers import create, execution_metadata, job_of, new_execution, rows_of, wait

FIXTURES = Path(__file__).with_name("fixtures")
UPSTREAM = json.loads((FIXTURES / "upstream.json").read_text())
OURS = json.loads((FIXTURES / "ours.json").read_text())
UPSTREAM_RAN_OURS = json.loads((FIXTURES / "upstream_ran_ours.json").read_text())

# What each reference task's result holds (from its inputs in reference_tasks.py).
EXPECTED_ROWS: dict[str, list[dict[str, Any]] | None] = {
    "scalar_inputs": [{"i": 42, "s": "hi!", "f": 2.5, "b": True}],
    "job_config_and_secret": None,  # declares no output
}


def _template(entry: dict[str, Any]) -> TaskTemplate:
    return json_format.ParseDict(entry["template"], TaskTemplate())


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_a_template_upstream_registered_runs_on_our_connector(
    emulator: Any, bq_client: bigquery.Client, name: str
) -> None:
    connector = BigQueryConnector()
    entry = UPSTREAM[name]
    meta = create(connector, _template(entry), execution_metadata(new_execution(), task=name), **entry["inputs"])
    resource = wait(connector, meta)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    if EXPECTED_ROWS.get(name, []) is None:
        assert resource.outputs is None  # upstream returns outputs a task never declared; we do not
    elif name in EXPECTED_ROWS:
        assert rows_of(bq_client, resource.outputs["results"].uri) == EXPECTED_ROWS[name]


def test_upstreams_job_configuration_is_honoured_and_its_secret_is_not_sent(
    emulator: Any, bq_client: bigquery.Client
) -> None:
    connector = BigQueryConnector()
    entry = UPSTREAM["job_config_and_secret"]
    meta = create(connector, _template(entry), execution_metadata(new_execution()), **entry["inputs"])
    configuration = job_of(bq_client, meta)._properties["configuration"]
    assert configuration["query"]["priority"] == "BATCH" and configuration["query"]["useQueryCache"] is False
    assert "secrets" not in json.dumps(configuration) and "BQ_SERVICE_ACCOUNT" not in json.dumps(configuration)


# The parts of a template a connector reads (metadata holds the SDK's version and cache keys, which may move).
_READ_BY_CONNECTORS = ("type", "custom", "sql", "interface")


@pytest.mark.parametrize("name", sorted(OURS))
def test_the_templates_we_write_today_are_the_ones_upstream_ran(name: str) -> None:
    today = serialized()[name]
    assert {k: today["template"].get(k) for k in _READ_BY_CONNECTORS} == {
        k: OURS[name]["template"].get(k) for k in _READ_BY_CONNECTORS
    }


@pytest.mark.parametrize("name", sorted(OURS))
def test_upstreams_connector_ran_our_templates_as_written(name: str) -> None:
    ran = UPSTREAM_RAN_OURS[name]
    assert ran["phase"] == "SUCCEEDED", ran["message"]
    assert ran["query"] == OURS[name]["template"]["sql"]["statement"]
    sent = {p["name"]: p["parameterValue"]["value"] for p in ran["queryParameters"]}
    assert sent == {k: json.dumps(v) if isinstance(v, bool) else str(v) for k, v in OURS[name]["inputs"].items()}


def test_metadata_upstreams_connector_wrote_decodes() -> None:
    meta = BigQueryMetadata.decode(
        b'{"job_id": "abc", "project": "p", "location": null, "user_agent": "Flyte/2.12.1 (GPN:Union;development)"}'
    )
    assert (meta.job_id, meta.project, meta.location, meta.output_name) == ("abc", "p", "", None)
