/**
 * Sum and Mean for wasm: a float32 tensor reduced over its leading axes [0..k) (bias gradients:
 * [B,H,W,C] → [C]; the loss: all axes) as one contiguous JS pass with float64 accumulators
 * (lever reduce). The stock kernels first transpose the reduced axes innermost (a full strided
 * copy), then reduce on one thread. Other cases run the stock kernel. With the oneDNN addon loaded,
 * large ones run in its vectorized channelSum on its threads.
 */
import { Mean, Sum } from '@tensorflow/tfjs-core';
import type { KernelConfig, MeanAttrs, MeanInputs, SumAttrs, SumInputs, TensorInfo } from '@tensorflow/tfjs-core';
import { levers } from '../levers';
import { kernelFunc, nativeFor, stock, type Backend, type HeapBackend } from './util';

/** The leading-axes reduction, or null where the stock kernel must run. */
function reduceLeading(b: Backend, x: TensorInfo, axis: number | number[], keepDims: boolean, mean: boolean): TensorInfo | null {
  if (!levers().reduce || x.dtype !== 'float32') return null;
  const rank = x.shape.length;
  const axes = [...new Set((Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a)))].sort((p, q) => p - q);
  if (axes.length === 0 || axes.some((a, i) => a !== i)) return null;
  const k = axes.length;
  const inner = x.shape.slice(k).reduce((p, q) => p * q, 1);
  const outer = x.shape.slice(0, k).reduce((p, q) => p * q, 1);
  if (outer === 0) return null;
  const hb = b as HeapBackend;
  const outShape = keepDims ? x.shape.map((d, i) => (i < k ? 1 : d)) : x.shape.slice(k);
  const out = hb.makeOutput(outShape, 'float32'); // allocate first: it may move the heap
  const xs = hb.typedArrayFromHeap(x);
  const ys = hb.typedArrayFromHeap(out);
  const scale = mean ? 1 / outer : 1;
  // Large ones in the addon (vectorized, on its threads) when it is loaded (lever native).
  const addon = nativeFor(xs.length);
  if (addon) {
    addon.channelSum(xs, inner, ys);
    if (mean) for (let j = 0; j < inner; j++) ys[j] *= scale;
    return out;
  }
  const acc = new Float64Array(inner);
  for (let i = 0; i < xs.length; i += inner) for (let j = 0; j < inner; j++) acc[j] += xs[i + j];
  for (let j = 0; j < inner; j++) ys[j] = acc[j] * scale;
  return out;
}

export const sum = kernelFunc<SumInputs, SumAttrs>(({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: TensorInfo };
  const { axis, keepDims } = attrs;
  return (
    reduceLeading(backend as Backend, x, axis, keepDims, false) ?? (stock(Sum)({ inputs, backend, attrs: attrs as never }) as TensorInfo)
  );
});

export const mean = kernelFunc<MeanInputs, MeanAttrs>(({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: TensorInfo };
  const { axis, keepDims } = attrs;
  return (
    reduceLeading(backend as Backend, x, axis, keepDims, true) ?? (stock(Mean)({ inputs, backend, attrs: attrs as never }) as TensorInfo)
  );
});

export const sumConfig: KernelConfig = { kernelName: Sum, backendName: 'wasm', kernelFunc: sum };
export const meanConfig: KernelConfig = { kernelName: Mean, backendName: 'wasm', kernelFunc: mean };
