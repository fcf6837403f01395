#!/usr/bin/env bash
# Memory benchmark of issue 19: wall time and peak RSS of `pogo commit` on synthetic sharded
# BF16 checkpoints, streamed (the default) and read whole (`--in-memory`, the path before
# streaming) in the same run, and of one opening read back from the tree file. Then a round:
# `quantize` between two such checkpoints (keeping the three tree files), `apply` of the
# update, `export` of the new model and `prove` at the model's depth with S = 32 (from the
# tree files, and hashing them), each streamed and, where it fits in memory, whole.
#
# Usage: scripts/bench/memory.sh [WORK_DIR] [WEIGHTS...]
#   WORK_DIR  where the checkpoints and trees go (default /tmp/pogo-bench-memory; they are
#             2 bytes per weight, plus 0.6 for the tree, and are kept for reruns)
#   WEIGHTS   model sizes (default: 250000000 1000000000)
#   STEPS=commit or STEPS=round (environment) runs only that half.
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
  steps="${STEPS:-commit round}"
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
  [[ " $steps " == *" round "* ]] || continue
  trained="$work/bf16-$n-trained"
  [ -f "$trained/model.safetensors.index.json" ] || python3 "$root/scripts/bench/make-checkpoint.py" "$trained" "$n" --shards 4 --seed 2 >&2
  rm -rf "$work/new-$n" "$work/applied-$n" "$work/exported-$n"
  echo "streamed quantize of $n weights..." >&2
  trees=(--old-tree "$work/old-$n.tree" --new-tree "$work/new-$n.tree" --update-tree "$work/update-$n.tree")
  measure "$pogo" quantize "$model" "$trained" -o "$work/update-$n.pogo" --new "$work/new-$n" --json "${trees[@]}" | row "streamed \`quantize\` (three trees kept)"
  new_root="$(root_of new_root)"
  update_root="$(root_of update_root)"
  available_kib=$(awk '/MemAvailable/ { print $2 }' /proc/meminfo)
  # The whole-model quantize holds both models, the update and three trees: about 40
  # bytes per weight.
  if [ $((n * 40 / 1024)) -lt "$available_kib" ]; then
    echo "in-memory quantize of $n weights..." >&2
    measure "$pogo" quantize "$model" "$trained" -o "$work/update-$n-whole.pogo" --new "$work/new-$n-whole" --json --in-memory | row "whole-model \`quantize --in-memory\`"
    [ "$(root_of new_root)" = "$new_root" ] || { echo "the new roots differ" >&2; exit 1; }
    cmp "$work/update-$n.pogo" "$work/update-$n-whole.pogo" || { echo "the blobs differ" >&2; exit 1; }
    rm -rf "$work/new-$n-whole" "$work/update-$n-whole.pogo"
  else
    echo "| $n | whole-model \`quantize\` | skipped: needs about $((n * 40 / 1048576)) MiB | | |"
  fi
  echo "streamed apply of $n weights..." >&2
  measure "$pogo" apply "$model" "$work/update-$n.pogo" -o "$work/applied-$n" --expect-root "$new_root" --json | row "streamed \`apply\` (checks the base: two trees)"
  rm -rf "$work/applied-$n"
  if [ $((n * 12 / 1024)) -lt "$available_kib" ]; then
    echo "in-memory apply of $n weights..." >&2
    measure "$pogo" apply "$model" "$work/update-$n.pogo" -o "$work/applied-$n" --expect-root "$new_root" --json --in-memory | row "whole-model \`apply --in-memory\`"
    rm -rf "$work/applied-$n"
  fi
  echo "streamed export of $n weights..." >&2
  measure "$pogo" export "$work/new-$n" -o "$work/exported-$n" --dtype bf16 --json | row "streamed \`export --dtype bf16\`"
  rm -rf "$work/exported-$n"
  # Proving at the model's own depth, S = 32 (the insecure development setup: keys only).
  blocks=$(( (n + 111) / 112 ))
  depth=$(python3 -c "import sys; b=int(sys.argv[1]); print(max(1, (b - 1).bit_length()))" "$blocks")
  params="$work/params"
  [ -f "$params/d$depth-s32/manifest.json" ] || { echo "setup d$depth-s32..." >&2; "$pogo" setup --depth "$depth" --samples 32 --params-dir "$params" >&2; }
  seed="0x$(printf '5e%.0s' {1..32})"
  prove=("$pogo" prove "$model" "$work/new-$n" "$work/update-$n.pogo" --seed "$seed" --samples 32 --params-dir "$params" -o "$work/round-$n.proof" --json)
  echo "prove from tree files, $n weights..." >&2
  measure "${prove[@]}" "${trees[@]}" | once "\`prove\` d$depth-s32 from the tree files"
  [ "$(root_of new_root)" = "$new_root" ] && [ "$(root_of update_root)" = "$update_root" ] || { echo "proved other roots" >&2; exit 1; }
  echo "prove building the trees, $n weights..." >&2
  measure "${prove[@]}" | once "\`prove\` d$depth-s32, streamed, hashing the three trees"
  if [ $((n * 40 / 1024)) -lt "$available_kib" ]; then
    echo "in-memory prove of $n weights..." >&2
    measure "${prove[@]}" --in-memory | once "whole-model \`prove --in-memory\` d$depth-s32"
  fi
  rm -rf "$work/new-$n"
done
