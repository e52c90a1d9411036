#!/opt/connector/bin/python
"""gRPC health check of the connector service, for the image's HEALTHCHECK and for smoke tests.

Asks the standard ``grpc.health.v1.Health/Check`` (overall status, service name ``""``, unless one is given)
and exits 0 when the answer is SERVING, 1 otherwise (NOT_SERVING while draining after SIGTERM, no answer,
refused connection), printing one line. The address is the one the entrypoint binds: ``$CONNECTOR_HOST``,
else ``$POD_IP``, else loopback (which reaches a server bound to 0.0.0.0), and ``$CONNECTOR_PORT`` (8000).

    connector-healthcheck [--target HOST:PORT] [--service NAME] [--timeout SECONDS]

Kubernetes does not run a Dockerfile's HEALTHCHECK: use its native gRPC probe there (see the README,
"Deploying the connector").
"""

from __future__ import annotations

import argparse
import os
import sys


def default_target() -> str:
    host = os.environ.get("CONNECTOR_HOST") or os.environ.get("POD_IP") or "127.0.0.1"
    if host in ("0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    port = os.environ.get("CONNECTOR_PORT") or "8000"
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="connector-healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=None, help="HOST:PORT (default: the entrypoint's address)")
    parser.add_argument("--service", default="", help="service name to ask about (default: the server overall)")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    target = args.target or default_target()

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
        except grpc.RpcError as e:
            print(f"{target}: {e.code().name}: {e.details()}")
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    print(f"{target}: {status}")
    return 0 if response.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
