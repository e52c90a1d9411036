"""The GCS stand-in process: :class:`GcsEmulator` starts ``gcp-storage-emulator`` (through
:mod:`.gcs_server`) on a free loopback port, waits until it answers, makes buckets, says how clients reach it,
and stops it.

The local BigQuery reaches it through its own ``STORAGE_EMULATOR_HOST`` (:class:`~._emulator_process.Emulator`
takes :attr:`GcsEmulator.url`); flytekit's ``gs://`` access (gcsfs) through the variables of :meth:`env`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from flyte_bigquery_core.testing._emulator_env import HOST, _free_ports
from flyte_bigquery_core.testing._emulator_errors import EmulatorError
from flyte_bigquery_core.testing._lifecycle import Harness

__all__ = ["GCS_CLIENT_ENV", "GcsEmulator"]

#: What a client process needs besides ``STORAGE_EMULATOR_HOST``: gcsfs's experimental bucket-type probe
#: (a gRPC call the stand-in cannot answer, retried for a minute per bucket) off, and no probe of the GCE
#: metadata server while gcsfs looks for credentials (it then connects anonymously).
GCS_CLIENT_ENV = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false", "NO_GCE_CHECK": "true"}


class GcsEmulator(Harness):
    """One in-memory GCS stand-in on a free loopback port; a context manager. ``stop`` is idempotent."""

    def __init__(self, *, startup_timeout: float = 30.0, python: str = sys.executable) -> None:
        self._startup_timeout = startup_timeout
        self._python = python
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: tempfile.TemporaryDirectory[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, as ``STORAGE_EMULATOR_HOST`` wants it."""
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        """Process id of the server (also its process group id)."""
        if self._proc is None:
            raise EmulatorError("the GCS emulator is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def env(self) -> dict[str, str]:
        """The variables that point gcsfs (flytekit's ``gs://``) and google-cloud-storage at this stand-in."""
        return {"STORAGE_EMULATOR_HOST": self.url, **GCS_CLIENT_ENV}

    def log_text(self) -> str:
        with contextlib.suppress(OSError, TypeError):
            return (Path(self._log.name) / "gcs.log").read_text(errors="replace") if self._log else ""
        return ""

    def start(self) -> GcsEmulator:
        if self._proc is not None:
            raise EmulatorError("this GcsEmulator is already running")
        self._log = tempfile.TemporaryDirectory(prefix="gcs-emulator-")
        (self.port,) = _free_ports(1)
        command = [
            self._python,
            "-m",
            "flyte_bigquery_core.testing.gcs_server",
            "--host",
            HOST,
            "--port",
            str(self.port),
        ]
        with open(Path(self._log.name) / "gcs.log", "wb") as log:
            self._proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        atexit.register(self.stop)
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_serving(self) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + self._startup_timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise EmulatorError(f"the GCS emulator exited with {self._proc.returncode}:\n{self.log_text()[-3000:]}")
            with contextlib.suppress(urllib.error.URLError, OSError), opener.open(f"{self.url}/", timeout=2) as reply:
                if reply.status == 200:
                    return
            if time.monotonic() > deadline:
                raise EmulatorError(f"the GCS emulator did not answer in {self._startup_timeout:.0f}s")
            time.sleep(0.05)

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (one that exists already is fine)."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(
            f"{self.url}/storage/v1/b?project=local-project",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            opener.open(request, timeout=10).close()
        except urllib.error.HTTPError as error:
            if error.code != 409:
                raise EmulatorError(f"the GCS emulator refused bucket {name!r}: HTTP {error.code}") from None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        atexit.unregister(self.stop)

    def cleanup(self) -> None:
        self.stop()
        if self._log is not None:
            self._log.cleanup()
            self._log = None
