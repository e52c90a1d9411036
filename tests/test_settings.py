"""Settings: every environment variable parsed once, a malformed one refused at start-up naming the variable."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from typing import Any

import pytest
from flyte_bigquery_core.clients import ClientPool
from flyte_bigquery_core.errors import PermanentError, SettingsError
from flyte_bigquery_core.settings import VARIABLES, Settings, current_settings, reload_settings
from flyteidl.core.execution_pb2 import TaskExecution
from google.cloud import bigquery

from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask
from flytekitplugins.bigquery.connector import BigQueryConnector

from .helpers import literals_of, run, template_of

P = "FLYTEKITPLUGINS_BIGQUERY_"


def test_every_settings_field_has_one_row_in_the_table() -> None:
    assert sorted(v.field for v in VARIABLES) == sorted(f.name for f in dataclasses.fields(Settings))


def test_an_empty_environment_gives_the_documented_defaults() -> None:
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize(
    ("env", "field", "expected"),
    [
        ({P + "MAX_WORKERS": "8"}, "max_workers", 8),
        ({P + "MAX_WORKERS": " 12 "}, "max_workers", 12),
        ({P + "MAX_WORKERS": "   "}, "max_workers", 64),  # blank is unset
        ({P + "RETRY_SECONDS": "2.5"}, "retry_seconds", 2.5),
        ({P + "RETRY_SECONDS": "0"}, "retry_seconds", 0.0),
        (
            {P + "DEFAULT_LABELS": "team=platform, cost_center=42"},
            "default_labels",
            {"team": "platform", "cost_center": "42"},
        ),
        ({P + "DEFAULT_LABELS": "Team=Data Eng"}, "default_labels", {"team": "data_eng"}),
        ({P + "DEFAULT_LABELS": "Équipe=Zürich"}, "default_labels", {"équipe": "zürich"}),
        ({P + "DEFAULT_LABELS": "a=1,,b=,"}, "default_labels", {"a": "1", "b": ""}),
        ({P + "ESTIMATE": "true"}, "estimate", True),
        ({P + "ESTIMATE": "YES"}, "estimate", True),
        ({P + "ESTIMATE": "1"}, "estimate", True),
        ({P + "ESTIMATE": "off"}, "estimate", False),
        ({P + "ESTIMATE": "False"}, "estimate", False),
        ({P + "MAXIMUM_BYTES": "10 GiB"}, "maximum_bytes", 10 * 2**30),
        ({P + "MAXIMUM_BYTES": "9007199254740993"}, "maximum_bytes", 2**53 + 1),
        ({P + "PRICE_PER_TIB": "6.25"}, "price_per_tib", 6.25),
        ({P + "RESULTS_DATASET": "results"}, "results_dataset", "results"),
        ({P + "RESULTS_DATASET": "proj.results"}, "results_dataset", "proj.results"),
        ({P + "RESULTS_EXPIRATION_DAYS": "2.5"}, "results_expiration_days", 2.5),
        ({P + "BILLING_PROJECT": "billing"}, "billing_project", "billing"),
        ({P + "READ_STREAMS": "4"}, "read_streams", 4),
        ({P + "WRITE_DISPOSITION": "write_truncate"}, "write_disposition", "WRITE_TRUNCATE"),
        ({P + "WRITE_DISPOSITION": "WRITE_EMPTY"}, "write_disposition", "WRITE_EMPTY"),
        ({"BIGQUERY_EMULATOR_HOST": "http://127.0.0.1:9050"}, "emulator_host", "http://127.0.0.1:9050"),
        ({P + "STORAGE_EMULATOR_HOST": "127.0.0.1:9060"}, "storage_emulator_host", "127.0.0.1:9060"),
        ({"GOOGLE_CLOUD_PROJECT": "mine"}, "google_cloud_project", "mine"),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "proxy_configured", True),
        ({"all_proxy": "socks5://proxy:1080"}, "proxy_configured", True),
        ({"NO_PROXY": "localhost"}, "proxy_configured", False),
        ({"CURL_CA_BUNDLE": "/etc/curl.pem"}, "ca_bundle", "/etc/curl.pem"),
        ({"REQUESTS_CA_BUNDLE": "/etc/req.pem", "CURL_CA_BUNDLE": "/etc/curl.pem"}, "ca_bundle", "/etc/req.pem"),
        ({P + "IAM_ENDPOINT": "http://127.0.0.1:9070"}, "iam_endpoint", "http://127.0.0.1:9070"),
        ({P + "RESERVATION": "NONE"}, "default_reservation", "none"),
        ({P + "RESERVATIONS": '{"a/*": "none"}'}, "reservation_defaults", {"a/*": "none"}),
        ({P + "MAX_INFLIGHT_PER_PROJECT": "8"}, "max_inflight_per_project", 8),
        ({P + "MAX_INFLIGHT_PER_PROJECT": "0"}, "max_inflight_per_project", 0),
    ],
)
def test_each_variable_is_parsed_into_its_field(env: dict[str, str], field: str, expected: Any) -> None:
    assert getattr(Settings.from_env(env), field) == expected


def _refusal(env: dict[str, str]) -> str:
    """The message of the :class:`SettingsError` that reading ``env`` raises."""
    with pytest.raises(SettingsError) as e:
        Settings.from_env(env)
    return str(e.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        (P + "MAX_WORKERS", "lots"),
        (P + "MAX_WORKERS", "0"),
        (P + "MAX_WORKERS", "1.5"),
        (P + "MAX_WORKERS", "1e3"),
        (P + "RETRY_SECONDS", "soon"),
        (P + "RETRY_SECONDS", "-1"),
        (P + "RETRY_SECONDS", "nan"),
        (P + "RETRY_SECONDS", "inf"),
        (P + "DEFAULT_LABELS", "team"),
        (P + "DEFAULT_LABELS", "=x"),
        (P + "DEFAULT_LABELS", "a=1,a=2"),
        (P + "DEFAULT_LABELS", "Team=a,team=b"),
        (P + "ESTIMATE", "maybe"),
        (P + "ESTIMATE", "ture"),
        (P + "MAXIMUM_BYTES", "ten"),
        (P + "MAXIMUM_BYTES", "-1"),
        (P + "MAXIMUM_BYTES", "10 GB please"),
        (P + "PRICE_PER_TIB", "$5"),
        (P + "PRICE_PER_TIB", "-1"),
        (P + "PRICE_PER_TIB", "inf"),
        (P + "RESULTS_DATASET", "a.b.c"),
        (P + "RESULTS_DATASET", ".x"),
        (P + "RESULTS_DATASET", "my dataset"),
        (P + "RESULTS_EXPIRATION_DAYS", "week"),
        (P + "RESULTS_EXPIRATION_DAYS", "0"),
        (P + "RESULTS_EXPIRATION_DAYS", "0.01"),  # under an hour: BigQuery refuses it
        (P + "READ_STREAMS", "many"),
        (P + "READ_STREAMS", "0"),
        (P + "WRITE_DISPOSITION", "OVERWRITE"),
        ("BIGQUERY_EMULATOR_HOST", "127.0.0.1:9050"),
        ("BIGQUERY_EMULATOR_HOST", "ftp://127.0.0.1"),
        (P + "STORAGE_EMULATOR_HOST", "localhost"),
        (P + "STORAGE_EMULATOR_HOST", "localhost:grpc"),
        (P + "STORAGE_EMULATOR_HOST", "localhost:70000"),
        (P + "IMPERSONATION_RULES", "{"),
        (P + "IMPERSONATION_RULES", "/no/such/rules.json"),
        (P + "IAM_ENDPOINT", "iamcredentials.googleapis.com"),
        (P + "RESERVATION", "prod"),
        (P + "RESERVATIONS", "[]"),
        (P + "MAX_INFLIGHT_PER_PROJECT", "-1"),
        (P + "MAX_INFLIGHT_PER_PROJECT", "some"),
    ],
)
def test_a_malformed_value_is_one_line_naming_the_variable_and_what_it_expects(variable: str, value: str) -> None:
    message = _refusal({variable: value})
    assert message.startswith(variable)
    assert "expected" in message
    assert "\n" not in message


@pytest.mark.parametrize(("variable", "value"), [(P + "MAX_WORKERS", "lots"), (P + "PRICE_PER_TIB", "$5")])
def test_a_malformed_number_is_quoted(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"{variable}={value!r}".replace("$", r"\$")):
        Settings.from_env({variable: value})


@pytest.mark.parametrize(
    "env",
    [
        {"BIGQUERY_EMULATOR_HOST": "ya29.s3cr3t-t0ken"},
        {P + "DEFAULT_LABELS": "password: hunter2"},
        {P + "STORAGE_EMULATOR_HOST": "hunter2"},
        {P + "RESULTS_DATASET": "hunter2 x"},
    ],
)
def test_a_malformed_text_value_is_not_echoed(env: dict[str, str]) -> None:
    message = _refusal(env)
    assert "hunter2" not in message and "s3cr3t" not in message


def test_default_labels_that_collide_name_the_variable_and_both_keys() -> None:
    message = _refusal({P + "DEFAULT_LABELS": "Cost Center=1,cost_center=2"})
    assert message.startswith(P + "DEFAULT_LABELS")
    assert "'Cost Center'" in message and "'cost_center'" in message


def test_a_settings_error_is_the_operators_not_a_users_permanent_failure() -> None:
    assert not issubclass(SettingsError, PermanentError)


def test_the_process_settings_are_read_once_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(P + "READ_STREAMS", "3")
    first = current_settings()
    monkeypatch.setenv(P + "READ_STREAMS", "5")
    assert current_settings() is first
    assert reload_settings().read_streams == 5


def test_malformed_process_settings_raise_on_every_read_until_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(P + "READ_STREAMS", "many")
    for _ in range(2):
        with pytest.raises(SettingsError, match=P + "READ_STREAMS"):
            current_settings()
    monkeypatch.setenv(P + "READ_STREAMS", "2")
    assert current_settings().read_streams == 2


def test_a_malformed_max_workers_is_a_settings_error_when_the_pool_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(P + "MAX_WORKERS", "lots")
    with pytest.raises(SettingsError, match=P + "MAX_WORKERS"):
        ClientPool()


def test_the_connector_refuses_to_be_made_with_a_malformed_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(P + "PRICE_PER_TIB", "cheap")
    with pytest.raises(SettingsError, match=P + "PRICE_PER_TIB"):
        BigQueryConnector()


def _task(emulator: Any) -> BigQueryTask:
    return BigQueryTask(
        name="configured", query_template="SELECT 1", task_config=BigQueryConfig(emulator.project, "US")
    )


def test_a_malformed_operator_setting_is_never_reported_as_a_task_failure(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = BigQueryConnector()  # the process's settings, valid when it was made
    monkeypatch.setenv(P + "MAXIMUM_BYTES", "a lot")
    current_settings.cache_clear()
    task = _task(emulator)
    # Before: an InvalidTaskError, i.e. create returned metadata whose get said FAILED: the user's fault.
    with pytest.raises(SettingsError, match=P + "MAXIMUM_BYTES"):
        asyncio.run(connector.create(template_of(task), literals_of(task)))


def test_the_connectors_own_settings_reach_the_job(emulator: Any, bq_client: bigquery.Client) -> None:
    settings = dataclasses.replace(
        Settings.from_env(), default_labels={"team": "platform"}, maximum_bytes=5 * 2**30, estimate=True
    )
    meta, resource = run(BigQueryConnector(settings), _task(emulator))
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    assert meta.estimated_bytes == 0  # the dry run was taken
    job = bq_client.get_job(meta.job_id, location="US")
    assert job.labels["team"] == "platform"
    assert job._properties["configuration"]["query"]["maximumBytesBilled"] == str(5 * 2**30)


def _start(*command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *command], env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


def _environment(**changes: str) -> dict[str, str]:
    return {**os.environ, **changes}


def test_the_service_refuses_to_start_with_a_malformed_setting() -> None:
    done = _start(
        "-m", "flytekitplugins.bigquery.service", "--port", "0", env=_environment(**{P + "RETRY_SECONDS": "soon"})
    )
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert f"{P}RETRY_SECONDS='soon' is malformed; expected a number of seconds" in lines[0]
    assert "listening" not in done.stderr


def test_importing_the_plugin_with_a_malformed_setting_stops_at_start_up() -> None:
    """What ``pyflyte serve connector`` does first: import flytekit, which loads the plugin."""
    done = _start("-c", "import flytekit", env=_environment(**{P + "WRITE_DISPOSITION": "OVERWRITE"}))
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"{P}WRITE_DISPOSITION='OVERWRITE' is malformed" in done.stderr
    assert "Traceback" not in done.stderr
