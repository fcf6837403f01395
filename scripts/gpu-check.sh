#!/usr/bin/env bash
# The GPU check: one short run on a GPU host that checks and measures pogo's GPU paths and
# writes OUT/gpu-check.json (GPU, driver, CUDA version, date, every figure), the log, and
# the GPU's proofs (for `pogo verify-proof --evm` back here).
#
#   scripts/gpu-check.sh --build        # here, on any machine: build the binaries that travel
#   scripts/gpu-check.sh --dry-run      # here: every step that needs no GPU, at small sizes
#   scripts/gpu-check.sh --out DIR      # on the GPU host: nothing is built there
#   scripts/gpu-check.sh --evm-check DIR # here again: the GPU's proofs (DIR/*.proof) in the EVM
#
# What is built where. --build compiles test-profile binaries here, with the CUDA toolkit
# from PyPI (scripts/cuda/env.sh; no GPU, driver or system CUDA needed), strips them and
# xz-compresses them into target/gpu-check/ (POGO_GPU_PACK names another folder): `pogo-gpu`
# (features gpu: GPU commitments, CPU proving and training; starts anywhere, 7 MB),
# `pogo-gpu-prove` (gpu-prove: halo2-axiom-gpu's CUDA prover; links the driver, 9 MB) and,
# with POGO_GPU_TRAIN=1 (which also installs cuBLAS and cuRAND), `pogo-gpu-train` (gpu-train:
# candle's CUDA backend; 12 MB). That folder and the checkout are all the GPU host needs:
# nothing is compiled there but the commitment kernels, by NVRTC for the device found. The
# host's own CUDA provides NVRTC, the runtime, cuBLAS and cuRAND; its driver, libcuda.
#
# Steps, each bounded by `timeout`, results written as they come (a run cut short still
# reports what it did); the whole run takes about 7 minutes on an H200 host (measured by
# parts in docs/BENCHMARKS.md, "GPU"):
#   1. the host: GPU, driver, CUDA, CPU cores;
#   2. commitments: GPU roots == CPU roots (random models, every level; a 10^8-weight
#      model), then weights/s on POGO_GPU_WEIGHTS (10^9) weights made on the host, against
#      every CPU core; then the kernels built the other ways (a reduction after every
#      product, as first built; multiplication inlined);
#   2b. streamed commitments (`pogo commit DIR --gpu --tree-out`): a synthetic sharded BF16
#      checkpoint of POGO_GPU_STREAM_WEIGHTS (2.5·10^8) weights made on the host, committed
#      on the CPU and on the GPU a chunk at a time: the same root and tree file, and the
#      wall time of each;
#   3. proving: keys by `pogo setup` (dev setup, the same keys for both provers), then
#      `pogo bench prove` for D = 20 and D = 24 (POGO_GPU_DEPTHS), S = 32, on the CPU
#      cores and on the GPU, each proof verified natively; the GPU's proofs come back;
#   4. training, when a `gpu-train` binary was built (POGO_GPU_TRAIN=1 at --build): both
#      shipped tasks on the CPU cores and on the GPU (steps/s, and the losses, whose
#      difference is the CPU-vs-GPU difference a verifier would see);
# POGO_GPU_STEPS (default "commit stream variants prove train") picks steps and POGO_GPU_VARIANTS
# the other kernel builds (default "narrow-dot inline-mul"; "max-registers=N" caps
# registers), for a second run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
target="${CARGO_TARGET_DIR:-$root/target}"
pack="${POGO_GPU_PACK:-$target/gpu-check}"
mode=run
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) mode=build ;;
    --dry-run) mode=dry ;;
    --out) out="$2"; shift ;;
    --evm-check) mode=evm; out="$2"; shift ;;
    -h|--help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$mode" = build ]; then
  # shellcheck source=cuda/env.sh
  source "$here/cuda/env.sh"
  mkdir -p "$pack"
  builds=(gpu:pogo-gpu gpu-prove:pogo-gpu-prove)
  [ "${POGO_GPU_TRAIN:-0}" = 1 ] && builds+=(gpu-train:pogo-gpu-train)
  for b in "${builds[@]}"; do
    features="${b%%:*}" name="${b##*:}"
    echo "building $name (test profile, features $features)" >&2
    (cd "$root" && cargo build --locked -p pogo-node --bin pogo --features "$features")
    objcopy --strip-all "$target/debug/pogo" "$pack/$name"
    xz -9 -T0 -f "$pack/$name"
  done
  ls -l "$pack" >&2
  exit 0
fi

