/**
 * The kernels that this project supplies to tfjs-backend-wasm, from ONE list, and their
 * registration. Each replacement calls only stock wasm kernels (captured before replacement) or
 * runs as one JS pass over the wasm heap, so the heavy work stays in XNNPACK's threaded SIMD
 * convolutions. A replaced kernel keeps the stock kernel's setupFunc. Each one has a lever
 * (../levers.ts) that falls back to the stock or plain path, for tests and A/B timing.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { conv2DBackpropFilterConfig } from './conv2dBackpropFilter';
import { conv2DBackpropInputConfig } from './conv2dBackpropInput';
import { tileConfig } from './tile';
import { castConfig, identityConfig } from './zeroCopy';
import { meanConfig, sumConfig } from './reduce';
import { concatConfig } from './concat';
import { splitVConfig } from './splitV';
import { addConfig, multiplyConfig, subConfig } from './binary';
import { rememberStock } from './util';

/** The kernels supplied to the 'wasm' backend (added, or replacing the stock ones). */
export const SUPPLIED_WASM_KERNELS: readonly KernelConfig[] = [
  conv2DBackpropFilterConfig, // missing from the stock backend: training needs it
  conv2DBackpropInputConfig, // stock: a scalar loop (also conv2dTranspose's forward pass)
  tileConfig, // stock: a scalar index loop
  identityConfig, // stock: a copy
  castConfig, // stock: a copy for the same dtype
  sumConfig, // stock: transpose + one-thread reduce
  meanConfig,
  concatConfig, // stock: one call per inner chunk
  splitVConfig, // stock: one Slice per output
  addConfig, // stock: one thread (the addon's, when loaded, on its threads)
  subConfig,
  multiplyConfig,
];

let registered = false;

/** Registers (or replaces) the supplied kernels on the 'wasm' backend; idempotent. */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  for (const { kernelName, kernelFunc } of SUPPLIED_WASM_KERNELS) {
    const old = tf.getKernel(kernelName, 'wasm');
    if (old) rememberStock(kernelName, old.kernelFunc);
    if (old) tf.unregisterKernel(kernelName, 'wasm');
    const config: KernelConfig = { kernelName, backendName: 'wasm', kernelFunc };
    if (old?.setupFunc) config.setupFunc = old.setupFunc;
    tf.registerKernel(config);
  }
  registered = true;
}
