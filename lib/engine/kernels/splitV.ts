/**
 * SplitV of a float32 tensor for wasm as JS copy loops (lever copyLoops): the stock kernel runs
 * one Slice per output, copying one inner chunk per row (the gradients of the UNet's skip
 * concatenations).
 */
import { backend_util, SplitV } from '@tensorflow/tfjs-core';
import type { KernelConfig, SplitVAttrs, SplitVInputs, TensorInfo } from '@tensorflow/tfjs-core';
import { levers } from '../levers';
import { copyChunks, kernelFunc, stock, type HeapBackend } from './util';

export const splitV = kernelFunc<SplitVInputs, SplitVAttrs>(({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: TensorInfo };
  const { numOrSizeSplits } = attrs;
  const axisRaw: number | number[] = attrs.axis; // an [axis] array is accepted too, as the stock kernel does
  const rank = x.shape.length;
  const a0 = Array.isArray(axisRaw) ? axisRaw[0] : axisRaw;
  const axis = a0 < 0 ? a0 + rank : a0;
  if (!levers().copyLoops || x.dtype !== 'float32')
    return stock(SplitV)({ inputs, backend, attrs: attrs as never }) as unknown as TensorInfo;
  const sizes = backend_util.prepareSplitSize(x, numOrSizeSplits, axis);
  const hb = backend as HeapBackend;
  const outer = x.shape.slice(0, axis).reduce((p, q) => p * q, 1);
  const unit = x.shape.slice(axis + 1).reduce((p, q) => p * q, 1);
  const outs = sizes.map((sz) =>
    hb.makeOutput(
      x.shape.map((d, i) => (i === axis ? sz : d)),
      'float32',
    ),
  );
  const xv = hb.typedArrayFromHeap(x);
  let off = 0;
  outs.forEach((o, i) => {
    const chunk = sizes[i] * unit;
    copyChunks(xv, x.shape[axis] * unit, off, hb.typedArrayFromHeap(o), chunk, 0, chunk, outer);
    off += chunk;
  });
  return outs;
});

export const splitVConfig: KernelConfig = { kernelName: SplitV, backendName: 'wasm', kernelFunc: splitV };
