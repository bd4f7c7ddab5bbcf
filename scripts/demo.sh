#!/usr/bin/env bash
# The local mesh demo: builds the filter, starts backend + payments-api's server sidecar (with
# pci-mesh-guard) + a client sidecar, sends requests through it as several workloads, prints what
# the caller got, what the backend saw and the audit lines, then stops everything it started.
#   scripts/demo.sh          run the scenes and stop
#   scripts/demo.sh --keep   leave the mesh running afterwards and print how to use it
#   scripts/demo.sh --observe   also run a real Prometheus over the server sidecar with the shipped
#                               alert rules (scripts/observe.sh), and show the alerts the scenes trip
#   scripts/demo.sh --native    the same scenes with the native build (an Envoy dynamic module,
#                               scripts/build-module.sh) in the server sidecar instead of the .wasm
#   scripts/demo.sh --ambient   the same scenes in Istio ambient's shape: each caller's traffic is
#                               tunnelled over HBONE by a ztunnel stand-in to a waypoint, whose
#                               internal listener runs the plugin (identity.source istio_waypoint)
# PMG_CONTAINER=docker|podman runs the sidecars in containers instead (PMG_DOCKER=1 is docker; see
# scripts/mesh.sh and the book's "Docker and Podman", docs/src/deploying/containers.md).
# PMG_DEMO_DIR: where the mesh's state and logs go (default .work/demo).
# PMG_ISTIO=1 shapes the server sidecar as Istio runs it (its configuration by ECDS, Istio's RBAC after
# it, the sidecar's log flags) and ends with a configuration change delivered at run time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
keep=0
observe=0
for arg in "$@"; do
  case "$arg" in
    --keep) keep=1 ;;
    --observe) observe=1 ;;
    --native) export PMG_NATIVE=1 ;;
    --ambient) export PMG_AMBIENT=1 ;;
    *) echo "usage: $0 [--keep] [--observe] [--native] [--ambient]" >&2; exit 2 ;;
  esac
done

dir=${PMG_DEMO_DIR:-$root/.work/demo}
port=${PMG_OUTBOUND_PORT:-15001}
config=$root/envoy-config/demo-plugin-config.json
ambient=${PMG_AMBIENT:-0}
bold=$(tput bold 2>/dev/null || true)
plain=$(tput sgr0 2>/dev/null || true)
say() { printf '\n%s%s%s\n' "$bold" "$*" "$plain"; }

if [ "${PMG_NATIVE:-0}" = 1 ]; then
  say "Building the filter (native: an Envoy dynamic module, release)"
  PMG_MODULE=${PMG_MODULE:-$(scripts/build-module.sh | tail -n 1)}
  export PMG_MODULE
  echo "$PMG_MODULE ($(stat -c %s "$PMG_MODULE") bytes)"
else
  say "Building the filter (wasm32-wasip1, release)"
  rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
  cargo build --quiet --release --lib --target wasm32-wasip1
  wasm=$root/target/wasm32-wasip1/release/pci_mesh_guard.wasm
  echo "$wasm ($(stat -c %s "$wasm") bytes)"
fi
# The filter's lines in Envoy's log: its wasm VM's, or the dynamic modules' logger's.
filter_lines='wasm log|\[dynamic_modules\]'

scripts/mesh.sh down "$dir"
rm -rf "$dir"
if [ "$ambient" = 1 ]; then
  say "Starting the local mesh in Istio ambient's shape (backend; a waypoint for payments-api with pci-mesh-guard; a ztunnel stand-in that tunnels each caller's traffic over HBONE with its own certificate)"
  # The same policy, with the caller's identity taken from the HBONE tunnel.
  ambient_config=$(mktemp)
  python3 - "$config" "$ambient_config" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.setdefault("identity", {})["source"] = "istio_waypoint"
json.dump(c, open(sys.argv[2], "w"), indent=2)
PY
  scripts/mesh.sh up "$dir" "$ambient_config"
  rm -f "$ambient_config"
  front="the waypoint"
else
  say "Starting the local mesh (backend, server sidecar with pci-mesh-guard, client sidecar)"
  scripts/mesh.sh up "$dir" "$config"
  front="the server sidecar"
