#!/usr/bin/env bash
# Measures verify-audit, evidence summarize and evidence merge on a generated keyed trail of a
# mesh's size (scripts/generate_trail.py): events per second per core and peak memory of each
# step, and the drawing of the whole. Long: a benchmark, not a test.
#
#   scripts/bench-evidence.sh [--events N] [--workloads W] [--flows F] [--nodes K] [--dir DIR]
#
# Defaults: 10,000,000 events, 500 workloads, 5,000 flows, 8 node logs (about 9 GB in DIR,
# default target/bench-evidence, reused when it already holds a trail of that size).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
events=10000000 workloads=500 flows=5000 nodes=8 dir="$root/target/bench-evidence"
while [ $# -gt 0 ]; do
  case "$1" in
    --events) events=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --flows) flows=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
key="bench-evidence-key-0123456789"
trail="$dir/trail-$events-$workloads-$flows-$nodes"
cargo build --quiet --release --bin pci-mesh-guard --manifest-path "$root/Cargo.toml"
bin="$root/target/release/pci-mesh-guard"
if [ ! -f "$trail/done" ]; then
  echo "generating $events events ($workloads workloads, $flows flows, $nodes logs) in $trail" >&2
  rm -rf "$trail"
  python3 "$root/scripts/generate_trail.py" --events "$events" --workloads "$workloads" \
    --flows "$flows" --nodes "$nodes" --key "$key" "$trail"
  touch "$trail/done"
fi
ring="$dir/keyring"
echo "$key" >"$ring"
out="$dir/out"
rm -rf "$out" && mkdir -p "$out"
size=$(du -cb "$trail"/node*.log | tail -1 | cut -f1)

# Runs one step; prints its wall and CPU seconds and peak resident memory.
measure() {
  local name=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$out/$name.time" "$@" >"$out/$name.out" 2>&1 || {
    cat "$out/$name.out" >&2; echo "$name failed" >&2; exit 1; }
  read -r wall user sys rss <"$out/$name.time"
  echo "$name $wall $user $sys $rss"
}

echo "| step | events | wall s | CPU s | events/s per core | peak RSS MB |"
echo "|---|---:|---:|---:|---:|---:|"
report() {
  local label=$1 n=$2 file=$3
  read -r wall user sys rss <"$file"
  awk -v l="$label" -v n="$n" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" \
    'BEGIN { c = u + s; printf "| %s | %d | %.1f | %.1f | %.0f | %.1f |\n", l, n, w, c, n / c, r / 1024 }'
}
measure verify "$bin" verify-audit --key-file "$ring" "$trail"/node00.log >/dev/null
report "verify-audit, one node's log" "$(grep -o '^[^:]*: [0-9]* events' "$out/verify.out" | grep -o '[0-9]* events' | cut -d' ' -f1)" "$out/verify.time"
measure verify-all "$bin" verify-audit --key-file "$ring" "$trail"/node*.log >/dev/null
report "verify-audit, all $nodes logs in one process" "$events" "$out/verify-all.time"
parts=()
for log in "$trail"/node*.log; do
  name=$(basename "$log" .log)
  measure "summarize-$name" "$bin" evidence summarize --key-file "$ring" "$log" --out "$out/$name.json" >/dev/null
  parts+=("$out/$name.json")
done
n0=$(grep -c '' "$trail/node00.log")
report "evidence summarize, one node's log" "$n0" "$out/summarize-node00.time"
# The shards in parallel, as a batch engine runs them: one process per core.
start=$(date +%s.%N)
printf '%s\n' "$trail"/node*.log | xargs -P "$(nproc)" -I{} sh -c \
  '"$0" evidence summarize --key-file "$1" "{}" --out "$2/par-$(basename {} .log).json" >/dev/null' "$bin" "$ring" "$out"
end=$(date +%s.%N)
measure merge "$bin" evidence merge "${parts[@]}" --out "$out/evidence" >/dev/null
report "evidence merge of $nodes summaries" "$events" "$out/merge.time"
awk -v s="$start" -v e="$end" -v n="$events" -v p="$(nproc)" \
  'BEGIN { printf "\nAll %d events summarized in parallel (xargs -P %d): %.1f s wall, %.0f events/s\n", n, p, e - s, n / (e - s) }'
echo "Trail: $events events, $(awk -v b="$size" 'BEGIN { printf "%.1f GB", b / 1e9 }') in $nodes logs; drawing: $(tail -1 "$out/merge.out")"
head -c 400 "$out/evidence/dataflow.svg" | grep -o 'width="[0-9]*" height="[0-9]*"' | sed 's/^/SVG /'
