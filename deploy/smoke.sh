#!/usr/bin/env bash
# Smoke test of the connector image (`make image-smoke`): gRPC health, then one task against the local BigQuery.
#
#   deploy/smoke.sh [auto|image|venv]          (or SMOKE_MODE=...; default auto)
#
# image  Build deploy/Dockerfile with buildah (chroot isolation), run it with podman (host network, the
#        service told to bind 127.0.0.1 through CONNECTOR_HOST, so nothing is exposed; a read-only root
#        filesystem with podman's tmpfs on /tmp, as in the README's Kubernetes example), check health from
#        outside and with the image's own HEALTHCHECK, run one task, stop it with SIGTERM (must exit 0).
#        The base image is $SMOKE_BASE_IMAGE if set, else the Dockerfile's pinned one if it can be pulled,
#        else a Debian bookworm minbase root filesystem made by debootstrap (root only) and imported.
# venv   No container builder: what the image does, without the container. As an unprivileged user (uid
#        65534 when run as root), in a fresh venv of Debian's python3.11: `pip install --no-deps -r
#        deploy/requirements.txt`, our wheels built from a copy of the sources by the pinned setuptools,
#        `pip check`; then deploy/entrypoint.sh -- the image's ENTRYPOINT, same command line -- with the
#        image's environment (CONNECTOR_HOST=127.0.0.1) from outside the source tree, deploy/healthcheck.py
#        (the image's HEALTHCHECK), one task, SIGTERM.
# auto   image when buildah and podman are installed and can run a container here, else venv.
#
# Both run inside `python -m flyte_bigquery_core.testing.emulator run --seed demo` (a seeded local BigQuery on
# loopback) and drive the service with deploy/smoke_client.py from the project's .venv. Needs `make venv
# emulator-venv` (the Makefile target does it), network to PyPI (and to Debian for the image mode). Takes
# 3-6 minutes the first time (image layers and pip downloads), so it is not part of `make test`.
#
# Knobs: SMOKE_PYTHON (venv mode's interpreter, default /usr/bin/python3.11, as in the image), SMOKE_IMAGE (tag),
# SMOKE_BASE_IMAGE, SMOKE_PIP_CA (a CA bundle for pip behind a TLS-intercepting proxy; default: pip's configured
# `cert`, if any), SMOKE_PODMAN_FLAGS (extra `podman run` flags), SMOKE_KEEP=1 (keep the work directory).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VENV_PY=${VENV_PY:-$ROOT/.venv/bin/python}
IMAGE=${SMOKE_IMAGE:-localhost/flytekitplugins-bigquery-connector:smoke}
DEBOOTSTRAP_IMAGE=localhost/debian-bookworm-debootstrap:latest
DEFAULT_BASE=$(sed -n 's/^ARG BASE_IMAGE=//p' deploy/Dockerfile)
NOBODY=65534

