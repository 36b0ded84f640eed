# The GPU container: the notebooks, the library and the figures job on an NVIDIA GPU.
#
#   docker build -t diffusion-notebooks .
#   docker run --rm -it --gpus all -p 8888:8888 diffusion-notebooks          # Jupyter on :8888
#   docker run --rm --gpus all diffusion-notebooks npm run figures           # every figure, headless
#
# The GPU engine is WebGPU (tfjs-backend-webgpu on Dawn, npm `webgpu`), which reaches the GPU
# through Vulkan: this image holds the Vulkan loader, and the NVIDIA Container Toolkit mounts the
# host driver's Vulkan parts (libGLX_nvidia.so.0 and its ICD file nvidia_icd.json) when the
# `graphics` capability is asked for, as below. The engine is chosen automatically at start
# (DIFFUSION_ENGINE=auto): WebGPU on a hardware adapter, else threaded wasm on the CPUs.
#
# Optional tfjs-node-gpu (libtensorflow 2.9.1, CUDA 11.2 + cuDNN 8.1, not in this image):
#   docker build --build-arg TFJS_NODE_GPU=1 [--build-arg TFJS_NODE_CDN_STORAGE=https://mirror/] .
# or put libtensorflow-gpu-linux-x86_64-2.9.1.tar.gz in docker/libtensorflow/ (see its README.md).
FROM node:20-bookworm-slim

ARG DEBIAN_FRONTEND=noninteractive
# Every RUN under bash with pipefail: a failing command on the left of a pipe fails the build.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# 1. System packages:
#    - Vulkan loader, and what the driver's libGLX_nvidia.so.0 links against (glvnd, X11 client libs);
#    - Debian's Jupyter (classic notebook, nbconvert for the figures job) and ipykernel;
#    - chromium (report rendering), python3-torch (reference comparisons), fonts for captions;
#    - libdnnl-dev, g++ and make for the oneDNN addon (native/: the CPU engine's convolutions):
#      scripts/setup.sh, which `npm run figures` and `npm test` run first, expects all of these.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates xz-utils \
      libvulkan1 libglvnd0 libx11-6 libxext6 \
      jupyter-notebook jupyter-nbconvert jupyter-client python3-ipykernel python3-jupyter-kernel-test python3-venv \
      chromium python3-torch fonts-dejavu-core fontconfig \
      libdnnl-dev g++ make \
 && rm -rf /var/lib/apt/lists/*

# 2. NVIDIA Container Toolkit: expose the GPU and the driver's compute, utility (nvidia-smi) and
#    graphics (Vulkan ICD, libGLX_nvidia) components. The engine stays automatic.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics \
    DIFFUSION_ENGINE=auto

# 3. The project, as the unprivileged `node` user of the base image.
WORKDIR /home/node/app
RUN chown node:node /home/node/app
USER node
COPY --chown=node:node package.json package-lock.json ./
# The tslab patch and the oneDNN addon's sources (npm ci's postinstall applies the one and builds
# the other) must be there before npm ci.
COPY --chown=node:node patches/ patches/
COPY --chown=node:node native/ native/
COPY --chown=node:node scripts/build-native.cjs scripts/
RUN npm ci --no-audit --no-fund && npm cache clean --force

# Optional tfjs-node-gpu. Its install script downloads libtensorflow from TFJS_NODE_CDN_STORAGE
# (default https://storage.googleapis.com/) + tensorflow/libtensorflow/libtensorflow-gpu-linux-x86_64-2.9.1.tar.gz,
# or from TFJS_NODE_BASE_URI + gpu-linux-x86_64-2.9.1.tar.gz; a tarball in docker/libtensorflow/ is
# served to it locally. It also needs CUDA 11.2 and cuDNN 8.1 libraries at run time (not included).
ARG TFJS_NODE_GPU=0
ARG TFJS_NODE_CDN_STORAGE=
ARG TFJS_NODE_BASE_URI=
COPY --chown=node:node docker/libtensorflow/ docker/libtensorflow/
RUN if [ "$TFJS_NODE_GPU" = 1 ]; then \
      set -e; server=""; \
      if ls docker/libtensorflow/libtensorflow-gpu-linux-x86_64-*.tar.gz >/dev/null 2>&1; then \
        python3 -m http.server 8731 --bind 127.0.0.1 --directory docker/libtensorflow >/dev/null 2>&1 & \
        server=$!; sleep 1; export TFJS_NODE_BASE_URI=http://127.0.0.1:8731/libtensorflow-; \
      fi; \
      npm install --no-save --no-audit --no-fund @tensorflow/tfjs-node-gpu@4.22.0; \
      if [ -n "$server" ]; then kill "$server"; fi; \
      npm cache clean --force; \
    fi

# 4. The tslab kernel, registered for Debian's Python (the notebooks' kernel), then the build.
#    Its kernel.json starts `tslab` by name: node_modules/.bin goes on the PATH.
ENV PATH=/home/node/app/node_modules/.bin:$PATH
RUN npx tslab install --python=/usr/bin/python3 --user \
 && /usr/bin/jupyter kernelspec list | grep -q tslab
COPY --chown=node:node . .
RUN node node_modules/typescript-native/bin/tsc -p tsconfig.json

# 5. Jupyter for stepping through the notebooks; the token is printed in the log (or set JUPYTER_TOKEN).
EXPOSE 8888
ENTRYPOINT ["bash", "scripts/docker-entrypoint.sh"]
CMD ["jupyter", "notebook", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--notebook-dir=/home/node/app"]
