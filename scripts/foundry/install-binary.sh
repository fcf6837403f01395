#!/usr/bin/env bash
# Installs a Foundry tool pinned by the package-lock.json in DIR (the Linux x64 binary ships
# inside the npm package @foundry-rs/TOOL-linux-amd64) once, and prints the binary's path.
# Usage: scripts/foundry/install-binary.sh DIR TOOL   (what scripts/forge and scripts/anvil call)
set -euo pipefail
dir=$1
tool=$2
package="$dir/node_modules/@foundry-rs/$tool-linux-amd64"
bin=$(find "$package" -type f -name "$tool" 2>/dev/null | head -1 || true)
if [ -z "$bin" ]; then
  npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
  bin=$(find "$package" -type f -name "$tool" | head -1)
fi
[ -n "$bin" ] || { echo "npm installed no $tool binary under $package" >&2; exit 1; }
chmod +x "$bin"
echo "$bin"
