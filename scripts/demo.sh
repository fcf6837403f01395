#!/usr/bin/env bash
# The end-to-end path that exists today: pogo trains a task in rounds of 4-bit updates; a
# model trained outside pogo becomes a 4-bit update
# with Poseidon Merkle commitments; a verifier rebuilds it exactly, checks the roots and
# re-evaluates the loss; the miner proves sampled blocks with halo2 and anyone verifies the
# proof natively and in an EVM with the generated Solidity verifier; edited proofs and
# corrupted updates are refused; and `pogo demo` runs the round protocol end to end (task
# registration, train, commit, randomness, prove, on-chain verification, three verifiers
# attesting, fraud proofs, finalize; cheating miners and a lazy verifier slashed) on the
# embedded chain.
# Usage: scripts/demo.sh [WORK_DIR]   (needs cargo, python3, and node/npm for the pinned solc-js)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d -t pogo-demo.XXXXXX)}
mkdir -p "$work"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Build pogo (the first build takes about 6 minutes on 2 cores with nothing else running, and 1.4 GB in target/; later ones seconds)"
cargo build -p pogo-node
pogo() { ./target/debug/pogo "$@"; }

step "Useful work inside pogo: train the 8x8-digits task in rounds published as 4-bit updates (candle, CPU)"
pogo train tasks/digits.json --rounds 10 --baseline --out "$work/train"
echo "loss curve: $work/train/loss.png (4-bit updates vs plain f32), numbers in $work/train/loss.csv"

step "Train a small MLP outside pogo (plain Python), export base and trained safetensors"
python3 scripts/demo_train.py train "$work"

step "Commit to the base model (Poseidon Merkle root over 112-weight blocks)"
pogo commit "$work/base.safetensors"

step "Miner: quantize the training delta to 4 bits per weight, one scale per block"
pogo quantize "$work/base.safetensors" "$work/trained.safetensors" -o "$work/update.pogo" --new "$work/new.safetensors"
new_root=$(pogo commit "$work/new.safetensors" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["root"])')

step "Miner: open block 2 of the new model (what a proof samples)"
pogo open "$work/new.safetensors" --block 2

step "Verifier: rebuild the new model from the base model and the update blob"
pogo apply "$work/base.safetensors" "$work/update.pogo" -o "$work/rebuilt.safetensors"
rebuilt_root=$(pogo commit "$work/rebuilt.safetensors" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["root"])')
[ "$rebuilt_root" = "$new_root" ] || { echo "roots differ: $rebuilt_root vs $new_root"; exit 1; }
echo "rebuilt root equals the miner's committed root: $new_root"

step "Verifier: evaluate the loss on a held-out batch (old vs new, 4-bit update applied)"
pogo export "$work/new.safetensors" -o "$work/new-f32.safetensors" >/dev/null
old_loss=$(python3 scripts/demo_train.py eval "$work/base.safetensors")
new_loss=$(python3 scripts/demo_train.py eval "$work/new-f32.safetensors")
echo "held-out loss: old $old_loss -> new $new_loss"
python3 -c "import sys; sys.exit(0 if $new_loss < $old_loss else 1)" && echo "attest: positive (the loss fell)"

step "Keys for UpdateCircuit{D = 3, S = 2} (INSECURE development setup)"
pogo setup --depth 3 --samples 2 --params-dir "$work/params" --force

step "Miner: prove that 2 blocks sampled by phase-2 randomness were applied exactly"
seed=0x$(python3 -c 'import os; print(os.urandom(32).hex())')
pogo prove "$work/base.safetensors" "$work/new.safetensors" "$work/update.pogo" --seed "$seed" --samples 2 \
  --params-dir "$work/params" -o "$work/round.proof"

step "Anyone: verify the proof natively"
pogo verify-proof "$work/round.proof" --params-dir "$work/params"

step "Contract integrators: generate the Solidity verifier and check the proof in an EVM (revm, Prague)"
solc=$(scripts/solc/install.sh)
pogo export-verifier --depth 3 --samples 2 --params-dir "$work/params" --solc "$solc"
pogo verify-proof "$work/round.proof" --params-dir "$work/params" --evm

step "A proof whose public inputs were edited is refused"
python3 - "$work/round.proof" "$work/edited.proof" <<'PY'
import json, sys
p = json.load(open(sys.argv[1])); p["indices"] = [(i + 1) % p["blocks"] for i in p["indices"]]
json.dump(p, open(sys.argv[2], "w"))
PY
if pogo verify-proof "$work/edited.proof" --params-dir "$work/params"; then
  echo "edited proof was accepted"; exit 1
fi

step "A corrupted update blob is refused, and nothing is written"
python3 - "$work/update.pogo" "$work/corrupt.pogo" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[-5] ^= 0xFF; open(sys.argv[2], "wb").write(b)
PY
if pogo apply "$work/base.safetensors" "$work/corrupt.pogo" -o "$work/bad.safetensors"; then
  echo "corrupt blob was accepted"; exit 1
fi
[ ! -e "$work/bad.safetensors" ] && echo "refused; no output file"

step "The node: an owner, competing miners, verifiers and a finalizer on the embedded chain; three cheaters slashed, one by a fraud proof, and a lazy verifier with them"
# The digits MLP has 4,810 weights, 43 blocks of 112: its tree needs depth D = 6 (2^6 >= 43),
# not the D = 3 of the 6-block model above, so the node demo makes (or reuses) keys for
# UpdateCircuit{D = 6, S = 2}: once, about a minute on 2 cores.
echo "(first run: making the D = 6 keys the digits model needs takes about a minute)"
POGO_SOLC="$solc" pogo demo --rounds 2 --dir "$work/node-demo" --params-dir "$work/params"

step "Done: files in $work"
