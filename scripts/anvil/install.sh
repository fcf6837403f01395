#!/usr/bin/env bash
# Installs the pinned Anvil (package-lock.json here) once, and prints the binary's path.
# Usage: scripts/anvil/install.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../foundry/install-binary.sh" "$here" anvil
