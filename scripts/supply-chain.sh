#!/usr/bin/env bash
# The dependency inventory (PCI DSS 6.3.2): checks the dependency policy in deny.toml with
# cargo-deny (licenses, bans, sources; offline), then writes a CycloneDX SBOM of the module's
# dependency tree (wasm32-wasip1, build dependencies included) with cargo-cyclonedx and validates
# it against the CycloneDX 1.5 JSON schema.
#
#   scripts/supply-chain.sh     prints the checks' result and the SBOM's path
#
# The SBOM goes to target/sbom/pci-mesh-guard.cdx.json. Installs cargo-deny and cargo-cyclonedx
# (pinned versions) into .tools/ when missing. `cargo deny check advisories` also needs the RustSec
# advisory database (it fetches it from GitHub): run it where the network allows.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

install() {
  local crate=$1 version=$2 have
  have=$(cargo install --list --root "$root/.tools" 2>/dev/null | awk -v c="$crate" '$1 == c { print $2 }')
  if [ "$have" != "v$version:" ]; then
    echo "installing $crate $version into .tools/ (a few minutes, once)" >&2
    # Built without optimisation: the tool runs for seconds, and a release build took minutes of
    # every fresh run.
    cargo install --quiet --locked --force --debug --root "$root/.tools" "$crate" --version "$version" >&2
  fi
}
install cargo-deny 0.20.2
install cargo-cyclonedx 0.5.9
export PATH="$root/.tools/bin:$PATH"

cargo deny --log-level error check licenses bans sources

out=$root/target/sbom
mkdir -p "$out"
rm -f "$root/pci-mesh-guard.cdx.json"
cargo cyclonedx --quiet --target wasm32-wasip1 --format json --spec-version 1.5 \
  --override-filename pci-mesh-guard.cdx
mv "$root/pci-mesh-guard.cdx.json" "$out/pci-mesh-guard.cdx.json"

"$("$root/scripts/test-tools.sh")" - "$out/pci-mesh-guard.cdx.json" <<'PY'
import json, sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
path = sys.argv[1]
text = open(path).read()
error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(text)
if error is not None:
    sys.exit(f"{path}: not a valid CycloneDX 1.5 document: {error}")
bom = json.loads(text)
print(f"{path}: valid CycloneDX {bom['specVersion']}, {len(bom['components'])} components")
PY
