#!/usr/bin/env bash
# Records the proof the Solidity tests check the shipped generated verifier with
# (verifier/contracts/test/fixtures/d6-s2-dev0.proof): the demo's small model trained in
# plain Python, a 4-bit update, the INSECURE development keys for D = 6, S = 2 (seed 0,
# whose verifier is shipped in verifier/contracts/build/verifiers/d6-s2-dev0), and a proof
# for a fixed phase-2 seed; and the verifier's calldata for it with the inverse hints a
# miner appends (d6-s2-dev0.calldata). Rerun it when that shipped verifier changes.
# Usage: scripts/forge/record-proof.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --quiet -p pogo-node
pogo() { "$root/target/debug/pogo" "$@"; }
work=$(mktemp -d -t pogo-record.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 scripts/demo_train.py train "$work" >/dev/null
pogo quantize "$work/base.safetensors" "$work/trained.safetensors" -o "$work/update.pogo" --new "$work/new.safetensors"
pogo setup --depth 6 --samples 2 --params-dir "$work/params"
seed=0x$(printf 'pogo forge fixture' | sha256sum | cut -c1-64)
out="$root/verifier/contracts/test/fixtures/d6-s2-dev0.proof"
mkdir -p "$(dirname "$out")"
pogo prove "$work/base.safetensors" "$work/new.safetensors" "$work/update.pogo" --seed "$seed" --samples 2 \
  --depth 6 --params-dir "$work/params" -o "$out.tmp"
POGO_SOLC=$("$root/scripts/solc/install.sh") pogo export-verifier --depth 6 --samples 2 --params-dir "$work/params"
calldata="${out%.proof}.calldata"
pogo verify-proof "$out.tmp" --params-dir "$work/params" --evm --calldata-out "$calldata.tmp"
mv "$out.tmp" "$out"
mv "$calldata.tmp" "$calldata"
echo "recorded $out and $calldata" >&2
