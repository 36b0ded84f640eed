#!/usr/bin/env bash
# Builds oneDNN 3.7.2, the generation of the library PyTorch 2.x's CPU convolutions use, from
# Debian's source package (the archive apt uses), into native/onednn/install, then rebuilds the
# addon against it (native/onednn-flags.cjs picks it up). Debian 12 packages only oneDNN 2.6.3,
# whose kernels trail 3.x's (brgemm convolutions, their AVX2 and bf16 filter gradients): issue 34.
# Only what the addon calls is built (convolutions and reorders), on OpenMP as before. About 20
# minutes on 2 cores; safe to run again (it stops at once when that version is installed).
#   bash scripts/build-onednn.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=3.7.2
TARBALL="onednn_${VERSION}+ds.orig.tar.xz"
SHA256=0cc51ca26c1af6a2bb1e71e378e7046f3ceb3e71791ee9d4e246d50f904a6ea6
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DIR=native/onednn
STAMP="$DIR/install/VERSION"

if [ "${1:-}" != --force ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$VERSION" ]; then
  echo "build-onednn: oneDNN $VERSION is already in $DIR/install (--force rebuilds it)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v ninja >/dev/null || need+=(ninja-build)
command -v g++ >/dev/null || need+=(g++)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  echo "build-onednn: installing apt packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

mkdir -p "$DIR"
if ! echo "$SHA256  $DIR/$TARBALL" | sha256sum -c --status 2>/dev/null; then
  echo "build-onednn: downloading $MIRROR/pool/main/o/onednn/$TARBALL"
  curl -fsS --retry 3 -o "$DIR/$TARBALL.tmp" "$MIRROR/pool/main/o/onednn/$TARBALL"
  mv "$DIR/$TARBALL.tmp" "$DIR/$TARBALL"
  if ! echo "$SHA256  $DIR/$TARBALL" | sha256sum -c --status; then
    echo "build-onednn: $TARBALL does not have the sha256 of Debian's oneDNN $VERSION source ($SHA256)" >&2
    exit 1
  fi
fi
rm -rf "$DIR/src" "$DIR/build" "$DIR/install"
mkdir -p "$DIR/src"
tar -xf "$DIR/$TARBALL" -C "$DIR/src" --strip-components=1

# Convolutions and reorders only (the addon's primitives; GELU and ReLU are their post-ops), no
# graph API, tests or examples: a quarter of the full build. Every CPU ISA stays in: oneDNN picks
# the kernel for the CPU it runs on (AVX2, AVX-512, AVX512-BF16, AMX).
echo "build-onednn: building oneDNN $VERSION (about 20 minutes on 2 Zen 4 cores, 50 on Zen 3)"
cmake -S "$DIR/src" -B "$DIR/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$PWD/$DIR/install" -DCMAKE_INSTALL_LIBDIR=lib \
  -DDNNL_CPU_RUNTIME=OMP -DDNNL_GPU_RUNTIME=NONE -DONEDNN_BUILD_GRAPH=OFF \
  -DDNNL_BUILD_TESTS=OFF -DDNNL_BUILD_EXAMPLES=OFF \
  -DDNNL_ENABLE_PRIMITIVE="CONVOLUTION;REORDER" >"$DIR/cmake.log"
ninja -C "$DIR/build" >"$DIR/ninja.log"
ninja -C "$DIR/build" install >>"$DIR/ninja.log"
echo "$VERSION" >"$STAMP"
rm -rf "$DIR/src" "$DIR/build"

node scripts/build-native.cjs --force
