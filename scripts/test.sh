#!/usr/bin/env bash
# Every test of the project, from a fresh clone: installs what the tests need, then runs them.
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# One build, run once: incremental compilation only adds its caches (4.4 GB of target/ when
# measured), and a clean CI run once ran out of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust from https://rustup.rs" >&2
  exit 1
fi
# The pinned Solidity compiler (npm solc-js 0.8.19) the EVM tests compile with; installed
# once here so parallel test binaries never race on it.
scripts/solc/install.sh >/dev/null
# The pinned Anvil (npm @foundry-rs/anvil-linux-amd64) the JSON-RPC integration test starts.
scripts/anvil/install.sh >/dev/null
# Debian's qemu-user, to run the reference evaluator under CPUs without AVX-512, AVX2 or FMA.
scripts/qemu/install.sh >/dev/null
echo "building and running every test (a first run on a clean clone takes about 45 to 60 minutes on 2 cores and at most 5 GB in target/)" >&2
POGO_REQUIRE_QEMU=1 cargo test --workspace --locked
# The contracts as a Foundry project: Solidity unit and invariant tests, the shipped verifier
# against a recorded proof, the gas snapshot, and Slither against its triage file (forge and
# Slither pinned, from npm and PyPI; the first solc-js compile takes a few minutes).
scripts/forge/test.sh
# The GPU code without a GPU: the `gpu` build of the prover, its tests, and NVRTC compiling
# the commitment kernels to PTX for sm_90 (NVRTC from PyPI, about 90 MB, installed once).
nvrtc=$(scripts/cuda/install.sh --nvrtc-only)
LD_LIBRARY_PATH="$nvrtc/lib" POGO_REQUIRE_NVRTC=1 cargo test --locked -p pogo-prover --features gpu --test gpu_kernels
# A bounded run of every fuzz target of scripts/fuzz (libFuzzer through the pinned
# cargo-fuzz; the instrumented build takes about 12 minutes on 2 cores the first time),
# failing on any crash, out-of-memory or slow input. POGO_FUZZ_SECONDS sets the time per
# target; a release run is `scripts/fuzz.sh 3600`.
scripts/fuzz.sh "${POGO_FUZZ_SECONDS:-20}"
