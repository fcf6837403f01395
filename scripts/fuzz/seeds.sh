#!/usr/bin/env bash
# Writes a seed corpus for every fuzz target into CORPUS/<target>/, made by pogo itself (and
# snarkjs for the .ptau importer), so that no binary seed files live in git.
# Usage: scripts/fuzz/seeds.sh CORPUS   (runs $POGO_BIN, default target/debug/pogo, built if missing)
set -euo pipefail
corpus=$(mkdir -p "$1" && cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
pogo=${POGO_BIN:-$root/target/debug/pogo}
[ -x "$pogo" ] || (cd "$root" && cargo build -p pogo-node --locked)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
seed() { mkdir -p "$corpus/$1"; cp "$2" "$corpus/$1/$(basename "$2")"; }

# A model, a trained one, the update between them, the fixed-point new model.
python3 "$root/scripts/demo_train.py" train "$tmp" >/dev/null
"$pogo" quantize "$tmp/base.safetensors" "$tmp/trained.safetensors" -o "$tmp/update.pogo" \
  --new "$tmp/new.safetensors" >/dev/null
for f in base trained new; do seed model_import "$tmp/$f.safetensors"; done
seed update_blob "$tmp/update.pogo"
# A block-sparse update (blob version 3: only the changed blocks listed).
"$pogo" quantize "$tmp/base.safetensors" "$tmp/trained.safetensors" -o "$tmp/sparse.pogo" \
  --new "$tmp/sparse-new.safetensors" --density 0.2 >/dev/null 2>&1
seed update_blob "$tmp/sparse.pogo"
for f in update sparse; do seed update_stream "$tmp/$f.pogo"; done
# A model's tree file.
"$pogo" commit "$tmp/base.safetensors" --tree-out "$tmp/base.tree" >/dev/null
seed tree_file "$tmp/base.tree"

# Keys of a small configuration, and a proof made with them.
"$pogo" setup --depth 3 --samples 1 --params-dir "$tmp/params" >/dev/null 2>&1
keys="$tmp/params/d3-s1"
seed key_manifest "$keys/manifest.json"
seed key_vk "$keys/vk.bin"
# key_setup reads the first byte as k - 1 (k = 1..=3) and the rest as the file: a setup of
# 2^1 powers, plus the real one.
python3 - "$corpus/key_setup" <<'PY'
import os, struct, sys
os.makedirs(sys.argv[1], exist_ok=True)
# k = 1: the header, 4 G1 points (generator (1, 2) in Montgomery form is not needed: zeros
# make the identity), 2 G2 points.
body = struct.pack("<I", 1) + bytes(64 * 4) + bytes(128 * 2)
open(os.path.join(sys.argv[1], "k1.bin"), "wb").write(bytes([0]) + body)
PY
"$pogo" prove "$tmp/base.safetensors" "$tmp/new.safetensors" "$tmp/update.pogo" --seed "0x$(printf "%064d" 1)" --samples 1 \
  --depth 3 --params-dir "$tmp/params" -o "$tmp/round.proof" >/dev/null 2>&1
seed proof_file "$tmp/round.proof"
python3 - "$tmp/round.proof" "$corpus/proof_bytes" <<'PY'
import json, os, sys
os.makedirs(sys.argv[2], exist_ok=True)
proof = bytes.fromhex(json.load(open(sys.argv[1]))["proof"][2:])
open(os.path.join(sys.argv[2], "proof.bin"), "wb").write(proof)
PY

# Task files, a keystore file, held-out batches, a leaf list.
for t in "$root"/tasks/*.json; do seed task_file "$t"; done
POGO_HOME="$tmp/home" POGO_PASSWORD=fuzz "$pogo" keys new fuzz >/dev/null
seed keystore "$tmp/home/keystore/fuzz.json"
mkdir -p "$corpus/held_out"
head -c 260 "$root/node/data/digits-heldout.bin" > "$corpus/held_out/digits"
printf 'Permission is hereby granted, free of charge, to any person obtaining a copy\n' > "$corpus/held_out/text"
mkdir -p "$corpus/leaf_list"
python3 -c "import sys; sys.stdout.buffer.write(bytes([3]) + bytes(range(32)) * 3)" > "$corpus/leaf_list/three"

# A small ceremony file from snarkjs (pinned in scripts/ptau); the first byte picks k = 3.
ptau="$root/scripts/ptau"
[ -d "$ptau/node_modules/snarkjs" ] || npm ci --prefix "$ptau" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
mkdir -p "$corpus/ptau"
"$ptau/node_modules/.bin/snarkjs" powersoftau new bn128 3 "$tmp/pot3.ptau" >/dev/null
{ printf '\002'; cat "$tmp/pot3.ptau"; } > "$corpus/ptau/pot3"
echo "seed corpus in $corpus" >&2
