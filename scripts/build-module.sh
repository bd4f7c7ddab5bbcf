#!/usr/bin/env bash
# Builds the native filter, libpci_mesh_guard.so: an Envoy dynamic module for Envoy 1.40 (a module
# built for Envoy X.Y runs on X.Y and X.Y+1). Prints the module's absolute path as its last line.
# Envoy loads it by name from $ENVOY_DYNAMIC_MODULES_SEARCH_PATH (see envoy-config/filter-native.yaml).
#
# It builds into target/module/, apart from target/release/, where a build of the crate without the
# envoy-module feature leaves a libpci_mesh_guard.so that has no hooks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --quiet --release --lib --features envoy-module --target-dir "$root/target/module" >&2
echo "$root/target/module/release/libpci_mesh_guard.so"
