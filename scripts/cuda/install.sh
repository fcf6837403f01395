#!/usr/bin/env bash
# Installs NVIDIA's CUDA 13.0 compiler, NVRTC, runtime and headers from PyPI wheels into
# a folder of the project's (no GPU, no driver and no system CUDA needed), and prints that
# folder: the CUDA_HOME to build `--features gpu` with (see `scripts/cuda/env.sh`).
#
# CUDA 13.0 is pinned because it is what the device hosts' driver (580) runs: PTX from a
# newer NVRTC or nvcc would not load there. `--libs` installs cuBLAS and cuRAND instead,
# which candle's CUDA backend links against (about 700 MB installed), into a folder of their own.
# With --nvrtc-only it installs NVRTC alone (what the kernel-compilation test needs, about
# 90 MB download) into a folder of its own.
# Usage: scripts/cuda/install.sh [--nvrtc-only | --libs]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dest="${CARGO_TARGET_DIR:-$root/target}/tools/cuda-13.0"
pkgs=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-nvrtc==13.0.88
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-cccl==13.0.85
)
if [ "${1:-}" = --nvrtc-only ]; then
  dest="$dest-nvrtc"
  pkgs=(nvidia-cuda-nvrtc==13.0.88)
elif [ "${1:-}" = --libs ]; then
  dest="$dest-libs"
  pkgs=(nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35)
elif [ $# -gt 0 ]; then
  echo "usage: scripts/cuda/install.sh [--nvrtc-only | --libs]" >&2
  exit 2
fi
stamp="$dest/.installed-$(printf '%s\n' "${pkgs[@]}" | sha256sum | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  echo "installing the CUDA 13.0 toolkit from PyPI into $dest (once)" >&2
  tmp="$dest.tmp"
  rm -rf "$tmp"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
    --target "$tmp/site" "${pkgs[@]}" >&2
  # One CUDA_HOME: the wheels each bring bin/, include/ and lib/ under nvidia/cu13.
  cu="$tmp/site/nvidia/cu13"
  [ -d "$cu" ] || { echo "unexpected wheel layout: $cu is missing" >&2; exit 1; }
  mkdir -p "$cu/lib64"
  for f in "$cu"/lib/*; do ln -sf "../lib/$(basename "$f")" "$cu/lib64/$(basename "$f")"; done
  # Unversioned names for the linker and for dynamic loading (cudarc asks for libnvrtc.so).
  for f in "$cu"/lib/lib*.so.*; do
    base="${f%%.so.*}.so"
    [ -e "$base" ] || ln -s "$(basename "$f")" "$base"
  done
  if [ -f "$cu/include/cuda.h" ]; then
    # A link-time stand-in for the driver library (libcuda.so.1 comes with the driver, not with
    # any wheel): every driver entry point cuda.h declares, old and versioned names, each a
    # stub. Only for linking: lib/stubs must never be on LD_LIBRARY_PATH when a program runs.
    mkdir -p "$cu/lib/stubs"
    { gcc -E -P "$cu/include/cuda.h"; gcc -E -P -D__CUDA_API_VERSION_INTERNAL "$cu/include/cuda.h"; } 2>/dev/null \
      | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d ' (' | sort -u \
      | sed 's/.*/int &(void) { return 999; }/' >"$cu/lib/stubs/libcuda.c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$cu/lib/stubs/libcuda.so" "$cu/lib/stubs/libcuda.c"
  fi
  rm -rf "$dest"
  mv "$tmp" "$dest"
  touch "$stamp"
fi
echo "$dest/site/nvidia/cu13"
