#!/usr/bin/env bash
# A soak of the local mesh: REQUESTS mixed requests (allowed and denied callers, card numbers in
# requests and responses, 16 KiB bodies; scripts/soak.lua) through the client sidecar into the
# server sidecar with pci-mesh-guard, driven by wrk in rounds of 30 s until the server has seen
# them all. Every 10 s it samples the server Envoy's resident memory and the plugin VM's memory.
#
#   scripts/soak.sh [REQUESTS] [DIR]    default 1000000 requests, DIR .work/soak
#
# It reports, and fails unless: every answer is the expected 200 or 403 (no 5xx, no socket
# errors); the server's HTTP requests, the plugin's request counters and the access events in its
# log are the same number (exactly one audit event per request); the audit trail verifies; and
# memory levels off (the last half of the run grows the resident memory by under 5% and the VM's
# not at all; judged from 100,000 requests). The samples go to DIR/soak.csv. It takes about 7
# minutes per million requests on 2 cores. PMG_SOAK_ROUND sets the seconds of a wrk round.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
total=${1:-1000000}
dir=${2:-$root/.work/soak}
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }

cargo build --quiet --release --lib --target wasm32-wasip1
cargo build --quiet --release --bin pci-mesh-guard
scripts/mesh.sh down "$dir" 2>/dev/null || true
rm -rf "$dir"
mkdir -p "$dir"
PMG_BACKEND_KEEP=0 scripts/mesh.sh up "$dir" envoy-config/demo-plugin-config.json >/dev/null
trap 'scripts/mesh.sh down "$dir"' EXIT
admin=$(cat "$dir/server.admin")
port=${PMG_OUTBOUND_PORT:-15001}
server_pid=$(pgrep -P "$(awk '$1 == "server" { print $2 }' "$dir/pids")" -x envoy || true)
[ -n "$server_pid" ] || { echo "cannot find the server Envoy's pid" >&2; exit 1; }

# stat NAME: one counter or gauge of the server sidecar.
stat() { curl -s "http://$admin/stats?filter=^$1\$" | awk -F': ' '{ s += $2 } END { print s + 0 }'; }
served() { stat 'http\.inbound\.downstream_rq_total'; }

sample() {
  echo "seconds,requests,rss_kib,vm_memory_bytes" >"$dir/soak.csv"
  local start=$SECONDS
  while [ ! -e "$dir/soak.stop" ]; do
    echo "$((SECONDS - start)),$(served),$(awk '/^VmRSS/ { print $2 }' "/proc/$server_pid/status"),$(stat 'wasmcustom\.pci_mesh_guard_vm_memory_bytes')" >>"$dir/soak.csv"
    for _ in $(seq 1 20); do [ -e "$dir/soak.stop" ] && break; sleep 0.5; done
  done
}
sample &
sampler=$!

echo "soak: $total requests through 127.0.0.1:$port (the mix of scripts/soak.lua), samples in $dir/soak.csv"
: >"$dir/wrk.out"
started=$SECONDS
while [ "$(served)" -lt "$total" ]; do
  before=$(served)
  wrk -t2 -c16 -d"${PMG_SOAK_ROUND:-30}s" -s scripts/soak.lua "http://127.0.0.1:$port" >>"$dir/wrk.out" 2>&1
  echo "  $(served) requests after $((SECONDS - started)) s"
  if [ "$(served)" = "$before" ]; then
    echo "no request reached the server sidecar in a round; wrk said:" >&2
    tail -n 12 "$dir/wrk.out" >&2
    exit 1
  fi
done
elapsed=$((SECONDS - started))
sleep 2
touch "$dir/soak.stop"
wait "$sampler"

python3 - "$dir" "$elapsed" <<'PY'
import csv, re, sys
d, elapsed = sys.argv[1], int(sys.argv[2])
statuses, errors = {}, {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0}
for line in open(f"{d}/wrk.out"):
    m = re.match(r"status (\d+) (\d+)", line)
    if m:
        statuses[int(m[1])] = statuses.get(int(m[1]), 0) + int(m[2])
    m = re.match(r"errors connect (\d+) read (\d+) write (\d+) timeout (\d+) status (\d+)", line)
    if m:
        for k, v in zip(errors, m.groups()):
            errors[k] += int(v)
rows = list(csv.DictReader(open(f"{d}/soak.csv")))
open(f"{d}/summary.txt", "w").write(repr({"statuses": statuses, "errors": errors, "elapsed": elapsed, "samples": len(rows)}))
PY
summary=$(cat "$dir/summary.txt")
requests=$(served)
counted=$(curl -s "http://$admin/stats?filter=pci_mesh_guard_requests_total" | awk -F': ' '{ s += $2 } END { print s + 0 }')
events=$(grep -c '"event":"access"' "$dir/server.log" || true)
verify=$(target/release/pci-mesh-guard verify-audit --key-file "$dir/audit.key" "$dir/server.log" | tail -n 1)

python3 - "$dir" "$summary" "$requests" "$counted" "$events" "$verify" <<'PY'
import ast, csv, sys
d, summary, requests, counted, events, verify = sys.argv[1:]
s = ast.literal_eval(summary)
requests, counted, events = int(requests), int(counted), int(events)
rows = [r for r in csv.DictReader(open(f"{d}/soak.csv")) if r["rss_kib"]]
def at(fraction):
    want = fraction * requests
    return min(rows, key=lambda r: abs(int(r["requests"]) - want))
print(f"\nsoak: {requests:,} requests in {s['elapsed']} s ({requests / max(s['elapsed'], 1):,.0f}/s)")
print("answers:", ", ".join(f"{k}: {v:,}" for k, v in sorted(s["statuses"].items())),
      "| wrk errors:", s["errors"])
print(f"server HTTP requests {requests:,}, plugin request counters {counted:,}, access events {events:,}")
print(f"audit trail: {verify}")
print("\n| point | requests | Envoy RSS | VM memory |\n|---|---:|---:|---:|")
for label, f in [("10%", 0.1), ("25%", 0.25), ("50%", 0.5), ("75%", 0.75), ("end", 1.0)]:
    r = at(f)
    print(f"| {label} | {int(r['requests']):,} | {int(r['rss_kib']) / 1024:.1f} MiB | {int(float(r['vm_memory_bytes'])) / 2**20:.2f} MiB |")
mid, end = at(0.5), at(1.0)
rss_growth = (int(end["rss_kib"]) - int(mid["rss_kib"])) / int(mid["rss_kib"])
vm_growth = float(end["vm_memory_bytes"]) - float(mid["vm_memory_bytes"])
print(f"\nsecond half: Envoy RSS {rss_growth:+.1%}, VM memory {vm_growth / 2**20:+.2f} MiB")
bad = []
unexpected = {k: v for k, v in s["statuses"].items() if k not in (200, 403)}
if unexpected:
    bad.append(f"unexpected answers {unexpected}")
if any(s["errors"][k] for k in ("connect", "read", "write", "timeout")):
    bad.append(f"socket errors {s['errors']}")
if not (requests == counted == events):
    bad.append("requests, counters and events differ")
if " 0 problems" not in verify:
    bad.append("the audit trail does not verify")
if requests < 100_000:
    print("(too few requests to judge whether memory levels off: warm-up still grows it)")
elif rss_growth >= 0.05 or vm_growth > 0:
    bad.append("memory did not level off")
if bad:
    sys.exit("soak FAILED: " + "; ".join(bad))
print("soak passed")
PY