fi
[ $keep = 1 ] || trap 'scripts/mesh.sh down "$dir"' EXIT
if [ "$ambient" = 1 ]; then
  echo "plugin configuration: envoy-config/demo-plugin-config.json with identity.source \"istio_waypoint\""
  echo "the waypoint runs it on its internal listener; each caller's tunnel (ztunnel stand-in listener):"
  sed 's/^/  /' "$dir/tunnels"
else
  echo "plugin configuration: envoy-config/demo-plugin-config.json"
fi
echo "filter start-up, from $front's log:"
if [ "${PMG_ISTIO:-0}" = 1 ] || [ "$ambient" = 1 ]; then
  echo "  (Istio-shaped: the proxy logs at warning, as Istio's do, and the accepted configuration"
  echo "   is recorded by the 'config' audit event)"
else
  grep -hE "$filter_lines" "$dir/server.log" | grep -m1 'configuration accepted' | sed 's/^/  /' || true
fi
if [ $observe = 1 ]; then
  command -v prometheus >/dev/null || { echo "--observe needs Prometheus: apt-get install prometheus" >&2; exit 1; }
  scripts/observe.sh up "$dir"
  echo "Prometheus: $(cat "$dir/prometheus.url") scrapes the server sidecar every second,"
  echo "  with the alert rules of envoy-config/prometheus/alerts.yaml"
fi

# call NAME CALLER METHOD PATH [BODY]: one request through the client sidecar, as workload CALLER
# (ambient: through CALLER's HBONE tunnel; plaintext: to the waypoint's chain with no tunnel).
# With COMPRESS=1 the body is sent gzip-compressed (content-encoding: gzip).
call() {
  local id=$1 caller=$2 method=$3 path=$4 body=${5:-}
  local before out data=() to=$port via=(-H "x-mesh-caller: $caller")
  if [ "$ambient" = 1 ]; then
    via=()
    if [ "$caller" = plaintext ]; then
      to=${PMG_PLAIN_PORT:-15007}
    else
      to=$(awk -v n="as-$caller" '$1 == n { print $2 }' "$dir/tunnels")
    fi
  fi
  before=$(wc -l <"$dir/received.jsonl")
  echo "$caller -> $method $path ${body:+with body $body}${COMPRESS:+ (gzip-compressed)}"
  if [ -n "$body" ]; then
    data=(-H 'content-type: application/json' --data "$body")
    if [ -n "${COMPRESS:-}" ]; then
      printf '%s' "$body" | gzip -c >"$dir/body.gz"
      data=(-H 'content-type: application/json' -H 'content-encoding: gzip' --data-binary "@$dir/body.gz")
    fi
  fi
  out=$(curl -sS -X "$method" "http://127.0.0.1:$to$path" "${via[@]}" \
    -H "x-request-id: $id" "${data[@]}" -w '\n%{http_code}' || true)
  echo "  caller got:   $(tail -n1 <<<"$out") $(sed '$d' <<<"$out")"
  sleep 0.3
  python3 - "$dir/received.jsonl" "$before" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]
if not lines:
    print("  backend saw:  nothing")
for line in lines:
    r = json.loads(line)
    xfcc = dict(r["headers"]).get("x-forwarded-client-cert", "")
    uri = next((p[4:] for p in xfcc.split(";") if p.startswith("URI=")), None)
    peer = f" peer identity={uri}" if uri else ""
    print(f"  backend saw:  {r['method']} {r['path']} body={r['body']!r}{peer}")
PY
}

say "Scene 1: checkout (namespace shop) charges a card: allowed by rule checkout-may-charge"
call demo-1 checkout POST /v1/charges '{"amount":1299,"currency":"EUR"}'

say "Scene 2: newsletter (namespace marketing) tries the same: denied by the filter, the backend never sees it"
call demo-2 newsletter POST /v1/charges '{"amount":1}'

say "Scene 3: fraud-scoring (namespace risk) reads an order: allowed by rule risk-may-read-orders"
call demo-3 fraud GET /v1/orders/ord_123

