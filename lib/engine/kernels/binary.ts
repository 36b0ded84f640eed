/**
 * Add, Sub and Multiply for wasm with the oneDNN addon loaded: large float32 operations whose
 * operands are the output's shape, one value per sample and channel ([B,1,1,C]: the UNet's
 * conditioning c·u + t), one per channel ([C]: bias adds) or one value, run in the addon's
 * vectorized loop on its threads (lever native). The stock kernels run on one thread, and their
 * broadcasting path is scalar. Everything else (other shapes, other dtypes, small tensors, no
 * addon) runs the stock kernel. The results are the same floats: one IEEE operation per element.
 */
import { Add, Multiply, Sub } from '@tensorflow/tfjs-core';
import type { BinaryInputs, KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { kernelFunc, nativeFor, stock, type HeapBackend } from './util';

/** An operand's kind against the output [outer, inner, C] (see NativeAddon.binary). */
type OperandKind = 0 | 1 | 2 | 3;

/** The output [outer, inner, C] and each operand's kind, or null when this is not one of those layouts. */
export function binaryLayout(
  aShape: readonly number[],
  bShape: readonly number[],
): { outShape: number[]; outer: number; inner: number; c: number; kinds: [OperandKind, OperandKind] } | null {
  const size = (s: readonly number[]) => s.reduce((p, q) => p * q, 1);
  // The output is the larger operand's shape; the other must broadcast to it without growing it.
  const full = size(aShape) >= size(bShape) ? aShape : bShape;
  const rank = full.length;
  if (rank === 0 || size(full) === 0) return null;
  const c = full[rank - 1]!;
  const outer = rank >= 2 ? full[0]! : 1;
  const inner = size(full) / (outer * c);
  const kind = (s: readonly number[]): OperandKind | null => {
    if (s.length > rank) return null;
    const padded = [...Array<number>(rank - s.length).fill(1), ...s];
    if (padded.every((d, i) => d === full[i])) return 0;
    if (padded.every((d) => d === 1)) return 3;
    if (padded.every((d, i) => (i === rank - 1 ? d === c : d === 1))) return 2;
    if (rank >= 2 && padded.every((d, i) => (i === 0 ? d === outer : i === rank - 1 ? d === c : d === 1))) return 1;
    return null;
  };
  const ka = kind(aShape);
  const kb = kind(bShape);
  if (ka === null || kb === null) return null;
  return { outShape: [...full], outer, inner, c, kinds: [ka, kb] };
}

function binaryKernel(name: string, op: 0 | 1 | 2): KernelConfig {
  return {
    kernelName: name,
    backendName: 'wasm',
    kernelFunc: kernelFunc<BinaryInputs, object>(({ inputs, backend, attrs }) => {
      const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
      const layout = a.dtype === 'float32' && b.dtype === 'float32' ? binaryLayout(a.shape, b.shape) : null;
      const addon = layout ? nativeFor(layout.outer * layout.inner * layout.c) : undefined;
      if (!layout || !addon) return stock(name)({ inputs, backend, attrs: attrs as never });
      const hb = backend as HeapBackend;
      const out = hb.makeOutput(layout.outShape, 'float32'); // allocate first: it may move the heap
      const [ka, kb] = layout.kinds;
      addon.binary(
        op,
        hb.typedArrayFromHeap(a),
        ka,
        hb.typedArrayFromHeap(b),
        kb,
        hb.typedArrayFromHeap(out),
        layout.outer,
        layout.inner,
        layout.c,
      );
      return out;
    }),
  };
}

export const addConfig = binaryKernel(Add, 0);
export const subConfig = binaryKernel(Sub, 1);
export const multiplyConfig = binaryKernel(Multiply, 2);
