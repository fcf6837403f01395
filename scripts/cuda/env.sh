# Source this to build `--features gpu` on a machine without a GPU or system CUDA:
#   source scripts/cuda/env.sh && cargo build --release -p pogo-node --features gpu
# It installs the pinned CUDA 13.0 wheels once (scripts/cuda/install.sh) and points nvcc,
# the linker and NVRTC at them. Kernels are built for Hopper (sm_90) unless CUDA_ARCH says
# otherwise.
_pogo_cuda_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CUDA_HOME=$("$_pogo_cuda_here/install.sh") || return 1
export CUDA_HOME CUDA_PATH="$CUDA_HOME" CUDA_ROOT="$CUDA_HOME" CUDA_TOOLKIT_ROOT_DIR="$CUDA_HOME"
export PATH="$CUDA_HOME/bin:$PATH"
# Link-time only: the driver stub and the toolkit's libraries. At run time the driver's own
# libcuda.so.1 is found by the system loader.
export LIBRARY_PATH="$CUDA_HOME/lib/stubs:$CUDA_HOME/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
# NVRTC (and its builtins) for the kernel-compilation test and for `--gpu` runs here.
export LD_LIBRARY_PATH="$CUDA_HOME/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# POGO_CUDA_LIBS=1 adds cuBLAS and cuRAND (for `--features gpu-train`).
if [ "${POGO_CUDA_LIBS:-0}" = 1 ]; then
  _pogo_cuda_libs=$("$_pogo_cuda_here/install.sh" --libs) || return 1
  export LIBRARY_PATH="$_pogo_cuda_libs/lib:$LIBRARY_PATH" LD_LIBRARY_PATH="$_pogo_cuda_libs/lib:$LD_LIBRARY_PATH"
  unset _pogo_cuda_libs
fi
export CUDA_ARCH="${CUDA_ARCH:-90}" CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
export CUDARC_CUDA_VERSION=13000
unset _pogo_cuda_here
