#!/usr/bin/env bash
# Installs the pinned forge (package-lock.json; the Linux x64 binary ships in the npm
# package, 81 MB) once, and prints the binary's path.
# Usage: scripts/forge/install.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(find "$here/node_modules/@foundry-rs/forge-linux-amd64" -type f -name forge 2>/dev/null | head -1 || true)
if [ -z "$bin" ]; then
  npm ci --prefix "$here" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
  bin=$(find "$here/node_modules/@foundry-rs/forge-linux-amd64" -type f -name forge | head -1)
fi
chmod +x "$bin"
echo "$bin"
