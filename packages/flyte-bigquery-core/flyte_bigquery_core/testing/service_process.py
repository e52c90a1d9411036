"""Run a connector service (``python -m <module>``: flytekit's ``flytekitplugins.bigquery.service`` or Flyte 2's
``flyteplugins.bigquery.service``) as a subprocess, for tests and benchmarks. Free of any Flyte SDK: it needs
grpcio and grpcio-health-checking only.

The service is started exactly as an operator would start it (its own interpreter, environment and
signals), on a free loopback port (``--port 0``; the port is read from its INFO start line), and is
ready once the standard gRPC health check answers SERVING. ``stop()`` sends SIGTERM (the graceful path),
then SIGKILL to its process group if it does not stop in time, so nothing is left running.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import grpc

from flyte_bigquery_core.testing._lifecycle import Harness

__all__ = ["GRPC_OPTIONS", "ServiceProcess"]

_LISTENING = re.compile(r"connector service listening on (\S+):(\d+)")
#: No HTTP proxy between a client and a loopback service, whatever the environment says.
GRPC_OPTIONS = (("grpc.enable_http_proxy", 0),)


class ServiceProcess(Harness):
    """One connector service subprocess (``python -m module``); a context manager. The module must accept
    ``--host``/``--port``, log ``connector service listening on HOST:PORT`` when serving, and serve gRPC health.
    ``module`` is required unless a subclass names its service in :attr:`MODULE`."""

    #: The service module a subclass runs when no ``module`` is given.
    MODULE: ClassVar[str | None] = None
    #: The log line that says where it serves (``HOST``, ``PORT``); a subclass running another server sets its own.
    LISTENING: ClassVar[re.Pattern[str]] = _LISTENING

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        workers: int | None = None,
        args: Sequence[str] = (),
        startup_timeout: float = 60.0,
        module: str | None = None,
    ) -> None:
        module = module or self.MODULE
        if not module:
            raise TypeError("ServiceProcess needs the service module to run (module=...)")
        self._module = module
        self._env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self._args = list(args) + (["--workers", str(workers)] if workers else [])
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_dir: tempfile.TemporaryDirectory[str] | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.returncode: int | None = None

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    @property
    def log_path(self) -> Path:
        assert self._log_dir is not None, "not started"
        return Path(self._log_dir.name) / "service.log"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, AssertionError):
            return ""

    def start(self) -> ServiceProcess:
        self._log_dir = tempfile.TemporaryDirectory(prefix="bq-service-")
        command = [sys.executable, "-m", self._module, "--host", "127.0.0.1", "--port", "0"]
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                command + self._args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                start_new_session=True,
            )
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_serving(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self._startup_timeout
        while not self.port:
            if self._proc.poll() is not None:
                raise RuntimeError(f"the service exited with {self._proc.returncode}:\n{self.log_text()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start in {self._startup_timeout}s:\n{self.log_text()[-4000:]}")
            match = self.LISTENING.search(self.log_text())
            if match:
                self.host, self.port = match.group(1), int(match.group(2))
            else:
                time.sleep(0.05)
        self._wait_until_healthy(deadline)

    def _wait_until_healthy(self, deadline: float) -> None:
        """Until the standard gRPC health check answers SERVING (a subclass running another server overrides)."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(self.target, options=GRPC_OPTIONS) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the service is not SERVING after {self._startup_timeout}s")
                time.sleep(0.05)

    def wait(self, timeout: float = 15.0) -> int:
        """Wait for the process to end on its own (say, after a signal sent by the test); its exit code.
        Raises ``subprocess.TimeoutExpired`` if it is still running after ``timeout`` seconds."""
        assert self._proc is not None, "not started"
        self.returncode = self._proc.wait(timeout)
        return self.returncode

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL the group. Returns the exit code. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            self.returncode = proc.returncode
        return self.returncode

    def cleanup(self) -> None:
        """Stop, and delete the log directory."""
        self.stop()
        if self._log_dir is not None:
            self._log_dir.cleanup()
            self._log_dir = None
