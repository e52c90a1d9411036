#!/bin/sh
# The connector image's entrypoint: the BigQuery connector service (flytekit's connector servicers and the
# gRPC health service), bound to ONE address, in the foreground as PID 1 (exec), so SIGTERM reaches the
# launcher, which turns health NOT_SERVING, drains calls in flight for --grace seconds and exits 0.
#
# Address: $CONNECTOR_HOST if set, else $POD_IP (give it from the Downward API, status.podIP), else 0.0.0.0.
# The launcher's own default is loopback, which nothing outside the pod can reach: Flyte's propeller calls
# the connector through a Service, i.e. on the pod IP, and the kubelet's gRPC probe dials the pod IP too.
# Binding $POD_IP serves exactly that address; 0.0.0.0 (the fallback, for `docker run -p`) is the pod's or
# container's own interfaces only -- but on a hostNetwork pod it would be every interface of the node, so
# set POD_IP there.
#
# Port: $CONNECTOR_PORT (default 8000). Prometheus metrics: only when $CONNECTOR_PROMETHEUS_PORT is set, on
# the same address. Arguments given to the container are appended (the launcher's last --host/--port win).
set -eu
host="${CONNECTOR_HOST:-${POD_IP:-0.0.0.0}}"
port="${CONNECTOR_PORT:-8000}"
if [ -n "${CONNECTOR_PROMETHEUS_PORT:-}" ]; then
    set -- --prometheus-port "$CONNECTOR_PROMETHEUS_PORT" "$@"
fi
exec python -m flytekitplugins.bigquery.service --host "$host" --port "$port" "$@"
