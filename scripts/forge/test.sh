#!/usr/bin/env bash
# The contracts as a Foundry project (verifier/contracts), offline: installs the pinned forge,
# solc-js and Slither once, runs the Solidity tests (unit, invariant, the generated
# verifier), checks the gas snapshot (.gas-snapshot; `FORGE_SNAPSHOT=write` rewrites it), and
# runs Slither against its triage file. Works from any directory; extra arguments go to
# `forge test` (e.g. `--match-test invariant -vv`).
# Usage: scripts/forge/test.sh [forge test arguments]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
forge=$("$root/scripts/forge/install.sh")
"$root/scripts/solc/install.sh" >/dev/null
slither=$("$root/scripts/slither/install.sh")
cd "$root/verifier/contracts"
echo "forge test (the first compile with solc-js takes a few minutes)" >&2
"$forge" test "$@"
if [ "${FORGE_SNAPSHOT:-check}" = write ]; then
  "$forge" snapshot
else
  # A gas change shows as a diff here: rerun with FORGE_SNAPSHOT=write when it is meant.
  "$forge" snapshot --check
fi
# Slither has forge rebuild the contracts (not the tests) with build info, about a minute.
echo "slither (against slither.triage.json)" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
report="$tmp/slither.json" # a path that does not exist yet: Slither will not overwrite one
# Its own output folders, so that its forced rebuild leaves forge test's cache alone.
PATH="$(dirname "$forge"):$PATH" FOUNDRY_OUT=out-slither FOUNDRY_CACHE_PATH=cache-slither \
  "$slither" . --compile-force-framework foundry --foundry-out-directory out-slither --filter-paths "test/" \
  --json "$report" >"$tmp/slither.log" 2>&1 || true
[ -s "$report" ] || { cat "$tmp/slither.log" >&2; echo "slither wrote no report" >&2; exit 1; }
python3 "$root/scripts/slither/check.py" slither.triage.json <"$report"