say "Scene 4: checkout asks for /admin/../admin/keys: $front normalizes the path, the deny rule wins"
call demo-4 checkout GET /v1/charges/../../admin/keys

if [ "$ambient" = 1 ]; then
  say "Scene 5: a request reaches the waypoint's chain without an HBONE tunnel: no tunnel identity, denied (no_mtls)"
else
  say "Scene 5: a workload outside the mesh calls in plaintext: denied (no_mtls)"
fi
call demo-5 plaintext POST /v1/charges '{"amount":1}'

say "Scene 6: a certificate from a foreign trust domain (spiffe://evil.example/...): denied (untrusted_identity)"
call demo-6 foreign POST /v1/charges '{"amount":1}'

say "Scene 7: a certificate from a CA the mesh does not trust: refused in the TLS handshake, before the filter"
[ "$ambient" = 0 ] || echo "(ambient: the tunnel is refused; the caller's connection is closed)"
call demo-7 rogue POST /v1/charges '{"amount":1}'

say "Scene 8: checkout sends a card number and an SSN: the backend receives them masked"
call demo-8 checkout POST /v1/charges '{"card":"4111 1111 1111 1111","ssn":"123-45-6789","amount":1299}'

say "Scene 9: checkout reads a card on file: the backend returns the number, the caller receives it masked"
call demo-9 checkout GET /fixture/card-on-file.json

say "Scene 10: fraud-scoring holds a pan grant for responses (rule risk-may-read-card-data): the number passes"
call demo-10 fraud GET /fixture/card-on-file.json

say "Scene 11: checkout sends a gzip-compressed body: it cannot be scanned for card numbers, so it is refused (415)"
COMPRESS=1 call demo-11 checkout POST /v1/charges '{"card":"4111 1111 1111 1111","amount":1299}'

say "Audit events written by the filter ($front's log, one JSON object per line)"
# The last scene's event may still be on its way into the log file (a loaded machine, a container's
# log): wait for it, 10 s at most.
for _ in $(seq 1 50); do
  grep -q '"id":"demo-11"' "$dir/server.log" 2>/dev/null && break
  sleep 0.2
done
grep -hE "$filter_lines" "$dir/server.log" | grep -o '{"schema".*' | grep '"event":"access"' | while read -r line; do
  python3 -c '
import json, sys
e = json.loads(sys.argv[1])
pans = ", ".join("%s %s/%s/%s" % (place, c["found"], c["redacted"], c["passed"]) for place, c in e["pan"].items() if c["found"] or c.get("patterns"))
via = " (from the tunnel)" if e.get("identity_source") == "istio_waypoint" else ""
print("  %-8s %-5s reason=%-18s rule=%-24s principal=%s%s %s %s -> %s%s" % (e["request"]["id"], e["decision"], e["reason"], e["rule"], e["principal"], via, e["request"]["method"], e["request"]["path"], e["status"], ("  PANs found/redacted/passed: " + pans) if pans else ""))' "$line"
done
echo "  (full events: grep -o '{\"schema\".*' $dir/server.log)"

say "The audit trail is tamper-evident: verify-audit checks every chain in Envoy's log"
cargo build --quiet --release --bin pci-mesh-guard
cli=$root/target/release/pci-mesh-guard
"$cli" verify-audit --key-file "$dir/audit.key" "$dir/server.log" | tail -n 1 | sed 's/^/  /'
tampered=$dir/server-tampered.log
# Change one decision in a copy of the log, as an attacker covering a denial would.
python3 - "$dir/server.log" "$tampered" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines(True)
for i, line in enumerate(lines):
    if '"request":{"method":"POST","path":"/v1/charges","host"' in line and '"decision":"deny"' in line:
        lines[i] = line.replace('"decision":"deny"', '"decision":"allow"', 1)
        break
open(sys.argv[2], "w").writelines(lines)
PY
echo "  after changing one denial into an allow in a copy of the log:"
"$cli" verify-audit --key-file "$dir/audit.key" "$tampered" | sed 's/^/  /' || true

