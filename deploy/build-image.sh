#!/usr/bin/env sh
# Build the fleet's image with whichever engine works here: podman, docker (with a running engine)
# or buildah. Usage: deploy/build-image.sh [cpu|gpu] [extra build flags...]
# ENGINE=docker forces one; IMAGE overrides the name (default inference-fleet:<version>-<variant>).
set -eu
cd "$(dirname "$0")/.."
VARIANT="${1:-cpu}"
[ $# -gt 0 ] && shift
case "$VARIANT" in
  cpu) BASE="${BASE_IMAGE:-docker.io/library/python:3.11-slim-bookworm}" ;;
  gpu) BASE="${BASE_IMAGE:-docker.io/nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04}" ;;
  *) echo "variant must be cpu or gpu, not '$VARIANT'" >&2; exit 2 ;;
esac
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)"
IMAGE="${IMAGE:-inference-fleet:${VERSION}-${VARIANT}}"
REVISION="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

works() {
  case "$1" in
    docker) command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}
if [ -z "${ENGINE:-}" ]; then
  for candidate in podman docker buildah; do
    if works "$candidate"; then ENGINE="$candidate"; break; fi
  done
fi
if [ -z "${ENGINE:-}" ]; then
  echo "no container engine: install podman (apt-get install podman), docker or buildah" >&2
  exit 1
fi
case "$ENGINE" in
  buildah) BUILD="buildah build" ;;
  *) BUILD="$ENGINE build" ;;
esac
echo "building $IMAGE with $ENGINE (base $BASE)"
# shellcheck disable=SC2086 (BUILD is a command and its subcommand)
exec $BUILD -f deploy/Dockerfile -t "$IMAGE" \
  --build-arg VARIANT="$VARIANT" --build-arg BASE_IMAGE="$BASE" --build-arg VERSION="$VERSION" \
  --build-arg REVISION="$REVISION" --build-arg CREATED="$CREATED" "$@" .
