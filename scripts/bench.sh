#!/usr/bin/env bash
# Benchmarks the PAN redactor against a naive baseline (one regex over digits and separators,
# then Luhn) and a byte-copy floor, all in one run, and prints a table of median throughputs and
# ratios. Machines are shared and noisy: compare the ratios, not the absolute figures.
#   scripts/bench.sh [criterion filter]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo bench --bench redaction -- "$@" >&2
python3 - "$root/target/criterion" <<'PY'
import json, os, sys
base = sys.argv[1]
size = 1 << 20
inputs = ["json_no_digits", "json_ids_amounts", "csv_digits", "text_pan_per_kib"]
def median_ns(group, fn):
    p = os.path.join(base, group, fn, "new", "estimates.json")
    if not os.path.exists(p):
        return None
    return json.load(open(p))["median"]["point_estimate"]
print("| input (1 MiB, 64 KiB chunks) | redactor MiB/s | naive MiB/s | byte copy MiB/s | redactor / copy | redactor / naive |")
print("|---|---:|---:|---:|---:|---:|")
for g in inputs:
    r, n, c = (median_ns(g, f) for f in ("redactor", "naive_regex_luhn", "byte_copy_floor"))
    if None in (r, n, c):
        continue
    mibs = lambda ns: size / (1 << 20) / (ns / 1e9)
    print(f"| {g} | {mibs(r):,.0f} | {mibs(n):,.0f} | {mibs(c):,.0f} | {c / r:.0%} | {n / r:.1f}x |")
PY