if [ "$mode" = evm ]; then
  # The keys are the dev setup's, so the same here as on the GPU host: make them, export
  # the Solidity verifier and check every returned proof with it in revm.
  bin=$(mktemp)
  trap 'rm -f "$bin"' EXIT
  xz -d -c "$pack/pogo-gpu.xz" >"$bin" && chmod +x "$bin"
  params="$target/gpu-check-params"
  solc=$("$here/solc/install.sh")
  shopt -s nullglob
  proofs=("$out"/d*-s*-gpu.proof)
  [ ${#proofs[@]} -gt 0 ] || { echo "no d*-s*-gpu.proof in $out" >&2; exit 1; }
  for proof in "${proofs[@]}"; do
    name=$(basename "$proof" -gpu.proof)
    d=${name#d}; d=${d%%-*}; s=${name##*-s}
    [ -f "$params/$name/manifest.json" ] || "$bin" setup --depth "$d" --samples "$s" --params-dir "$params" >&2
    [ -f "$params/$name/verifier.bin" ] || "$bin" export-verifier --depth "$d" --samples "$s" --params-dir "$params" --solc "$solc" >&2
    "$bin" verify-proof "$proof" --evm --params-dir "$params" --json
  done
  exit 0
fi

out="${out:-${OUT:-$target/gpu-check-out}}"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$out/gpu-check.log"
: >"$log"
say() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$log" >&2; }

unpack() { # NAME -> path of the runnable binary, or nothing
  [ -f "$pack/$1.xz" ] || return 0
  if command -v xz >/dev/null; then xz -d -c "$pack/$1.xz" >"$work/$1"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$pack/$1.xz" "$work/$1"
  fi
  chmod +x "$work/$1"
  echo "$work/$1"
}
cpu_bin=$(unpack pogo-gpu)
[ -n "$cpu_bin" ] || { echo "no $pack/pogo-gpu.xz: run scripts/gpu-check.sh --build first" >&2; exit 1; }
gpu_bin=$(unpack pogo-gpu-prove)
train_bin=$(unpack pogo-gpu-train)

# NVRTC, the CUDA runtime and (for training) cuBLAS and cuRAND from the host's own CUDA
# (the wheels' 200 MB NVRTC stays behind); here, the wheels'.
if [ "$mode" = run ]; then
  mkdir -p "$work/lib"
  for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    /opt/*/.venv/lib/python3*/site-packages/nvidia/cu13/lib; do
    [ -d "$dir" ] || continue
    export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$dir"
    if [ ! -e "$work/lib/libnvrtc.so" ] && compgen -G "$dir/libnvrtc.so.*" >/dev/null; then
      ln -sf "$(ls "$dir"/libnvrtc.so.* | head -1)" "$work/lib/libnvrtc.so"
    fi
  done
  export LD_LIBRARY_PATH="$work/lib:$LD_LIBRARY_PATH"
else
  # shellcheck source=cuda/env.sh
  source "$here/cuda/env.sh"
fi

weights="${POGO_GPU_WEIGHTS:-1000000000}"
cpu_weights="${POGO_CPU_WEIGHTS:-100000000}"
depths="${POGO_GPU_DEPTHS:-20 24}"
samples=32
if [ "$mode" = dry ]; then weights=2000000 cpu_weights=1000000 depths=3 samples=2; fi

say "host"
{
  nproc
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || echo "no nvidia-smi"
  (nvcc --version 2>/dev/null | tail -1) || echo "no nvcc"
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
} 2>&1 | tee -a "$log" >&2

# Each step writes $work/NAME.json; `collect` merges them into $out/gpu-check.json.
collect() {
  python3 - "$work" "$out" "$mode" <<'EOF'
import datetime, glob, json, os, subprocess, sys
work, out, mode = sys.argv[1:4]
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip() or None
    except Exception:
        return None
result = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "mode": mode,
    "gpu": sh("nvidia-smi --query-gpu=name --format=csv,noheader"),
    "driver": sh("nvidia-smi --query-gpu=driver_version --format=csv,noheader"),
    "cuda": sh("nvcc --version | tail -1"),
    "cpu_cores": os.cpu_count(),
    "cpu_model": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
}
for path in sorted(glob.glob(os.path.join(work, "*.json"))):
    name = os.path.basename(path)[:-5]
    try:
        with open(path) as f:
            result[name] = json.load(f)
    except Exception as e:
        result[name] = {"error": f"unreadable: {e}"}
with open(os.path.join(out, "gpu-check.json"), "w") as f:
    json.dump(result, f, indent=1)
EOF
}

# step NAME SECONDS COMMAND...: runs it, keeps its JSON (stdout) or the error, and its time.
step() {
  local name="$1" limit="$2"
  shift 2
  say "$name: $*"
  local start end rc=0
  start=$(date +%s%N)
  timeout "$limit" "$@" >"$work/$name.out" 2>>"$log" || rc=$?
  end=$(date +%s%N)
  python3 - "$work/$name.out" "$work/$name.json" "$rc" "$(( (end - start) / 1000000 ))" <<'EOF'
import json, sys
src, dst, rc, ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
text = open(src).read().strip()
try:
    value = json.loads(text.splitlines()[-1]) if text else {}
except Exception:
    value = {"output": text[-2000:]}
if not isinstance(value, dict):
    value = {"value": value}
value["wall_seconds"] = ms / 1000
if rc:
    value["error"] = f"exit {rc}" + (" (timed out)" if rc == 124 else "") + ": see gpu-check.log"
json.dump(value, open(dst, "w"))
EOF
  tail -c 600 "$work/$name.json" | tee -a "$log" >&2
  echo >&2
  collect
}

steps="${POGO_GPU_STEPS:-commit stream variants prove train}"
commit_bin="${gpu_bin:-$cpu_bin}"
[ "$mode" = dry ] && commit_bin="$cpu_bin"
if [[ " $steps " == *" commit "* ]]; then
  step commit 240 "$commit_bin" bench commit --gpu --weights "$weights" --cpu-weights "$cpu_weights" --json
fi
if [[ " $steps " == *" stream "* ]]; then
  stream_weights="${POGO_GPU_STREAM_WEIGHTS:-250000000}"
  [ "$mode" = dry ] && stream_weights=2000000
  say "stream: making a checkpoint of $stream_weights weights"
  python3 "$here/bench/make-checkpoint.py" "$work/stream-model" "$stream_weights" --shards 3 >>"$log" 2>&1
  step commit_stream_cpu 600 "$commit_bin" commit "$work/stream-model" --tree-out "$work/stream-cpu.tree" --json
  step commit_stream_gpu 600 "$commit_bin" commit "$work/stream-model" --gpu --tree-out "$work/stream-gpu.tree" --json
  same=false
  cmp -s "$work/stream-cpu.tree" "$work/stream-gpu.tree" && same=true
  echo "{\"weights\": $stream_weights, \"same_tree_file\": $same}" >"$work/commit_stream.json"
  rm -rf "$work/stream-model" "$work"/stream-*.tree
  collect
fi
if [[ " $steps " == *" variants "* ]]; then
  # Other builds of the kernels, against which the default was chosen (GPU only).
  for variant in ${POGO_GPU_VARIANTS:-narrow-dot inline-mul}; do
    flag="--gpu-${variant%%=*}"
    args=("$flag")
    [[ "$variant" == *=* ]] && args+=("${variant##*=}")
    step "commit_${variant//[-=]/_}" 120 "$commit_bin" bench commit --gpu "${args[@]}" --weights "$weights" \
      --cpu-weights 0 --repeat 2 --json
  done
fi

params="$work/params"
[[ " $steps " == *" prove "* ]] || depths=""
for d in $depths; do
  step "setup_d$d" 240 "$cpu_bin" setup --depth "$d" --samples "$samples" --params-dir "$params" --json
  step "prove_d${d}_cpu" 240 "$cpu_bin" bench prove --depth "$d" --samples "$samples" --params-dir "$params" --proof-dir "$work/proofs" --json
  if [ -n "$gpu_bin" ]; then
    step "prove_d${d}_gpu" 240 "$gpu_bin" bench prove --depth "$d" --samples "$samples" --params-dir "$params" --proof-dir "$work/proofs" --json
    [ -f "$work/proofs/d$d-s$samples-gpu.proof" ] && cp "$work/proofs/d$d-s$samples-gpu.proof" "$out/"
  fi
done

if [ -n "$train_bin" ] && [[ " $steps " == *" train "* ]]; then
  for task in digits:20 licenses:1; do
    [ "$mode" = dry ] && task="${task%%:*}:1"
    for dev in cpu gpu; do
      flag=() bin="$train_bin"
      [ "$dev" = gpu ] && flag=(--gpu)
      # Here, with no driver, the gpu-train binary cannot start: the CPU run uses the other.
      [ "$mode" = dry ] && [ "$dev" = cpu ] && bin="$cpu_bin"
      step "train_${task%%:*}_$dev" 150 "$bin" train "$root/tasks/${task%%:*}.json" --rounds "${task##*:}" \
        "${flag[@]}" --out "$work/train-$dev" --json
    done
  done
fi
collect
say "done: $out/gpu-check.json"

if [ "$mode" = dry ]; then
  python3 - "$out/gpu-check.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
problems = []
ran = lambda name: name in r
if ran("commit"):
    c = r["commit"]
    if "cpu_root" not in c: problems.append("the CPU commitment step failed")
    if not (str(c.get("gpu", "")).startswith("unavailable") or "gpu_root" in c): problems.append("the GPU step neither ran nor said why not")
    if not str(c.get("gpu_kernels_nvrtc", "")).startswith("compiled"): problems.append("NVRTC did not compile the kernels")
if ran("commit_stream") and not r["commit_stream"].get("same_tree_file"): problems.append("the streamed GPU commit's tree file is not the CPU's")
for variant in [k for k in r if k.startswith("commit_") and not k.startswith("commit_stream")]:
    if not str(r[variant].get("gpu_kernels_nvrtc", "")).startswith("compiled"): problems.append(f"NVRTC did not compile the kernels of {variant}")
if ran("setup_d3") and "error" in r["setup_d3"]: problems.append("pogo setup failed")
if ran("prove_d3_cpu") and not r["prove_d3_cpu"].get("proofs", [{}])[0].get("verified_natively"): problems.append("the CPU proof was not made and verified")
if ran("train_digits_cpu") and not r["train_digits_cpu"].get("steps_per_second"): problems.append("CPU training failed")
if not any(k.startswith(("commit", "setup", "prove", "train")) for k in r): problems.append("no step ran")
if problems:
    sys.exit("dry run failed: " + "; ".join(problems))
print("dry run passed: every step that needs no GPU ran", file=sys.stderr)
EOF
fi
