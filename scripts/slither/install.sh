#!/usr/bin/env bash
# Installs the pinned Slither (requirements.txt, from PyPI) once, into a virtual environment
# under the cargo target folder, and prints the `slither` executable's path.
# Usage: scripts/slither/install.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="${CARGO_TARGET_DIR:-$root/target}/tools/slither"
stamp="$venv/requirements.txt"
if ! cmp -s "$here/requirements.txt" "$stamp" 2>/dev/null; then
  echo "installing Slither into $venv (once, from PyPI)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi
echo "$venv/bin/slither"
