/**
 * Concat of float32 tensors for wasm as JS copy loops (lever copyLoops). The stock kernel copies
 * one inner chunk per subarray/set call: with a channel-axis chunk of 16–64 floats (the UNet's
 * skip concatenations) the call overhead dominates. Long chunks still use set().
 */
import { Concat } from '@tensorflow/tfjs-core';
import type { ConcatAttrs, ConcatInputs, KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { levers } from '../levers';
import { copyChunks, kernelFunc, stock, type HeapBackend } from './util';

export const concat = kernelFunc<ConcatInputs, ConcatAttrs>(({ inputs, backend, attrs }) => {
  const xs = inputs;
  const rank = xs[0]?.shape.length ?? 0;
  const axisRaw: number | number[] = attrs.axis; // an [axis] array is accepted too, as the stock kernel does
  const axis0 = Array.isArray(axisRaw) ? axisRaw[0] : axisRaw;
  const axis = axis0 < 0 ? axis0 + rank : axis0;
  const nonEmpty = xs.filter((t) => t.shape.reduce((p, q) => p * q, 1) > 0);
  if (!levers().copyLoops || nonEmpty.length < 2 || xs.some((t) => t.dtype !== 'float32' || t.shape.length !== rank)) {
    return stock(Concat)({ inputs: inputs as never, backend, attrs: attrs as never }) as TensorInfo;
  }
  const hb = backend as HeapBackend;
  const outShape = xs[0].shape.slice();
  outShape[axis] = xs.reduce((p, t) => p + t.shape[axis], 0);
  const outer = outShape.slice(0, axis).reduce((p, q) => p * q, 1);
  const inners = nonEmpty.map((t) => t.shape.slice(axis).reduce((p, q) => p * q, 1));
  const total = inners.reduce((p, q) => p + q, 0);
  const out = hb.makeOutput(outShape, 'float32'); // allocate first: it may move the heap
  const ys = hb.typedArrayFromHeap(out);
  let off = 0;
  nonEmpty.forEach((t, i) => {
    copyChunks(hb.typedArrayFromHeap(t), inners[i], 0, ys, total, off, inners[i], outer);
    off += inners[i];
  });
  return out;
});

export const concatConfig: KernelConfig = { kernelName: Concat, backendName: 'wasm', kernelFunc: concat };
