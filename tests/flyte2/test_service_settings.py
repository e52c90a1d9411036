"""The service's settings table: flags win over environment variables, defaults are loopback and metrics off,
and a malformed value is a ``SettingsError`` naming the flag or variable (the launcher exits 2 with it)."""

from __future__ import annotations

from typing import Any

import pytest
from flyte_bigquery_core.errors import SettingsError
from flyteplugins.bigquery._service_settings import (
    GRACE_ENV,
    HOST_ENV,
    PORT_ENV,
    PROMETHEUS_PORT_ENV,
    WORKERS_ENV,
    ServiceSettings,
)


def test_defaults_listen_on_loopback_without_metrics() -> None:
    settings = ServiceSettings.read({}, environ={})
    assert settings == ServiceSettings()
    assert (settings.host, settings.port, settings.prometheus_port) == ("127.0.0.1", 8000, None)
    assert settings.address == "127.0.0.1:8000"


@pytest.mark.parametrize(
    ("flags", "environ", "field", "expected"),
    [
        ({"--port": "9000"}, {PORT_ENV: "9100"}, "port", 9000),
        ({"--port": None}, {PORT_ENV: "9100"}, "port", 9100),
        ({}, {HOST_ENV: "0.0.0.0"}, "host", "0.0.0.0"),
        ({"--host": "[::1]"}, {}, "host", "::1"),
        ({"--host": "localhost"}, {}, "host", "localhost"),
        ({}, {WORKERS_ENV: " 4 "}, "workers", 4),
        ({"--prometheus-port": "0"}, {}, "prometheus_port", 0),
        ({}, {PROMETHEUS_PORT_ENV: "9090"}, "prometheus_port", 9090),
        ({}, {GRACE_ENV: "0.5"}, "grace", 0.5),
        ({"--grace": ""}, {GRACE_ENV: "2"}, "grace", 2.0),
    ],
    ids=lambda v: str(v)[:30],
)
def test_a_flag_wins_then_its_variable_then_the_default(
    flags: dict[str, str | None], environ: dict[str, str], field: str, expected: Any
) -> None:
    assert getattr(ServiceSettings.read(flags, environ=environ), field) == expected


def test_an_ipv6_address_is_bracketed_for_grpc() -> None:
    assert ServiceSettings.read({"--host": "::1", "--port": "0"}, environ={}).address == "[::1]:0"


@pytest.mark.parametrize(
    ("flags", "environ", "message"),
    [
        ({"--port": "65536"}, {}, "--port='65536' is malformed (at most 65535); expected a port number"),
        ({}, {PORT_ENV: "eighty"}, f"{PORT_ENV}='eighty' is malformed; expected a port number"),
        ({"--workers": "0"}, {}, "--workers='0' is malformed (at least 1)"),
        ({}, {PROMETHEUS_PORT_ENV: "-1"}, f"{PROMETHEUS_PORT_ENV}='-1' is malformed"),
        ({"--grace": "inf"}, {}, "--grace='inf' is malformed (a finite number)"),
        ({"--host": "http://x"}, {}, "--host='http://x' is malformed; expected an IP address or a host name"),
    ],
    ids=["port-range", "port-env", "workers", "prometheus", "grace", "host"],
)
def test_a_malformed_value_names_the_flag_or_variable(
    flags: dict[str, str | None], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as info:
        ServiceSettings.read(flags, environ=environ)
    assert str(info.value).startswith(message)
