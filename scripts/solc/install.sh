#!/usr/bin/env bash
# Installs the pinned solc-js (package-lock.json) beside the `solc` wrapper, offline after the
# first run, and prints the wrapper's path. Put that folder on PATH, or pass it as --solc.
# Usage: scripts/solc/install.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$here/node_modules/solc/soljson.js" ] || npm ci --prefix "$here" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
echo "$here/solc"
