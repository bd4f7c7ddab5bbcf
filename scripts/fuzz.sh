#!/usr/bin/env bash
# The cargo-fuzz targets of the core (fuzz/fuzz_targets/), on nightly Rust with libFuzzer.
#
#   scripts/fuzz.sh TARGET SECONDS     run one target for SECONDS, growing its corpus fuzz/corpus/TARGET
#   scripts/fuzz.sh --smoke [SECONDS]  build every target and run each for SECONDS (default 5) on a
#                                      scratch copy of its corpus (scripts/test.sh runs this)
#   scripts/fuzz.sh --list             the targets
#
# Installs what it needs: the nightly toolchain (rustup) and cargo-fuzz (into .tools/).
# A finding is written to fuzz/artifacts/TARGET/ and the run fails; turn it into a regression test
# (the unit tests beside the code it found) before fixing it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

cargo_fuzz_version=0.13.2
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal >&2
if [ "$("$root/.tools/bin/cargo-fuzz" --version 2>/dev/null | awk '{print $2}')" != "$cargo_fuzz_version" ]; then
  echo "installing cargo-fuzz $cargo_fuzz_version into .tools/ (a minute, once)" >&2
  # Built without optimisation: the tool runs for seconds, and a release build took minutes of
  # every fresh run.
  cargo install --quiet --locked --force --debug --root "$root/.tools" cargo-fuzz --version "$cargo_fuzz_version" >&2
fi
export PATH="$root/.tools/bin:$PATH"
targets=$(cargo +nightly fuzz list)

# run TARGET SECONDS CORPUS...: libFuzzer on the target; new inputs go to the first corpus.
run() {
  local target=$1 seconds=$2
  shift 2
  cargo +nightly fuzz run "$target" "$@" -- -max_total_time="$seconds" -max_len=8192 -timeout=10 \
    -print_final_stats=1 2>&1 | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done|INFO: Running|==[0-9]+==|SUMMARY|.*panicked|Failing input|Test unit written)' || true
  # grep eats the status: ask cargo-fuzz's artifact directory instead.
  if compgen -G "$root/fuzz/artifacts/$target/*" >/dev/null; then
    echo "$target: findings in fuzz/artifacts/$target/" >&2
    return 1
  fi
}

case "${1:-}" in
  --list) echo "$targets" ;;
  --smoke)
    seconds=${2:-5}
    cargo +nightly fuzz build >&2
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    for t in $targets; do
      mkdir -p "$scratch/$t"
      echo "== $t, $seconds s"
      run "$t" "$seconds" "$scratch/$t" "fuzz/corpus/$t"
    done
    ;;
  "" | -*) echo "usage: $0 TARGET SECONDS | --smoke [SECONDS] | --list" >&2; exit 2 ;;
  *)
    [ $# -eq 2 ] || { echo "usage: $0 TARGET SECONDS" >&2; exit 2; }
    grep -qx "$1" <<<"$targets" || { echo "no target $1; targets: $(echo $targets)" >&2; exit 2; }
    mkdir -p "fuzz/corpus/$1"
    run "$1" "$2" "fuzz/corpus/$1"
    ;;
esac
