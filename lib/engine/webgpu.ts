/**
 * WebGPU engine: tfjs-backend-webgpu on Dawn's Node bindings (npm `webgpu`, an ES module).
 * A software adapter (Mesa lavapipe reports architecture 'software' or a CPU device type) is
 * refused unless the engine is forced, since wasm is faster there.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isSoftware: boolean;
  /** A few limits that matter for these models. */
  limits?: { maxBufferSize: number; maxStorageBufferBindingSize: number; maxComputeWorkgroupStorageSize: number };
}

/** True when the adapter is a CPU rasterizer (lavapipe, SwiftShader). */
export function isSoftwareAdapter(info: { vendor?: string; architecture?: string; device?: string; description?: string }): boolean {
  const text = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`.toLowerCase();
  return /software|llvmpipe|lavapipe|swiftshader|cpu/.test(text);
}

/**
 * Creates a Dawn GPU, checks its adapter and makes 'webgpu' the active TF.js backend.
 * @param allowSoftware accept a software adapter (only when the user forces the engine)
 */
export async function initWebgpu(allowSoftware: boolean): Promise<AdapterReport> {
  // Dynamic import keeps this CommonJS build able to load the ES-module package.
  const dawn = (await import('webgpu')) as unknown as { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create([]);
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav) {
    Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  } else {
    (globalThis as Record<string, unknown>).navigator = { gpu };
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('no WebGPU adapter found (is a Vulkan driver installed? see README "GPU")');
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
