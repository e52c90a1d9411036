"""Run ``python -m flytekitplugins.bigquery.service`` as a subprocess, for tests and benchmarks: the core's
SDK-free :class:`flyte_bigquery_core.testing.service_process.ServiceProcess` with flytekit's service module as
its default (its own interpreter, environment and signals; a free loopback port; ready once gRPC health
answers SERVING; ``stop()`` sends SIGTERM, then SIGKILL to its process group)."""

from __future__ import annotations

from flyte_bigquery_core.testing import service_process as _core
from flyte_bigquery_core.testing.service_process import GRPC_OPTIONS

__all__ = ["GRPC_OPTIONS", "ServiceProcess"]


class ServiceProcess(_core.ServiceProcess):
    """One flytekit connector service subprocess (``python -m flytekitplugins.bigquery.service`` unless
    ``module`` says otherwise); a context manager."""

    MODULE = "flytekitplugins.bigquery.service"
