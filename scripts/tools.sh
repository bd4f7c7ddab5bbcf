#!/usr/bin/env bash
# Installs what building and testing need beyond cargo itself, idempotently:
# the wasm targets, wasm-bindgen-test-runner (the version Cargo.lock pins, into .tools/), mdbook
# (pinned, into .tools/), and checks
# for the system tools the mesh uses (python3, openssl, node), the OCI image test (skopeo,
# docker-registry) and the metrics tests (Debian's prometheus, with promtool), installing them from
# Debian when run as root; and Podman with runc for the container path, when it can.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

installed=$(rustup target list --installed 2>/dev/null || true)
for t in wasm32-wasip1 wasm32-unknown-unknown; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
for c in clippy rustfmt; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done

missing=()
for cmd in python3 openssl node curl gzip wrk skopeo docker-registry prometheus promtool; do
  command -v "$cmd" >/dev/null || missing+=("$cmd")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    pkgs=()
    for m in "${missing[@]}"; do
      case $m in
        python3) pkgs+=(python3 python3-venv) ;;
        node) pkgs+=(nodejs) ;;
        promtool) pkgs+=(prometheus) ;;
        *) pkgs+=("$m") ;;
      esac
    done
    # Without the recommended extras (prometheus would bring its exporters).
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${pkgs[@]}" | sort -u) >/dev/null
  else
    echo "missing tools: ${missing[*]} (install them, then run again)" >&2
    exit 1
  fi
fi

# The container path's test needs Podman (with runc, which the sandboxed test machines need);
# without root it cannot be installed, and scripts/test.sh skips that test, saying so.
if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq --no-install-recommends podman runc >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends podman runc >/dev/null; }
  fi
fi

# mdbook builds the documentation book (scripts/book.sh), pinned; without its web server and
# file watcher, which building needs neither of.
mdbook_version=0.5.4
if [ "$("$root/.tools/bin/mdbook" --version 2>/dev/null)" != "mdbook v$mdbook_version" ]; then
  echo "installing mdbook $mdbook_version into .tools/ (a minute or two, once)" >&2
  cargo install --quiet --locked --force --root "$root/.tools" mdbook --version "$mdbook_version" \
    --no-default-features --features search
fi

# wasm-bindgen-test-runner must match the wasm-bindgen version in Cargo.lock exactly.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
runner="$root/.tools/bin/wasm-bindgen-test-runner"
have=$("$runner" --version 2>/dev/null | awk '{print $2}' || true)
if [ -n "$want" ] && [ "$have" != "$want" ]; then
  echo "installing wasm-bindgen-cli $want into .tools/ (a few minutes, once)" >&2
  # Built without optimisation: the tool runs for seconds, and a release build took minutes of
  # every fresh run.
  cargo install --quiet --force --debug --root "$root/.tools" wasm-bindgen-cli --version "$want"
fi
