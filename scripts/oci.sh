#!/usr/bin/env bash
# Builds the OCI image Istio pulls for a WasmPlugin (url: oci://...), without Docker: the release
# module as plugin.wasm in a tar.gz layer (scripts/oci_image.py), written as an OCI image layout to
# target/oci/pci-mesh-guard. Prints the image manifest's digest, the WasmPlugin's `sha256`.
# The same module always gives the same digest.
#
#   scripts/oci.sh [--wasm PATH] [--tag TAG] [--layout DIR] [--push REGISTRY/REPOSITORY:TAG] [--insecure]
#
# --wasm     package this module instead of building target/wasm32-wasip1/release/pci_mesh_guard.wasm
# --tag      the tag inside the layout (default: the crate's version)
# --layout   write the layout there instead of target/oci/pci-mesh-guard
# --push     copy the image to a registry with skopeo (installed from Debian when missing, as root);
#            credentials are skopeo's (`skopeo login REGISTRY`, or REGISTRY_AUTH_FILE)
# --insecure push over plain HTTP or to a registry whose certificate is not trusted (a local one)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

wasm="" push="" insecure=false layout="$root/target/oci/pci-mesh-guard"
tag=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
while [ $# -gt 0 ]; do
  case $1 in
    --wasm) wasm=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --layout) layout=$2; shift 2 ;;
    --push) push=$2; shift 2 ;;
    --insecure) insecure=true; shift ;;
    *) echo "unknown argument: $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

if [ -z "$wasm" ]; then
  rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1 >&2
  cargo build --quiet --release --lib --target wasm32-wasip1 >&2
  wasm="$root/target/wasm32-wasip1/release/pci_mesh_guard.wasm"
fi
digest=$(python3 scripts/oci_image.py "$wasm" "$layout" "$tag")
echo "OCI image layout: $layout (tag $tag, module $(stat -c %s "$wasm") bytes)" >&2

if [ -n "$push" ]; then
  if ! command -v skopeo >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get install -y -qq skopeo >/dev/null || { apt-get update -qq && apt-get install -y -qq skopeo >/dev/null; }
    else
      echo "skopeo is needed to push: install it (Debian/Ubuntu: apt-get install skopeo)" >&2
      exit 1
    fi
  fi
  tls=()
  if $insecure; then tls=(--dest-tls-verify=false); fi
  skopeo copy --quiet "${tls[@]}" "oci:$layout:$tag" "docker://$push" >&2
  echo "pushed: $push" >&2
fi
echo "manifest digest (the WasmPlugin's sha256):" >&2
echo "${digest#sha256:}"