say() { printf 'image-smoke: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# pip's CA bundle: an explicit one, else the one pip is configured with (a proxy's CA lives there), else none.
pip_ca() {
    local ca=${SMOKE_PIP_CA:-${PIP_CERT:-}}
    if [ -z "$ca" ]; then ca=$("$VENV_PY" -m pip config get global.cert 2>/dev/null || true); fi
    if [ -n "$ca" ] && [ -s "$ca" ]; then printf '%s' "$ca"; fi
}

# --- image mode: builder probes and build ----------------------------------------------------------------

# The `podman run` flags that work here: none, else runc with limits no higher than this shell's (a VM without
# CAP_SYS_RESOURCE refuses crun's default RLIMIT_NOFILE/NPROC and its cgroup v1/v2 hybrid).
podman_flags() {
    local base=$1 n u
    n=$(ulimit -n); u=$(ulimit -u)
    [ "$n" = unlimited ] && n=1048576
    [ "$u" = unlimited ] && u=1048576
    n=$((n < 65536 ? n : 65536)); u=$((u < 65536 ? u : 65536))
    for flags in "${SMOKE_PODMAN_FLAGS:-}" "--runtime runc --ulimit nofile=$((n / 2)):$((n / 2)) --ulimit nproc=$((u / 2)):$((u / 2)) ${SMOKE_PODMAN_FLAGS:-}"; do
        # shellcheck disable=SC2086
        if timeout 120 podman run --rm $flags "$base" true >/dev/null 2>&1; then
            printf '%s' "$flags"
            return 0
        fi
    done
    return 1
}

base_image() {
    if [ -n "${SMOKE_BASE_IMAGE:-}" ]; then printf '%s' "$SMOKE_BASE_IMAGE"; return; fi
    if podman image exists "$DEFAULT_BASE" || timeout 60 podman pull -q "$DEFAULT_BASE" >/dev/null 2>&1; then
        printf '%s' "$DEFAULT_BASE"; return
    fi
    say "cannot pull $DEFAULT_BASE (no registry reachable?): using a debootstrapped Debian bookworm instead"
    if ! podman image exists "$DEBOOTSTRAP_IMAGE"; then
        [ "$(id -u)" = 0 ] && command -v debootstrap >/dev/null || die "debootstrap (as root) is needed to make a base image"
        local rootfs
        rootfs=$(mktemp -d /tmp/debootstrap-bookworm.XXXXXX)
        say "debootstrap --variant=minbase bookworm (about a minute)"
        debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$rootfs.log" 2>&1 \
            || die "debootstrap failed, see $rootfs.log"
        # The sources of debian:bookworm-slim (updates and security included), no apt lists.
        rm -f "$rootfs/etc/apt/sources.list"
        printf '%s\n' "Types: deb" "URIs: http://deb.debian.org/debian" "Suites: bookworm bookworm-updates" \
            "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" "" \
            "Types: deb" "URIs: http://deb.debian.org/debian-security" "Suites: bookworm-security" \
            "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" \
            >"$rootfs/etc/apt/sources.list.d/debian.sources"
        rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
        tar -C "$rootfs" --numeric-owner -c . | podman import --change 'CMD ["bash"]' - "$DEBOOTSTRAP_IMAGE" >/dev/null
        rm -rf "$rootfs" "$rootfs.log"
    fi
    printf '%s' "$DEBOOTSTRAP_IMAGE"
}

image_available() {
    command -v buildah >/dev/null && command -v podman >/dev/null || return 1
}

build_image() {
    local base=$1 ca secret=()
    ca=$(pip_ca)
    [ -n "$ca" ] && secret=(--secret "id=pip-ca,src=$ca")
    say "buildah build --isolation chroot -f deploy/Dockerfile (base $base)"
    buildah build --isolation chroot --network host --format docker --layers \
        --build-arg "BASE_IMAGE=$base" "${secret[@]}" -f deploy/Dockerfile -t "$IMAGE" . >&2
}

# --- venv mode: install as the image does, unprivileged ----------------------------------------------------

as_user() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups -- "$@"
    else
        "$@"
    fi
}

install_venv() {
    local work=$1 python=${SMOKE_PYTHON:-/usr/bin/python3.11} ca
    [ -x "$python" ] || die "$python not found (install Debian's python3.11 and python3.11-venv, or set SMOKE_PYTHON)"
    ca=$(pip_ca)
    mkdir -p "$work/src" "$work/home"
    # The build context, as the Dockerfile copies it (no caches, no egg-info).
    tar -c --exclude=__pycache__ --exclude='*.egg-info' --exclude=build \
        deploy/requirements.txt deploy/build-requirements.txt packages/flyte-bigquery-core pyproject.toml \
        README.md flytekitplugins | tar -x -C "$work/src"
    [ "$(id -u)" = 0 ] && chown -R $NOBODY:$NOBODY "$work"
    say "installing deploy/requirements.txt into a fresh $("$python" --version) venv as uid $(as_user id -u)"
    # A clean environment, no pip configuration: only the lock and our wheels, as in the image.
    as_user env -i PATH=/usr/bin:/bin HOME="$work/home" PIP_CONFIG_FILE=/dev/null PIP_NO_CACHE_DIR=1 \
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 ${ca:+PIP_CERT="$ca"} SRC="$work/src" VENV="$work/venv" \
        PYTHON="$python" sh -euc '
            "$PYTHON" -m venv "$VENV"
            "$VENV/bin/pip" install -q --no-deps --only-binary=:all: -r "$SRC/deploy/requirements.txt"
            "$PYTHON" -m venv "$SRC/build-venv"
            "$SRC/build-venv/bin/pip" install -q --no-deps -r "$SRC/deploy/build-requirements.txt"
            "$SRC/build-venv/bin/pip" wheel -q --no-deps --no-build-isolation -w "$SRC/wheels" \
                "$SRC/packages/flyte-bigquery-core" "$SRC"
            "$VENV/bin/pip" install -q --no-deps "$SRC"/wheels/*.whl
            "$VENV/bin/pip" check
        ' >&2
}

# --- the run, inside the emulator ---------------------------------------------------------------------------

free_port() { "$VENV_PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

run_image() {  # inside the emulator: $1 = podman flags
    local flags=$1 port name rc=0 code
    port=$(free_port)
    name=connector-smoke-$$
    # shellcheck disable=SC2086
    podman run -d --name "$name" $flags --network host --read-only \
        -e CONNECTOR_HOST=127.0.0.1 -e CONNECTOR_PORT="$port" \
        -e BIGQUERY_EMULATOR_HOST -e FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST -e GOOGLE_CLOUD_PROJECT \
        -e NO_PROXY -e no_proxy "$IMAGE" >/dev/null
    trap "podman rm -f $name >/dev/null 2>&1 || true" EXIT
    say "container $name: $(podman exec "$name" id 2>/dev/null || echo '?'), serving on 127.0.0.1:$port"
    "$VENV_PY" deploy/smoke_client.py "127.0.0.1:$port" || rc=1
    if podman healthcheck run "$name" >/dev/null 2>&1; then
        say "the image's HEALTHCHECK (connector-healthcheck): healthy"
    else
        say "the image's HEALTHCHECK (connector-healthcheck): FAILED"; rc=1
    fi
    podman stop -t 20 "$name" >/dev/null
    code=$(podman inspect "$name" --format '{{.State.ExitCode}}')
    say "SIGTERM: the service exited with status $code"
    [ "$code" = 0 ] || rc=1
    say "service log:"; podman logs "$name" 2>&1 | sed 's/^/    /' >&2
    return $rc
}

run_venv() {  # inside the emulator: $1 = work directory with the venv
    local work=$1 port pid rc=0 code=0
    port=$(free_port)
    # The image's ENTRYPOINT and environment, as the unprivileged user, from outside the source tree (so the
    # installed wheels are what runs, not ./flytekitplugins).
    (
        cd "$work/home"
        exec setsid env -i PATH="$work/venv/bin:/usr/bin:/bin" HOME="$work/home" PYTHONDONTWRITEBYTECODE=1 \
            PYTHONUNBUFFERED=1 CONNECTOR_HOST=127.0.0.1 CONNECTOR_PORT="$port" \
            BIGQUERY_EMULATOR_HOST="$BIGQUERY_EMULATOR_HOST" GOOGLE_CLOUD_PROJECT="$GOOGLE_CLOUD_PROJECT" \
            FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST="$FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST" \
            NO_PROXY="${NO_PROXY:-}" no_proxy="${no_proxy:-}" \
            $( [ "$(id -u)" = 0 ] && echo setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups -- ) \
            "$ROOT/deploy/entrypoint.sh" >"$work/service.log" 2>&1
    ) &
    pid=$!
    trap 'kill -KILL -- -'"$pid"' 2>/dev/null || true' EXIT
    say "service pid $pid (deploy/entrypoint.sh), serving on 127.0.0.1:$port"
    "$VENV_PY" deploy/smoke_client.py "127.0.0.1:$port" || rc=1
    if env -i CONNECTOR_HOST=127.0.0.1 CONNECTOR_PORT="$port" "$work/venv/bin/python" "$ROOT/deploy/healthcheck.py" >&2; then
        say "the image's HEALTHCHECK (deploy/healthcheck.py): healthy"
    else
        say "the image's HEALTHCHECK (deploy/healthcheck.py): FAILED"; rc=1
    fi
    kill -TERM "$pid"
    wait "$pid" || code=$?
    say "SIGTERM: the service exited with status $code"
    [ "$code" = 0 ] || rc=1
    say "service log:"; sed 's/^/    /' "$work/service.log" >&2
    return $rc
}

# --- main ---------------------------------------------------------------------------------------------------

case "${1:-${SMOKE_MODE:-auto}}" in
    _run-image) run_image "$2"; exit ;;
    _run-venv) run_venv "$2"; exit ;;
    auto | image | venv) mode=${1:-${SMOKE_MODE:-auto}} ;;
    *) die "usage: deploy/smoke.sh [auto|image|venv]" ;;
esac
[ -x "$VENV_PY" ] || die "$VENV_PY not found: run make venv emulator-venv first"

if [ "$mode" != venv ]; then
    if image_available && base=$(base_image) && flags=$(podman_flags "$base"); then
        build_image "$base"
        say "podman run flags here: ${flags:-none}"
        exec "$VENV_PY" -m flyte_bigquery_core.testing.emulator run --seed demo -- bash "$0" _run-image "$flags"
    fi
    [ "$mode" = image ] && die "no container builder runs here (buildah+podman missing, or podman cannot run a container)"
    say "no container builder runs here (buildah+podman missing, or podman cannot run a container): venv mode"
fi

work=$(mktemp -d /tmp/connector-smoke.XXXXXX)
chmod 755 "$work"
[ -n "${SMOKE_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
install_venv "$work"
"$VENV_PY" -m flyte_bigquery_core.testing.emulator run --seed demo -- bash "$0" _run-venv "$work"
