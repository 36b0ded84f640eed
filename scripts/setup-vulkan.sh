#!/usr/bin/env bash
# Installs a Vulkan loader and Mesa's software Vulkan driver (lavapipe), so the WebGPU engine
# (Dawn, npm `webgpu`) can run without a GPU: the test suite exercises the GPU code path on it.
# Dawn needs Vulkan features (shader*ArrayDynamicIndexing) that bookworm's Mesa 22 lacks, so on
# Debian bookworm this takes Mesa from bookworm-backports (25.x); newer Debian/Ubuntu use their own.
# Quiet when all is there; safe to run repeatedly. Needs root (or sudo) for apt.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

# Mesa's lavapipe ICD file: lvp_icd.json (Mesa 25) or lvp_icd.<arch>.json (older).
have_lavapipe() {
  ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 && ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1 ' >/dev/null
}
# Mesa major version of the installed lavapipe (0 when absent).
mesa_major() {
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  v=${v#*:}
  echo "${v%%.*}" | grep -E '^[0-9]+$' || echo 0
}

if have_lavapipe && [ "$(mesa_major)" -ge 23 ]; then exit 0; fi

if ! command -v apt-get >/dev/null; then
  echo "setup-vulkan: no apt-get here; install a Vulkan loader and Mesa >= 23 lavapipe by hand (the WebGPU tests skip until then)" >&2
  exit 0
fi

. /etc/os-release
target=()
if [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
  src=/etc/apt/sources.list.d/bookworm-backports.sources
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "setup-vulkan: adding the bookworm-backports apt source"
    printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' \
      'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' | $SUDO tee "$src" >/dev/null
  fi
  # -t upgrades the rest of the Mesa stack (GL, EGL, gbm) with it: the parts must match.
  target=(-t bookworm-backports)
fi
echo "setup-vulkan: installing mesa-vulkan-drivers and libvulkan1 ${target[*]}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
  --no-install-recommends "${target[@]}" mesa-vulkan-drivers libvulkan1; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup-vulkan: apt-get failed (output above)" >&2
  exit 1
fi
if ! have_lavapipe; then
  echo "setup-vulkan: lavapipe is still missing after the install (no /usr/share/vulkan/icd.d/lvp_icd*.json)" >&2
  exit 1
fi
