#!/usr/bin/env bash
# A real Prometheus (Debian's `prometheus`) over the local mesh: it scrapes the server sidecar and
# evaluates envoy-config/prometheus/alerts.yaml.
#
#   scripts/observe.sh up DIR               start it beside the mesh in DIR (scripts/mesh.sh down DIR stops it)
#   scripts/observe.sh alerts DIR           the alerts, pending and firing, from Prometheus' API
#   scripts/observe.sh wait DIR ALERT...    until each ALERT fires (60 s at most), then the alerts
#   scripts/observe.sh query DIR PROMQL     one instant query, the answer as JSON
#
# PMG_PROMETHEUS_PORT (default 19090): where Prometheus listens on 127.0.0.1; DIR/prometheus.url
# names it. The server sidecar's admin address comes from DIR/server.admin (scripts/mesh.sh up).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

api() {
  python3 - "$@" <<'PY'
import json, sys, time, urllib.parse, urllib.request
base, what = sys.argv[1], sys.argv[2]
def get(path, **params):
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)
def alerts():
    return get("/api/v1/alerts")["data"]["alerts"]
def show(alerts):
    if not alerts:
        print("  no alert pending or firing")
    for a in sorted(alerts, key=lambda a: (a["state"], a["labels"]["alertname"])):
        labels = a["labels"]
        where = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("alertname", "severity"))
        print(f"  {a['state']:8} {labels['alertname']} ({labels.get('severity', '')}) {where}")
        print(f"           {a['annotations'].get('summary', '')}")
if what == "alerts":
    show(alerts())
elif what == "wait":
    want, deadline = set(sys.argv[3:]), time.time() + 60
    while True:
        now = alerts()
        firing = {a["labels"]["alertname"] for a in now if a["state"] == "firing"}
        if want <= firing or time.time() > deadline:
            break
        time.sleep(0.5)
    show(now)
    if not want <= firing:
        sys.exit("not firing after 60 s: " + ", ".join(sorted(want - firing)))
elif what == "query":
    print(json.dumps(get("/api/v1/query", query=sys.argv[3])))
PY
}

url_of() {
  [ -s "$1/prometheus.url" ] || { echo "no Prometheus in $1: scripts/observe.sh up $1" >&2; exit 1; }
  cat "$1/prometheus.url"
}

up() {
  local dir=$1 port=${PMG_PROMETHEUS_PORT:-19090} prometheus
  dir=$(cd "$dir" && pwd)
  [ -s "$dir/server.admin" ] || { echo "no server sidecar in $dir: scripts/mesh.sh up $dir CONFIG first" >&2; exit 1; }
  prometheus=$(command -v prometheus) || { echo "no prometheus: apt-get install prometheus (scripts/tools.sh does)" >&2; exit 1; }
  python3 - "$root/envoy-config/prometheus/prometheus.yaml" "$dir/prometheus.yaml" \
    "$root/envoy-config/prometheus/alerts.yaml" "$(cat "$dir/server.admin")" <<'PY'
import sys
template, out, rules, admin = sys.argv[1:]
text = open(template).read().replace("{{RULES}}", rules).replace("{{SERVER_ADMIN}}", admin)
open(out, "w").write(text)
PY
  rm -rf "$dir/prometheus-data"
  setsid "$prometheus" --config.file "$dir/prometheus.yaml" --storage.tsdb.path "$dir/prometheus-data" \
    --web.listen-address "127.0.0.1:$port" >"$dir/prometheus.log" 2>&1 </dev/null &
  echo "prometheus $!" >>"$dir/pids"
  echo "http://127.0.0.1:$port" >"$dir/prometheus.url"
  # Ready when the sidecar has been scraped once: the alert rules then see every counter from 0.
  for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$port/api/v1/query?query=pci_mesh_guard_configurations_total" 2>/dev/null \
      | grep -q '"pci_mesh_guard_configurations_total"'; then
      return 0
    fi
    kill -0 "$!" 2>/dev/null || break
    sleep 0.1
  done
  echo "Prometheus did not scrape the sidecar; its log:" >&2
  tail -n 20 "$dir/prometheus.log" >&2
  exit 1
}

case "${1:-}" in
  up) [ $# -eq 2 ] || { echo "usage: $0 up DIR" >&2; exit 2; }; up "$2" ;;
  alerts) [ $# -eq 2 ] || { echo "usage: $0 alerts DIR" >&2; exit 2; }; api "$(url_of "$2")" alerts ;;
  wait) [ $# -ge 3 ] || { echo "usage: $0 wait DIR ALERT..." >&2; exit 2; }; api "$(url_of "$2")" wait "${@:3}" ;;
  query) [ $# -eq 3 ] || { echo "usage: $0 query DIR PROMQL" >&2; exit 2; }; api "$(url_of "$2")" query "$3" ;;
  *) echo "usage: $0 up DIR | alerts DIR | wait DIR ALERT... | query DIR PROMQL" >&2; exit 2 ;;
esac
