#!/usr/bin/env bash
# Makes a small powers-of-tau file with snarkjs (a fresh ceremony of 2^16 powers and one
# contribution), the way the Ethereum ecosystem makes them, for the ptau importer's tests.
# Usage: scripts/ptau/make-test-ptau.sh OUT.ptau
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$here/node_modules/snarkjs" ] || npm ci --prefix "$here" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
snarkjs="$here/node_modules/.bin/snarkjs"
"$snarkjs" powersoftau new bn128 16 "$tmp/pot0.ptau" >/dev/null
"$snarkjs" powersoftau contribute "$tmp/pot0.ptau" "$tmp/pot1.ptau" --name=pogo-test -e="pogo test entropy" >/dev/null
mkdir -p "$(dirname "$out")"
mv "$tmp/pot1.ptau" "$out"
