#!/usr/bin/env bash
# Prints the path of a Python that has the end-to-end tests' packages (scripts/requirements/
# test-tools.txt), installing them first into a project-local virtualenv when needed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv/test-tools"
req="$root/scripts/requirements/test-tools.txt"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing the test tools into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$req" >&2
  echo "$want" >"$stamp"
fi
echo "$venv/bin/python"
