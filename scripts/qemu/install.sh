#!/usr/bin/env bash
# Debian's qemu-user (7.2, bookworm), for the test that runs the reference evaluator under
# emulated CPUs without AVX2, FMA or AVX-512 (node/tests/reproducible_eval.rs). Installed
# once; prints the path of qemu-x86_64.
# Usage: scripts/qemu/install.sh
set -euo pipefail
if ! command -v qemu-x86_64 >/dev/null; then
  echo "installing Debian's qemu-user 7.2 (once, about 30 s)" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  if ! $sudo apt-get install -y -q --no-install-recommends 'qemu-user=1:7.2+dfsg-7*' >/dev/null 2>&1; then
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q --no-install-recommends 'qemu-user=1:7.2+dfsg-7*' >/dev/null
  fi
fi
command -v qemu-x86_64
