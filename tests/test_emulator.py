"""The emulator harness itself: it starts, answers the real client, stays on loopback, cleans up.

These tests guard the test infrastructure: if the harness silently pointed at the wrong server, listened
on all interfaces, or leaked processes, every other integration test would be suspect.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from flyte_bigquery_core.testing.emulator import ENV_BINARY, ENV_REST_HOST, ENV_STORAGE_HOST
from flyte_bigquery_core.testing.sockets import listening_addresses, listening_ports, unmapped
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from flytekitplugins.bigquery.testing import DEMO_ROWS, Emulator, EmulatorError, find_binary

from .helpers import group_pids

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="inspects sockets via Linux /proc")

CLI = [sys.executable, "-m", "flyte_bigquery_core.testing.emulator"]


# --- helpers ----------------------------------------------------------------------------------------


def _port(url_or_target: str) -> int:
    return int(url_or_target.rsplit(":", 1)[1])


# --- the session emulator ---------------------------------------------------------------------------


def test_answers_a_query_through_the_real_client(bq_client: bigquery.Client) -> None:
    expected: dict[str, int] = collections.Counter()
    for row in DEMO_ROWS:
        expected[row["package"]] += row["downloads"]

    rows = bq_client.query(
        "SELECT package, SUM(downloads) AS total, COUNT(*) AS n FROM samples.daily_downloads "
        "GROUP BY package ORDER BY package"
    ).result()

    got = {row["package"]: (row["total"], row["n"]) for row in rows}
    assert got == {package: (total, 10) for package, total in sorted(expected.items())}


def test_demo_table_has_the_documented_schema(bq_client: bigquery.Client, emulator: Emulator) -> None:
    table = bq_client.get_table(f"{emulator.project}.samples.daily_downloads")
    assert [(field.name, field.field_type) for field in table.schema] == [
        ("package", "STRING"),
        ("version", "STRING"),
        ("downloads", "INTEGER"),
        ("day", "DATE"),
    ]
    assert table.num_rows == len(DEMO_ROWS) == 30


def test_environment_points_a_plain_client_at_the_emulator(emulator: Emulator) -> None:
    assert os.environ[ENV_REST_HOST] == emulator.rest_url
    assert os.environ[ENV_STORAGE_HOST] == emulator.grpc_target
    assert os.environ["GOOGLE_CLOUD_PROJECT"] == emulator.project
    # No api_endpoint: google-cloud-bigquery must pick the emulator up from BIGQUERY_EMULATOR_HOST.
    client = bigquery.Client(project=emulator.project, credentials=AnonymousCredentials())
    try:
        assert [tuple(row.values()) for row in client.query("SELECT 1 + 1 AS two").result()] == [(2,)]
    finally:
        client.close()


@pytest.mark.filterwarnings("ignore:Retrieving Arrow record batches directly:PendingDeprecationWarning")
def test_storage_read_api_serves_query_results(bq_client: bigquery.Client, emulator: Emulator) -> None:
    read_client = emulator.read_client()
    table = bq_client.query("SELECT * FROM samples.daily_downloads").to_arrow(bqstorage_client=read_client)
    assert table.num_rows == len(DEMO_ROWS)
    assert table.column_names == ["package", "version", "downloads", "day"]


def test_listens_on_loopback_only(emulator: Emulator) -> None:
    sockets = {(unmapped(address), port) for address, port in listening_addresses(emulator.pid)}
    assert {port for _, port in sockets} == {_port(emulator.rest_url), _port(emulator.grpc_target)}
    assert {address for address, _ in sockets} == {"127.0.0.1"}, sockets


# --- failures and cleanup (own emulators) -----------------------------------------------------------


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such" / "local-bigquery"
    with pytest.raises(EmulatorError, match=r"does not exist.*make emulator-venv"):
        Emulator(binary=str(missing)).start()


def test_bad_binary_from_the_environment_is_not_silently_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_executable = tmp_path / "local-bigquery"
    not_executable.write_text("#!/bin/sh\n")
    monkeypatch.setenv(ENV_BINARY, str(not_executable))
    with pytest.raises(EmulatorError, match=rf"\${ENV_BINARY}.*is not an executable file"):
        find_binary()


def test_a_crashing_server_reports_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "local-bigquery"
    fake.write_text("#!/bin/sh\necho 'boom: no database for you' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(EmulatorError, match=r"(?s)exited with code 3.*boom: no database for you"):
        Emulator(binary=str(fake)).start()


@pytest.mark.integration  # starts its own emulator
def test_stop_leaves_no_process_port_or_data_behind() -> None:
    emulator = Emulator().start()
    pid, data = emulator.pid, emulator.log_path.parent
    ports = {_port(emulator.rest_url), _port(emulator.grpc_target)}
    assert data.is_dir()

    emulator.stop()
    emulator.stop()  # idempotent

    assert not emulator.running
    assert not Path(f"/proc/{pid}").exists()
    assert group_pids(pid) == []
    assert not listening_ports() & ports
    assert not data.exists()
    with pytest.raises(EmulatorError, match="not running"):
        _ = emulator.rest_url


# --- command line -----------------------------------------------------------------------------------

_CHILD = """
import os, sys
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
client = bigquery.Client(credentials=AnonymousCredentials())  # project from GOOGLE_CLOUD_PROJECT
count = list(client.query("SELECT COUNT(*) FROM samples.daily_downloads").result())[0][0]
print(os.environ["BIGQUERY_EMULATOR_HOST"], os.environ["FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST"], count)
sys.exit(7)
"""


@pytest.mark.integration  # starts its own emulator
def test_cli_run_seeds_runs_the_command_and_returns_its_exit_code() -> None:
    done = subprocess.run(
        [*CLI, "run", "--seed", "demo", "--", sys.executable, "-c", _CHILD],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 7, done.stderr
    rest_url, grpc_target, count = done.stdout.split()
    assert count == "30"
    assert rest_url.startswith("http://127.0.0.1:")
    assert grpc_target.startswith("127.0.0.1:")
    assert not listening_ports() & {_port(rest_url), _port(grpc_target)}


@pytest.mark.integration  # starts its own emulator
@pytest.mark.parametrize(
    ("send", "expected_code"),
    [
        # SIGTERM to the wrapper only: passed on to the command, which dies of it.
        (lambda proc: proc.send_signal(signal.SIGTERM), 128 + signal.SIGTERM),
        # Ctrl-C in a terminal: SIGINT to the whole foreground process group.
        (lambda proc: os.killpg(proc.pid, signal.SIGINT), 128 + signal.SIGINT),
    ],
    ids=["sigterm", "ctrl-c"],
)
def test_cli_run_cleans_up_when_interrupted(send: Callable[[subprocess.Popen[str]], None], expected_code: int) -> None:
    proc = subprocess.Popen(
        [*CLI, "run", "--", "sh", "-c", 'echo "$BIGQUERY_EMULATOR_HOST"; exec sleep 60'],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, standing in for a terminal's foreground group
    )
    try:
        assert proc.stdout is not None
        rest_url = proc.stdout.readline().strip()
        assert rest_url.startswith("http://127.0.0.1:"), rest_url
        send(proc)
        assert proc.wait(timeout=30) == expected_code
        assert _port(rest_url) not in listening_ports()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
