#!/usr/bin/env bash
# Checks that the container runtime can import an image and run a container on this machine, with
# the settings the container path uses (scripts/container-env.sh): a one-layer image holding
# /bin/true and its libraries, run once and removed. Exits 0 when it can; otherwise prints the
# runtime's own error on stderr and exits 1. scripts/test.sh runs it before the container path's
# test, so that a machine whose runtime cannot run containers at all is reported as such, in one
# line, rather than as a failure of the project.
#
#   scripts/container-probe.sh RUNTIME    RUNTIME: podman or docker
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runtime=${1:?usage: $0 podman|docker}
# shellcheck source=/dev/null
. "$root/scripts/container-env.sh"

image=localhost/pci-mesh-guard/probe:$$
dir=$(mktemp -d)
trap 'rm -rf "$dir" "$dir.tar"; "$runtime" "${CONTAINER_ARGS[@]}" rmi -f "$image" >/dev/null 2>&1 || true' EXIT
for f in /bin/true $(ldd /bin/true | grep -o '/[^ ]*\.so[^ ]*'); do
  mkdir -p "$dir$(dirname "$f")"
  cp -L "$f" "$dir$f"
done
tar -C "$dir" -cf "$dir.tar" .
if ! err=$("$runtime" "${CONTAINER_ARGS[@]}" import "$dir.tar" "$image" 2>&1 >/dev/null); then
  echo "$runtime cannot import an image here: $err" >&2
  exit 1
fi
if ! err=$("$runtime" "${CONTAINER_ARGS[@]}" run --rm --network none "$image" /bin/true 2>&1 >/dev/null); then
  echo "$runtime cannot run a container here: $err" >&2
  exit 1
fi
