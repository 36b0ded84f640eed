#!/usr/bin/env bash
# Installs whatever is missing for the notebooks, the figures job and the tests; quiet when all is there.
# Debian/Ubuntu: apt packages need root (or sudo). Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

# 1. apt packages: Jupyter (classic notebook + nbconvert), headless Chromium (report test), PyTorch (bench, comparisons),
#    the Jupyter kernel test suite (test/kernel: the tslab kernel's protocol conformance).
need=()
[ -x /usr/bin/jupyter-nbconvert ] || need+=(jupyter-nbconvert jupyter-notebook jupyter-client python3-ipykernel)
[ -x /usr/bin/chromium ] || need+=(chromium)
/usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || need+=(python3-torch)
[ -d /usr/lib/python3/dist-packages/jupyter_kernel_test ] || need+=(python3-jupyter-kernel-test)
# Python virtual environments (step 5: JupyterLab 4 and Notebook 7 for the browser tests).
/usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# The optional oneDNN addon (native/, issue 16): the library PyTorch's CPU convolutions use, and a compiler.
if command -v dpkg >/dev/null; then
  dpkg -s libdnnl-dev >/dev/null 2>&1 || need+=(libdnnl-dev)
  command -v g++ >/dev/null || need+=(g++)
  command -v make >/dev/null || need+=(make)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing apt packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. npm dependencies, from the lockfile.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
elif [ -n "$(find patches -newer node_modules/.package-lock.json -name '*.patch' 2>/dev/null)" ]; then
  # A changed tslab patch reaches an existing install too.
  echo "setup: applying patches/"
  npx patch-package && touch node_modules/.package-lock.json
fi

# 3. The oneDNN addon, when npm ci did not build it (an install from before it existed); never fatal.
[ -f native/build/Release/diffusion_native.node ] || node scripts/build-native.cjs

# 4. The tslab kernel, registered for Debian's Python (the python3 on PATH may be another interpreter).
# (grep reads the whole list: with -q it would stop at the match, and under pipefail jupyter's
# broken pipe would count as a failure and register it again.)
if ! /usr/bin/jupyter kernelspec list 2>/dev/null | grep '^ *tslab ' >/dev/null; then
  echo "setup: registering the tslab kernel"
  PATH="$PWD/node_modules/.bin:$PATH" npx tslab install --python=/usr/bin/python3 >/dev/null
fi

# 5. JupyterLab 4 and Notebook 7, which the browser tests run beside the classic Notebook
#    (test/teaching/frontends.test.ts; Debian packages neither), pinned, in .venv/frontends. Their
#    servers find the tslab kernel registered above (/usr/local/share/jupyter is on every Jupyter's path).
bash scripts/pip-venv.sh .venv/frontends jupyterlab==4.6.4 notebook==7.6.3