say "Evidence for the assessor: the data flows and the scope, drawn from this audit trail"
"$cli" evidence --key-file "$dir/audit.key" --out "$dir/evidence" "$dir/server.log" | sed 's/^/  /'
echo "  the diagram: $dir/evidence/dataflow.svg (and .dot); the report: $dir/evidence/evidence.md"

if [ "${PMG_ISTIO:-0}" = 1 ]; then
  admin=$(cat "$dir/server.admin")
  ecds_stat() {
    curl -s "http://$admin/stats" | awk -v s="extension_config_discovery.http_filter.payments.pci-mesh-guard.$1:" '$1 == s { print $2 }'
  }
  say "Scene 12: a configuration with a misspelt key arrives by ECDS: Envoy rejects it, the policy in force stays"
  bad=$dir/rejected-config.json
  python3 - "$config" "$bad" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["authorization"]["rulez"] = c["authorization"].pop("rules")
c["authorization"]["default_action"] = "allow"
json.dump(c, open(sys.argv[2], "w"))
PY
  scripts/mesh.sh deliver "$dir" "$bad"
  for _ in $(seq 1 50); do [ "$(ecds_stat config_fail)" = 1 ] && break; sleep 0.2; done
  echo "  config_fail=$(ecds_stat config_fail) update_success=$(ecds_stat update_success)"
  grep -h -m1 -o 'configuration rejected: [^"]*' "$dir/server.log" | sed 's/^/  /' || true
  call demo-12 newsletter POST /v1/charges '{"amount":1}'
  say "Scene 13: the shipped configuration again, delivered at run time: accepted"
  scripts/mesh.sh deliver "$dir" "$config"
  for _ in $(seq 1 50); do [ "$(ecds_stat update_success)" = 2 ] && break; sleep 0.2; done
  echo "  config_fail=$(ecds_stat config_fail) update_success=$(ecds_stat update_success)"
  call demo-13 checkout POST /v1/charges '{"amount":1299,"currency":"EUR"}'
fi

if [ $observe = 1 ]; then
  say "Prometheus: the alerts the scenes tripped (from its API, $(cat "$dir/prometheus.url")/api/v1/alerts)"
  want=(PciMeshGuardPlaintextRefused PciMeshGuardUnscannableBodies)
  [ "${PMG_ISTIO:-0}" = 1 ] && want+=(PciMeshGuardConfigRejected)
  scripts/observe.sh wait "$dir" "${want[@]}"
  echo "  requests denied by caller in the last 5 minutes (the dashboard's 'top denied callers'):"
  scripts/observe.sh query "$dir" \
    'topk(5, sum by (caller, reason) (pci_mesh_guard_denied_callers_total
       - (pci_mesh_guard_denied_callers_total offset 5m or 0 * pci_mesh_guard_denied_callers_total)) > 0)' |
    python3 -c '
import json, sys
for r in json.load(sys.stdin)["data"]["result"]:
    print("    %-55s %-20s %s" % (r["metric"]["caller"], r["metric"]["reason"], round(float(r["value"][1]))))'
fi

if [ $keep = 1 ]; then
  say "The mesh keeps running"
  if [ "$ambient" = 1 ]; then
    cat <<EOT
  send requests:  curl -s http://127.0.0.1:$(awk '$1 == "as-checkout" { print $2 }' "$dir/tunnels")/v1/charges -X POST -d '{}'
                  (through checkout's tunnel; the other callers' tunnels are in $dir/tunnels)
EOT
  else
    cat <<EOT
  send requests:  curl -s http://127.0.0.1:$port/v1/charges -X POST -H 'x-mesh-caller: checkout' -d '{}'
                  (x-mesh-caller: checkout | newsletter | fraud | foreign | rogue | plaintext)
EOT
  fi
  cat <<EOT
  what arrived:   tail -f $dir/received.jsonl
  audit events:   tail -f $dir/server.log | grep -o '{"schema".*'
  stop it:        scripts/mesh.sh down $dir
EOT
  [ $observe = 0 ] || echo "  Prometheus:     $(cat "$dir/prometheus.url") (alerts: scripts/observe.sh alerts $dir)"
fi
