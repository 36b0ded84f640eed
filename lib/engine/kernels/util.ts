/**
 * Shared pieces of the wasm replacement kernels: the stock kernels they call (captured before
 * replacement), freeing intermediates, the explicit-padding convolution, the backprop geometry,
 * the copy loop, and the few backend methods the kernels use.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backend_util, Conv2D, Slice, Transpose } from '@tensorflow/tfjs-core';
import type { Conv2DAttrs, KernelFunc, NamedAttrMap, SliceAttrs, TensorInfo, TransposeAttrs } from '@tensorflow/tfjs-core';
import { levers } from '../levers';
import { nativeStatus, type NativeAddon } from '../native';

/** The wasm backend, as far as the kernels use it. */
export type Backend = { disposeData(dataId: object): boolean };
/** The wasm backend's reference counting (zero-copy Identity/Cast). */
export type RefBackend = Backend & { incRef(dataId: object): void };
/** The wasm backend's heap access (the JS-pass kernels). */
export type HeapBackend = Backend & {
  typedArrayFromHeap(t: TensorInfo): Float32Array;
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
};

export type Pads = { top: number; bottom: number; left: number; right: number };
export type Shape4 = [number, number, number, number];

/** A kernel function with its kernel's typed inputs and attrs (tfjs-core's KernelFunc takes untyped maps). */
export type TypedKernelFunc<I, A> = (args: { inputs: I; backend: object; attrs: A }) => TensorInfo | TensorInfo[];

/** A typed kernel function as the KernelFunc that tf.registerKernel takes. */
export function kernelFunc<I, A>(f: TypedKernelFunc<I, A>): KernelFunc {
  return f as unknown as KernelFunc;
}

/** Stock kernels that the supplied ones replace, captured before replacement (kernels/index.ts). */
const replaced = new Map<string, KernelFunc>();

/** Records the stock kernel that a supplied kernel replaces. */
export function rememberStock(name: string, kernel: KernelFunc): void {
  replaced.set(name, kernel);
}

/** The stock wasm kernel of that name (the replaced one, if it was replaced). */
export function stock(name: string): KernelFunc {
  const orig = replaced.get(name);
  if (orig) return orig;
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm kernel ${name} is not registered (is @tensorflow/tfjs-backend-wasm imported?)`);
  return k.kernelFunc;
}

/** Runs a stock wasm kernel by name. */
export function run(backend: Backend, name: string, inputs: Record<string, TensorInfo>, attrs: object = {}): TensorInfo {
  return stock(name)({ inputs, backend: backend as never, attrs: attrs as NamedAttrMap }) as TensorInfo;
}

/** Frees intermediates created inside a kernel. */
export function free(backend: Backend, ...ts: TensorInfo[]): void {
  for (const t of ts) backend.disposeData(t.dataId);
}

export const transpose = (b: Backend, x: TensorInfo, perm: number[]) => run(b, Transpose, { x }, { perm } satisfies TransposeAttrs);

/**
 * Stride-1 NHWC convolution with explicit (possibly negative) padding and a dilation.
 * Negative padding crops the input first, since XNNPACK only takes non-negative pads.
 * x: [N,H,W,Cin], w: [fh,fw,Cin,Cout] -> [N,Ho,Wo,Cout].
 */
export function convExplicit(b: Backend, x: TensorInfo, w: TensorInfo, dilation: [number, number], pads: Pads): TensorInfo {
  const [n, h, wd, c] = x.shape;
  const crop = {
    top: Math.max(0, -pads.top),
    bottom: Math.max(0, -pads.bottom),
    left: Math.max(0, -pads.left),
    right: Math.max(0, -pads.right),
  };
  let input = x;
  if (crop.top || crop.bottom || crop.left || crop.right) {
    input = run(b, Slice, { x }, {
      begin: [0, crop.top, crop.left, 0],
      size: [n, h - crop.top - crop.bottom, wd - crop.left - crop.right, c],
    } satisfies SliceAttrs);
  }
  const pad: backend_util.ExplicitPadding = [
    [0, 0],
    [Math.max(0, pads.top), Math.max(0, pads.bottom)],
    [Math.max(0, pads.left), Math.max(0, pads.right)],
    [0, 0],
  ];
  const out = run(b, Conv2D, { x: input, filter: w }, {
    strides: [1, 1],
    pad,
    dilations: dilation,
    dataFormat: 'NHWC',
    dimRoundingMode: undefined,
  } satisfies Conv2DAttrs);
  if (input !== x) free(b, input);
  return out;
}

/** The backprop kernels' attributes that define the forward convolution. */
type BackpropConvAttrs = Pick<Conv2DAttrs, 'strides' | 'pad' | 'dataFormat' | 'dimRoundingMode'>;

/** The forward convolution's geometry from a backprop kernel's attributes (NHWC only). */
export function backpropConvInfo(
  kernel: string,
  attrs: BackpropConvAttrs,
  xShape: number[],
  filterShape: number[],
): backend_util.Conv2DInfo {
  const { strides, pad, dataFormat, dimRoundingMode } = attrs;
  if (dataFormat === 'NCHW') throw new Error(`${kernel} on wasm supports NHWC only`);
  return backend_util.computeConv2DInfo(xShape as Shape4, filterShape as Shape4, strides, 1, pad, dimRoundingMode);
}

/**
 * The addon, for a pass over `size` floats, when it is loaded and the lever native is on and the
 * pass is large enough to repay a call into it (its OpenMP threads); else undefined.
 */
export function nativeFor(size: number): NativeAddon | undefined {
  return size >= 1 << 14 && levers().native ? nativeStatus().addon : undefined;
}

/**
 * Copies `outer` chunks of `chunk` floats from src (stride srcStride, offset srcOff) to dst
 * (stride dstStride, offset dstOff): a plain loop for short chunks (a subarray/set call per chunk
 * costs more than the copy), set() for long ones.
 */
export function copyChunks(
  src: Float32Array,
  srcStride: number,
  srcOff: number,
  dst: Float32Array,
  dstStride: number,
  dstOff: number,
  chunk: number,
  outer: number,
): void {
  // Large copies in the addon (memcpy per chunk on oneDNN's threads) when it is loaded (lever native).
  const addon = outer * chunk >= 1 << 16 ? nativeFor(outer * chunk) : undefined;
  if (addon) return addon.copyChunks(src, srcStride, srcOff, dst, dstStride, dstOff, chunk, outer);
  if (chunk >= 256) {
    for (let o = 0; o < outer; o++) dst.set(src.subarray(o * srcStride + srcOff, o * srcStride + srcOff + chunk), o * dstStride + dstOff);
    return;
  }
  for (let o = 0; o < outer; o++) {
    const si = o * srcStride + srcOff;
    const di = o * dstStride + dstOff;
    for (let j = 0; j < chunk; j++) dst[di + j] = src[si + j];
  }
}
