#!/usr/bin/env bash
# Memory benchmark of issue 19: wall time and peak RSS of `pogo commit` on synthetic sharded
# BF16 checkpoints, streamed (the default) and read whole (`--in-memory`, the path before
# streaming) in the same run, and of one opening read back from the tree file. Then, where
# the whole-model `quantize` fits in memory (it is not streamed yet), an update between two
# such checkpoints and `pogo apply` of it, streamed and whole.
#
# Usage: scripts/bench/memory.sh [WORK_DIR] [WEIGHTS...]
#   WORK_DIR  where the checkpoints and trees go (default /tmp/pogo-bench-memory; they are
#             2 bytes per weight, plus 0.6 for the tree, and are kept for reruns)
#   WEIGHTS   model sizes (default: 250000000 1000000000)
#   STEPS=commit or STEPS=apply (environment) runs only that half.
# Needs: cargo, python3, GNU time (/usr/bin/time). Prints a Markdown table.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="${1:-/tmp/pogo-bench-memory}"
shift $(($# > 0 ? 1 : 0))
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(250000000 1000000000)
[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is needed: apt-get install time" >&2; exit 1; }

echo "building the release pogo (cargo's progress follows)..." >&2
cargo build --release --locked -p pogo-node --manifest-path "$root/Cargo.toml" >&2
pogo="${CARGO_TARGET_DIR:-$root/target}/release/pogo"
mkdir -p "$work"

# Runs a command under GNU time; prints "wall_s peak_kib" and leaves its stdout in $work/out.json.
measure() {
  /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" > "$work/out.json"
  cat "$work/time.txt"
}
root_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/out.json" "${1:-root}"; }

echo "| weights | path | wall s | peak RSS MiB | M weights/s |"
echo "|---|---|---|---|---|"
for n in "${sizes[@]}"; do
  model="$work/bf16-$n"
  if [ ! -f "$model/model.safetensors.index.json" ]; then
    echo "writing a $n-weight checkpoint to $model..." >&2
    python3 "$root/scripts/bench/make-checkpoint.py" "$model" "$n" --shards 4 >&2
  fi
  row() { awk -v n="$n" -v path="$1" '{ printf "| %d | %s | %.1f | %.0f | %.2f |\n", n, path, $1, $2 / 1024, n / $1 / 1e6 }'; }
  once() { awk -v n="$n" -v path="$1" '{ printf "| %d | %s | %.2f | %.0f | – |\n", n, path, $1, $2 / 1024 }'; }
  steps="${STEPS:-commit apply}"
  if [[ " $steps " == *" commit "* ]]; then
  echo "streamed commit of $n weights..." >&2
  measure "$pogo" commit "$model" --json --tree-out "$model.tree" | row "streamed (\`commit --tree-out\`)"
  streamed_root="$(root_of)"
  blocks=$(( (n + 111) / 112 ))
  measure "$pogo" open "$model" --tree "$model.tree" --block $((blocks - 1)) --json | once "one opening (\`open --tree\`, last block)"
  # The whole-model path needs about 9 bytes of memory per weight; skip it where that is
  # more than the machine has free.
  available_kib=$(awk '/MemAvailable/ { print $2 }' /proc/meminfo)
  if [ $((n * 9 / 1024)) -lt "$available_kib" ]; then
    echo "in-memory commit of $n weights..." >&2
    measure "$pogo" commit "$model" --json --in-memory | row "whole model (\`commit --in-memory\`)"
    [ "$(root_of)" = "$streamed_root" ] || { echo "the roots differ: $(root_of) vs $streamed_root" >&2; exit 1; }
  else
    echo "| $n | whole model | skipped: needs about $((n * 9 / 1048576)) MiB, $((available_kib / 1024)) MiB free | | |"
  fi
  fi
  [[ " $steps " == *" apply "* ]] || continue
  available_kib=$(awk '/MemAvailable/ { print $2 }' /proc/meminfo)
  # quantize holds both models, the update and three trees: about 40 bytes per weight.
  if [ $((n * 40 / 1024)) -lt "$available_kib" ]; then
    trained="$work/bf16-$n-trained"
    [ -f "$trained/model.safetensors.index.json" ] || python3 "$root/scripts/bench/make-checkpoint.py" "$trained" "$n" --shards 4 --seed 2 >&2
    echo "quantize (whole models) of $n weights..." >&2
    measure "$pogo" quantize "$model" "$trained" -o "$work/update-$n.pogo" --new "$work/new-$n" --json | row "\`quantize\` (whole models, not streamed yet)"
    new_root="$(root_of new_root)"
    rm -rf "$work/applied-$n"
    echo "streamed apply of $n weights..." >&2
    measure "$pogo" apply "$model" "$work/update-$n.pogo" -o "$work/applied-$n" --expect-root "$new_root" --json | row "streamed \`apply\` (checks the base: two trees)"
    rm -rf "$work/applied-$n"
    echo "in-memory apply of $n weights..." >&2
    measure "$pogo" apply "$model" "$work/update-$n.pogo" -o "$work/applied-$n" --expect-root "$new_root" --json --in-memory | row "whole-model \`apply --in-memory\`"
    rm -rf "$work/applied-$n" "$work/new-$n"
  else
    echo "| $n | \`quantize\`, \`apply\` | skipped: quantize (not streamed) needs about $((n * 40 / 1048576)) MiB | | |"
  fi
done
