/**
 * WebGPU engine: tfjs-backend-webgpu on Dawn's Node bindings (npm `webgpu`, an ES module).
 * On Linux Dawn reaches the GPU through Vulkan: the loader libvulkan.so.1 plus a driver's ICD
 * (NVIDIA's nvidia_icd.json from the host driver, or Mesa's lavapipe for a software adapter).
 * A software adapter (Mesa lavapipe reports architecture 'software' or a CPU device type) is
 * refused unless the engine is forced, since wasm is faster there.
 *
 * In Node the WebGPU backend can only read GPU data asynchronously: use `await t.data()`, never
 * dataSync()/arraySync() (its synchronous readback needs OffscreenCanvas, which Node lacks).
 * DIFFUSION_DAWN_FLAGS passes extra Dawn flags, comma-separated (e.g.
 * "enable-dawn-features=disable_robustness"; "backend=vulkan" is the Linux default).
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { setting } from '../config';

export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isSoftware: boolean;
  /** A few limits that matter for these models. */
  limits?: { maxBufferSize: number; maxStorageBufferBindingSize: number; maxComputeWorkgroupStorageSize: number };
}

/** One line for logs: vendor, architecture, device, description and the limits kept. */
export function describeAdapter(r: AdapterReport): string {
  const lim = r.limits
    ? `, maxBufferSize ${r.limits.maxBufferSize}, maxStorageBufferBindingSize ${r.limits.maxStorageBufferBindingSize}, maxComputeWorkgroupStorageSize ${r.limits.maxComputeWorkgroupStorageSize}`
    : '';
  return `adapter: vendor "${r.vendor}", architecture "${r.architecture}", device "${r.device}", description "${r.description}", ${r.isSoftware ? 'software' : 'hardware'}${lim}`;
}

/** True when the adapter is a CPU rasterizer (lavapipe, SwiftShader). */
export function isSoftwareAdapter(info: { vendor?: string; architecture?: string; device?: string; description?: string }): boolean {
  const text = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`.toLowerCase();
  return /software|llvmpipe|lavapipe|swiftshader|cpu/.test(text);
}

/**
 * On Linux, whether any GPU device node exists (NVIDIA /dev/nvidia0.., DRM render nodes, WSL's
 * /dev/dxg). Without one only a software adapter can appear, so the automatic choice skips Dawn
 * altogether (saving its start-up and its stderr warnings). Other platforms: assumed present.
 */
export function gpuDevicePresent(): boolean {
  if (process.platform !== 'linux') return true;
  const list = (dir: string) => {
    try {
      return fs.readdirSync(dir);
    } catch {
      return [];
    }
  };
  return list('/dev').some((f) => /^nvidia\d+$/.test(f) || f === 'dxg') || list('/dev/dri').some((f) => f.startsWith('renderD'));
}

/**
 * Creates a Dawn GPU, checks its adapter and makes 'webgpu' the active TF.js backend.
 * @param allowSoftware accept a software adapter (only when the user forces the engine)
 */
export async function initWebgpu(allowSoftware: boolean): Promise<AdapterReport> {
  if (!allowSoftware && !gpuDevicePresent()) {
    throw new Error(
      'no GPU device here (/dev/nvidia*, /dev/dri/renderD*, /dev/dxg); force a software adapter with DIFFUSION_ENGINE=webgpu',
    );
  }
  // Dynamic import keeps this CommonJS build able to load the ES-module package.
  const dawn = (await import('webgpu')) as unknown as { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  Object.assign(globalThis, dawn.globals);
  const flags = (setting('DIFFUSION_DAWN_FLAGS') ?? '')
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean);
  const gpu = dawn.create(flags);
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav) {
    Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  } else {
    (globalThis as Record<string, unknown>).navigator = { gpu };
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new Error(
      'no WebGPU adapter found: install a Vulkan loader (libvulkan1) and driver (NVIDIA driver with graphics capability, or Mesa >= 23 lavapipe: scripts/setup-vulkan.sh); see README "GPU container"',
    );
  }
  const info = (adapter as unknown as { info?: GPUAdapterInfo }).info ?? ({} as GPUAdapterInfo);
  const report: AdapterReport = {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    isSoftware: false,
    limits: {
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
    },
  };
  report.isSoftware = isSoftwareAdapter(report);
  if (report.isSoftware && !allowSoftware) {
    throw new Error(`adapter is a software one (${report.description || report.architecture}); force it with DIFFUSION_ENGINE=webgpu`);
  }
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs-backend-webgpu failed to initialize on this adapter');
  return report;
}
