#!/usr/bin/env bash
# Entry point of the GPU container (Dockerfile): makes the NVIDIA driver's Vulkan ICD visible to the
# Vulkan loader, says in one line whether a GPU driver is there, then runs the command.
# The NVIDIA Container Toolkit mounts libGLX_nvidia.so.0 and, in recent versions, its ICD file
# nvidia_icd.json when NVIDIA_DRIVER_CAPABILITIES includes `graphics`. Older toolkits mount the
# library only: then this writes the ICD file itself.
set -euo pipefail
candidates=${DIFFUSION_ICD_CANDIDATES:-/etc/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  icd=""
  for f in $candidates; do
    if [ -f "$f" ]; then icd=$f; break; fi
  done
  if [ -z "$icd" ] && ldconfig -p 2>/dev/null | grep 'libGLX_nvidia\.so\.0' >/dev/null; then
    icd=${TMPDIR:-/tmp}/nvidia_icd.json
    printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "libGLX_nvidia.so.0", "api_version": "1.3.0"}}\n' >"$icd"
  fi
  if [ -n "$icd" ]; then
    export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd
    echo "GPU: NVIDIA Vulkan driver ($icd); the engine picks WebGPU on it (DIFFUSION_ENGINE=${DIFFUSION_ENGINE:-auto})" >&2
  else
    echo "GPU: no NVIDIA Vulkan driver visible (run with --gpus all; NVIDIA_DRIVER_CAPABILITIES must include graphics): the engine uses wasm on the CPUs" >&2
  fi
fi
if [ $# -eq 0 ]; then set -- bash; fi
exec "$@"
