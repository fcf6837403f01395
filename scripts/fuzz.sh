#!/usr/bin/env bash
# Builds the fuzz targets of scripts/fuzz (cargo-fuzz, libFuzzer, on the stable toolchain:
# coverage instrumentation without a sanitizer) and runs every target for a bounded time,
# failing on any crash, out-of-memory or slow input. Seeds come from scripts/fuzz/seeds.sh;
# what the fuzzer finds accumulates in target/fuzz-corpus/<target>/, crashes in
# scripts/fuzz/artifacts/<target>/.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 30 s, every target)
# A release run: scripts/fuzz.sh 3600
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
root=$PWD
# Everything goes under the cargo target folder (CARGO_TARGET_DIR if set).
base=${CARGO_TARGET_DIR:-$root/target}
tools="$base/tools"
# The pinned cargo-fuzz, installed once under target/ (a registry package, built from source).
if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -q '0.13.2'; then
  echo "installing cargo-fuzz 0.13.2 into $tools (once, about 3 minutes)" >&2
  cargo install cargo-fuzz --version 0.13.2 --locked --root "$tools" --quiet
fi
export PATH="$tools/bin:$PATH"
# Instrumented builds stay apart from the workspace's own.
corpus="$base/fuzz-corpus"
POGO_BIN="$base/debug/pogo" scripts/fuzz/seeds.sh "$corpus"
export CARGO_TARGET_DIR="$base/fuzz"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list --fuzz-dir scripts/fuzz)
fi
echo "building ${#targets[@]} fuzz targets (the first build takes about 12 minutes on 2 cores)" >&2
cargo fuzz build -s none --fuzz-dir scripts/fuzz
mkdir -p "$base/fuzz-logs"
for t in "${targets[@]}"; do
  log="$base/fuzz-logs/$t.log"
  if ! cargo fuzz run -s none --fuzz-dir scripts/fuzz "$t" "$corpus/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz target $t failed: the input is in scripts/fuzz/artifacts/$t/, the log in $log" >&2
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  echo "fuzzed $t for $seconds s: $runs inputs, peak RSS $rss MB" >&2
done
echo "every fuzz target ran $seconds s without a crash, an out-of-memory or a timeout" >&2
