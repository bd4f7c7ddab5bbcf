#!/usr/bin/env bash
# Profiles the request flow inside V8 (Node's, the engine Envoy embeds): builds
# examples/flow_under_v8.rs for wasm32-wasip1 with function names kept, runs it under Node's WASI
# with --cpu-prof, and prints the functions with the most self time.
#   scripts/profile-v8.sh [requests] [denied]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
# The core alone (no proxy-wasm adapter), names kept for the profile.
CARGO_PROFILE_RELEASE_STRIP=false cargo build --quiet --release --no-default-features \
  --target wasm32-wasip1 --example flow_under_v8 --target-dir target/profile-v8
wasm=$root/target/profile-v8/wasm32-wasip1/release/examples/flow_under_v8.wasm
out=$root/target/profile-v8/profile
rm -rf "$out" && mkdir -p "$out"
cat >"$out/run.mjs" <<'JS'
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
const [wasmPath, ...args] = process.argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: ['flow', ...args] });
const module = await WebAssembly.compile(await readFile(wasmPath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
wasi.start(instance);
JS
node --no-warnings --cpu-prof --cpu-prof-dir "$out" "$out/run.mjs" "$wasm" "$@"
python3 - "$out" <<'PY'
import collections, glob, json, sys
prof = json.load(open(glob.glob(sys.argv[1] + "/*.cpuprofile")[0]))
nodes = {n["id"]: n for n in prof["nodes"]}
dt = collections.Counter()
for sample, delta in zip(prof["samples"], prof["timeDeltas"]):
    dt[sample] += delta
self_time = collections.Counter()
for nid, t in dt.items():
    self_time[nodes[nid]["callFrame"]["functionName"] or "(anonymous)"] += t
total = sum(self_time.values())
print(f"{'self %':>7}  function")
for name, t in self_time.most_common(30):
    print(f"{100 * t / total:6.1f}%  {name[:110]}")
PY
