#!/usr/bin/env bash
# Builds the documentation book (docs/, an mdBook) into target/book/ with the pinned mdbook from
# .tools/ (scripts/tools.sh installs it), failing on any warning mdbook prints, then checks every
# internal link and anchor of the book and of README.md (scripts/check_links.py).
# Open target/book/index.html in a browser to read it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mdbook=$root/.tools/bin/mdbook
[ -x "$mdbook" ] || scripts/tools.sh >&2
out=$("$mdbook" build docs 2>&1) || { echo "$out" >&2; exit 1; }
if grep -qE 'WARN|ERROR' <<<"$out"; then
  echo "$out" >&2
  echo "mdbook printed warnings: treated as errors" >&2
  exit 1
fi
python3 scripts/check_links.py target/book README.md
echo "$root/target/book/index.html"
