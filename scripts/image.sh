#!/usr/bin/env bash
# Build the archscore image with podman (no Docker engine needed): `make image`.
#
#   BASE_IMAGE   the image to build on (default localhost/debian:bookworm: a Debian base made here from
#                Debian's own packages with debootstrap, when it is not there yet; or e.g. python:3.11-slim
#                where a registry can be pulled from)
#   IMAGE        the tag to build (default archscore:latest)
#   TORCH_WHEELS a folder holding torch's wheel (default: build/wheels, filled from the wheels pip finds
#                without an index, so a locally kept CPU wheel is used and nothing multi-GB is downloaded;
#                when pip finds none, the image's pip downloads torch from TORCH_INDEX_URL)
#   TORCH_INDEX_URL  where torch is downloaded from instead of any local wheel: the CUDA image passes
#                https://pypi.org/simple (PyPI's Linux wheels are CUDA builds that bundle their libraries)
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=${BASE_IMAGE:-localhost/debian:bookworm}
IMAGE=${IMAGE:-archscore:latest}
TORCH_WHEELS=${TORCH_WHEELS:-build/wheels}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
PYTHON=${PYTHON:-.venv/bin/python}
PODMAN=(podman --runtime runc --cgroup-manager=cgroupfs)

SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
missing=()
for tool in podman runc catatonit; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[[ $BASE_IMAGE == localhost/debian:* ]] && ! command -v debootstrap >/dev/null && missing+=(debootstrap)
if ((${#missing[@]})); then
    echo "installing ${missing[*]} from Debian's packages"
    $SUDO apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q podman buildah runc catatonit debootstrap >/dev/null
fi

if [[ $BASE_IMAGE == localhost/debian:* ]] && ! "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
    suite=${BASE_IMAGE#localhost/debian:}
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    echo "making $BASE_IMAGE with debootstrap (minbase $suite)"
    $SUDO debootstrap --variant=minbase "$suite" "$root" >/dev/null
    $SUDO tar -C "$root" -c . | "${PODMAN[@]}" import - "$BASE_IMAGE" >/dev/null
fi

build_context=()
if [ -n "${TORCH_INDEX_URL:-}" ]; then
    build_context=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")
elif [ ! -d "$TORCH_WHEELS" ] || ! ls "$TORCH_WHEELS"/torch-"$TORCH_VERSION"*.whl >/dev/null 2>&1; then
    mkdir -p "$TORCH_WHEELS"
    "$PYTHON" -m pip download --quiet --no-deps --no-index "torch==$TORCH_VERSION" -d "$TORCH_WHEELS" 2>/dev/null ||
        echo "no local torch $TORCH_VERSION wheel: the build downloads it"
fi
if [ -z "${TORCH_INDEX_URL:-}" ] && ls "$TORCH_WHEELS"/torch-"$TORCH_VERSION"*.whl >/dev/null 2>&1; then
    build_context=(--build-context "wheels=$TORCH_WHEELS")
fi

# the host's CA bundle, for a network whose TLS is inspected by a proxy (the build's downloads only)
for bundle in "${CA_BUNDLE:-}" /etc/ssl/certs/ca-certificates.crt; do
    if [ -n "$bundle" ] && [ -s "$bundle" ]; then build_context+=(--secret "id=ca,src=$bundle"); break; fi
done

echo "building $IMAGE on $BASE_IMAGE"
started=$(date +%s)
"${PODMAN[@]}" build --isolation chroot --network host --format docker \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg TORCH_VERSION="$TORCH_VERSION" \
    "${build_context[@]}" -t "$IMAGE" -f Dockerfile .
echo "built $IMAGE in $(($(date +%s) - started)) s: $("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE" |
    awk '{printf "%.0f MB", $1 / 1e6}')"
