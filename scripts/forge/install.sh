#!/usr/bin/env bash
# Installs the pinned forge (package-lock.json here; the npm package is 81 MB) once, and
# prints the binary's path.
# Usage: scripts/forge/install.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../foundry/install-binary.sh" "$here" forge
