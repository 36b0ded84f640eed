/**
 * oneDNN convolutions behind the engine (issue 16): the optional Node-API addon in native/ runs
 * Conv2D, FusedConv2D (bias, ReLU), Conv2DBackpropInput (so conv2dTranspose too) and
 * Conv2DBackpropFilter with the library PyTorch's CPU convolutions use. Tensors are read and
 * written in place: typed-array views on the wasm heap, or the cpu backend's own arrays.
 *
 * The addon is built at install time (scripts/build-native.mjs, node-gyp against libdnnl-dev);
 * where it is missing, DIFFUSION_NATIVE=0 turns it off, or the lever `native` is off, the kernels
 * fall back to the ones registered before (lib/engine/kernels, or the stock backend's).
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { backend_util, Conv2D, Conv2DBackpropFilter, Conv2DBackpropInput, FusedConv2D } from '@tensorflow/tfjs-core';
import type {
  Conv2DAttrs,
  Conv2DBackpropFilterAttrs,
  Conv2DBackpropInputAttrs,
  FusedConv2DAttrs,
  KernelConfig,
  KernelFunc,
  NamedAttrMap,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { setting } from '../config';
import { projectPath } from '../paths';
import { levers } from './levers';

/**
 * The addon's functions (native/src/addon.cc). Each throws one line "diffusion_native.<fn>: …"
 * for arguments it cannot take (a wrong count, type or length, a number that is not a whole
 * number in range, sizes whose arithmetic overflows) instead of reading or writing past them.
 */
export interface NativeAddon {
  /** op 0: y = conv(x, w [+ bias]), then act 1 ReLU or 2 exact GELU; 1: dx from dy and w; 2: dw from x and dy. geom: see addon.cc. */
  conv(
    op: 0 | 1 | 2,
    a: Float32Array,
    b: Float32Array,
    bias: Float32Array | null,
    out: Float32Array,
    geom: Int32Array,
    act: 0 | 1 | 2,
    keepA?: number,
    keepB?: number,
  ): void;
  /** Forgets the bf16 copy conv kept under id (keepA/keepB); nothing kept: nothing to do. */
  releaseBf16(id: number): void;
  /** How many bf16 copies conv keeps now. */
  keptBf16(): number;
  gelu(x: Float32Array, y: Float32Array): void;
  geluGrad(dy: Float32Array, x: Float32Array, dx: Float32Array): void;
  bnStats(x: Float32Array, c: number, mean: Float32Array, variance: Float32Array): void;
  bnApply(
    x: Float32Array,
    c: number,
    mean: Float32Array,
    invStd: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    y: Float32Array,
  ): void;
  bnGrad(
    dy: Float32Array,
    x: Float32Array,
    c: number,
    mean: Float32Array,
    invStd: Float32Array,
    gamma: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
  ): void;
  /** outer copies of chunk floats: src[o·srcStride + srcOff …] → dst[o·dstStride + dstOff …]. */
  copyChunks(
    src: Float32Array,
    srcStride: number,
    srcOff: number,
    dst: Float32Array,
    dstStride: number,
    dstOff: number,
    chunk: number,
    outer: number,
  ): void;
  /** z = GELU(BatchNorm(x)) with the batch's mean and invStd, x and z [rows, C]. */
  bnGeluApply(
    x: Float32Array,
    c: number,
    mean: Float32Array,
    invStd: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    z: Float32Array,
  ): void;
  /** Its gradient from dz and x: dx [rows, C]; dγ, dβ, and dbias = Σdx (a bias added to x before the BN) [C]. */
  bnGeluGrad(
    dz: Float32Array,
    x: Float32Array,
    c: number,
    mean: Float32Array,
    invStd: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
    dbias: Float32Array,
  ): void;
  /** adam for every parameter at once: arrays holds p, g, m, v, pOut, mOut, vOut of each in turn. */
  adamMany(arrays: Float32Array[], beta1: number, beta2: number, eps: number, stepSize: number, sqrtBc2: number): void;
  /** Per-channel sums out [C] of x [rows, C]. */
  channelSum(x: Float32Array, c: number, out: Float32Array): void;
  /** One Adam update of a parameter (lib/tensor/fusedOps adamStep): pOut, mOut, vOut from p, g, m, v (all n values). */
  adam(
    p: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    beta1: number,
    beta2: number,
    eps: number,
    stepSize: number,
    sqrtBc2: number,
    pOut: Float32Array,
    mOut: Float32Array,
    vOut: Float32Array,
  ): void;
  /**
   * out = a op b (0 add, 1 sub, 2 mul) over out [outer, inner, C]; each operand of a kind:
   * 0 the whole tensor, 1 [outer, C] (one value per sample and channel), 2 [C], 3 one value.
   */
  binary(
    op: 0 | 1 | 2,
    a: Float32Array,
    kindA: 0 | 1 | 2 | 3,
    b: Float32Array,
    kindB: 0 | 1 | 2 | 3,
    out: Float32Array,
    outer: number,
    inner: number,
    c: number,
  ): void;
  setThreads(n: number): void;
  threads(): number;
  /** 1: convolutions with bf16 inputs, fp32 accumulation and outputs; 0: fp32. Throws when oneDNN has no bf16 convolution here. */
  setPrecision(bf16: 0 | 1): void;
  precision(): number;
  version(): string;
  cachedPrimitives(): number;
  /** The most primitives the cache keeps (the least recently used go first). */
  cacheCapacity(): number;
  clearCache(): void;
}

/** Where node-gyp puts the addon. */
export const NATIVE_ADDON_PATH = projectPath('native', 'build', 'Release', 'diffusion_native.node');
/** What the install-time build wrote when it could not build the addon (its first line says why). */
export const NATIVE_BUILD_STATUS = projectPath('native', 'build-status.txt');

/** The addon when loaded, else why not (one line). */
export type NativeStatus = { addon: NativeAddon; version: string } | { addon?: undefined; why: string };

let status: NativeStatus | undefined;

/** Whether DIFFUSION_NATIVE allows the addon (unset or 1); any value but 0 or 1 is an error. */
export function nativeWanted(): boolean {
  const flag = setting('DIFFUSION_NATIVE')?.trim();
  if (flag !== undefined && flag !== '0' && flag !== '1')
    throw new Error(`DIFFUSION_NATIVE="${flag}" is not 0 or 1: set 0 to turn the oneDNN kernels off, 1 or unset to use them when built`);
  return flag !== '0';
}

/** Loads the addon once: DIFFUSION_NATIVE=0 → off; a missing or broken build → the reason. */
export function nativeStatus(): NativeStatus {
  if (status) return status;
  if (!nativeWanted()) return (status = { why: 'turned off by DIFFUSION_NATIVE=0' });
  if (!fs.existsSync(NATIVE_ADDON_PATH)) {
    let why = 'the addon is not built';
    try {
      const first = fs
        .readFileSync(NATIVE_BUILD_STATUS, 'utf8')
        .split('\n')[0]
        .trim()
        .replace(/^not built: /, '');
      if (first) why += ` (${first})`;
    } catch {
      // no build attempted yet
    }
    return (status = { why: `${why}: run \`npm run build:native\` (needs libdnnl-dev, g++, make)` });
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a native addon, loaded at run time
    const addon = require(NATIVE_ADDON_PATH) as NativeAddon;
    return (status = { addon, version: addon.version() });
  } catch (e) {
    const msg = String((e as Error).message ?? e).split('\n')[0];
    return (status = { why: `the addon did not load (${msg}): rebuild it with \`npm run build:native\`` });
  }
}

/** The backends the addon serves, and how each reads and makes float32 tensors in place. */
interface TensorAccess {
  read(backend: object, t: TensorInfo): Float32Array;
  /** A new float32 output and a view to write it through. */
  output(backend: object, shape: number[]): { info: TensorInfo; view: Float32Array };
}

type WasmBackend = { typedArrayFromHeap(t: TensorInfo): Float32Array; makeOutput(shape: number[], dtype: 'float32'): TensorInfo };
type CpuBackend = {
  data: { get(id: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo;
};

const ACCESS: Record<'wasm' | 'cpu', TensorAccess> = {
  wasm: {
    read: (b, t) => (b as WasmBackend).typedArrayFromHeap(t),
    output: (b, shape) => {
      const info = (b as WasmBackend).makeOutput(shape, 'float32'); // allocate first: it may grow the heap
      return { info, view: (b as WasmBackend).typedArrayFromHeap(info) };
    },
  },
  cpu: {
    read: (b, t) => {
      const v = (b as CpuBackend).data.get(t.dataId).values;
      if (!(v instanceof Float32Array)) throw new Error('cpu tensor without float32 values');
      return v;
    },
    output: (b, shape) => {
      const view = new Float32Array(shape.reduce((p, d) => p * d, 1));
      return { info: (b as CpuBackend).makeTensorInfo(shape, 'float32', view), view };
    },
  },
};

/**
 * The addon's geometry record from TF.js's convolution info:
 * [N, H, W, Cin, Ho, Wo, Cout, fh, fw, sh, sw, dh, dw, padTop, padLeft, padBottom, padRight].
 */
function geometry(info: backend_util.Conv2DInfo): Int32Array {
  const p = info.padInfo;
  return Int32Array.from([
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.outHeight,
    info.outWidth,
    info.outChannels,
    info.filterHeight,
    info.filterWidth,
    info.strideHeight,
    info.strideWidth,
    info.dilationHeight,
    info.dilationWidth,
    p.top,
    p.left,
    p.bottom,
    p.right,
  ]);
}

/** The convolution's geometry from a kernel's attributes (the backprop kernels have dilation 1). */
function convInfo(
  xShape: readonly number[],
  filterShape: readonly number[],
  a: Pick<Conv2DAttrs, 'strides' | 'pad' | 'dataFormat' | 'dimRoundingMode'> & { dilations?: Conv2DAttrs['dilations'] },
): backend_util.Conv2DInfo {
  type Shape4 = [number, number, number, number];
  const format = a.dataFormat === 'NCHW' ? 'channelsFirst' : 'channelsLast';
  return backend_util.computeConv2DInfo(
    [...xShape] as Shape4,
    [...filterShape] as Shape4,
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    false,
    format,
  );
}

/**
 * Whether the addon takes this convolution (op 0 forward, 1 dx, 2 dW), as its checks in addon.cc
 * do: NHWC float32, no empty dimension, pads from 0 to the dilated filter's extent − 1, the
 * output size that of the input (TF.js's 'ceil' or 'round' rounding can give one more), and not
 * a 1×1 strided dW, which oneDNN 2.6.3 gets wrong (it writes out of bounds). Others fall back.
 */
function supported(op: 0 | 1 | 2, info: backend_util.Conv2DInfo, dataFormat: string, ...ts: TensorInfo[]): boolean {
  if (dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') return false;
  if (ts.some((t) => t.dtype !== 'float32')) return false;
  const g = geometry(info);
  if (g.subarray(0, 13).some((v) => v < 1)) return false;
  const [, h, w, , ho, wo, , fh, fw, sh, sw, dh, dw, top, left, bottom, right] = g;
  const extH = (fh - 1) * dh + 1;
  const extW = (fw - 1) * dw + 1;
  const padsOk = [top, bottom].every((p) => p >= 0 && p < extH) && [left, right].every((p) => p >= 0 && p < extW);
  const spanH = h + top + bottom - extH;
  const spanW = w + left + right - extW;
  if (!padsOk || spanH < 0 || spanW < 0 || Math.floor(spanH / sh) + 1 !== ho || Math.floor(spanW / sw) + 1 !== wo) return false;
  return !(op === 2 && fh === 1 && fw === 1 && (sh > 1 || sw > 1));
}

type Args = { inputs: Record<string, TensorInfo>; backend: object; attrs: NamedAttrMap };

/** Whether the addon's convolutions run in bf16 now (setNativePrecision). */
let bf16Convolutions = false;

/**
 * The ids under which the addon keeps bf16 copies of tensors (conv's keepA/keepB), by the
 * tensor's dataId. A dataId's values never change while it lives, and an id is never reused, so
 * a kept copy always holds its tensor's values; it is released when the backend frees that
 * memory (watchDisposal), so that the copies live exactly as long as the tensors.
 */
const keptIds = new Map<object, number>();
let nextKeptId = 1;
const watched = new WeakSet<object>();

/** Wraps a backend's disposeData (once) to release the kept copy of the data it frees. */
function watchDisposal(backend: object, addon: NativeAddon): void {
  if (watched.has(backend)) return;
  watched.add(backend);
  const b = backend as { disposeData(dataId: object, force?: boolean): boolean };
  const dispose = b.disposeData.bind(backend);
  b.disposeData = (dataId: object, force?: boolean) => {
    const freed = dispose(dataId, force);
    const id = freed ? keptIds.get(dataId) : undefined;
    if (id !== undefined) {
      keptIds.delete(dataId);
      addon.releaseBf16(id);
    }
    return freed;
  };
}

/**
 * The id to keep t's bf16 copy under (0: none): in bf16, with the lever on. `create` false gives
 * only an id that already has a copy (a later reader, such as the filter gradient).
 */
function keepId(backend: object, addon: NativeAddon, t: TensorInfo, create: boolean): number {
  if (!bf16Convolutions || !levers().keepBf16) return 0;
  const id = keptIds.get(t.dataId);
  if (id !== undefined || !create) return id ?? 0;
  watchDisposal(backend, addon);
  keptIds.set(t.dataId, nextKeptId);
  return nextKeptId++;
}

/** The native kernel functions for one backend, each falling back to the kernel it replaced. */
function nativeKernels(backendName: 'wasm' | 'cpu', addon: NativeAddon, fallback: Map<string, KernelFunc>): KernelConfig[] {
  const access = ACCESS[backendName];
  const fall = (name: string, args: Args) => fallback.get(name)!(args as never) as TensorInfo;

  const forward = (name: string) => (args: Args) => {
    const { inputs, backend } = args;
    const attrs = args.attrs as unknown as FusedConv2DAttrs;
    const { x, filter, bias, preluActivationWeights } = inputs as {
      x: TensorInfo;
      filter: TensorInfo;
      bias?: TensorInfo;
      preluActivationWeights?: TensorInfo;
    };
    const activation = name === FusedConv2D ? attrs.activation : name === NATIVE_CONV_GELU ? 'gelu' : 'linear';
    const info = convInfo(x.shape, filter.shape, attrs);
    const ok =
      levers().native &&
      !preluActivationWeights &&
      (activation === 'linear' || activation === 'relu' || activation === 'gelu') &&
      supported(0, info, attrs.dataFormat, x, filter) &&
      !(bias && (bias.dtype !== 'float32' || tf.util.sizeFromShape(bias.shape) !== info.outChannels));
    if (!ok && name === NATIVE_CONV_GELU) {
      // The backend's own convolution with its bias, then the addon's GELU in place (element by element).
      const y = fall(FusedConv2D, { ...args, attrs: { ...args.attrs, activation: 'linear' } });
      const v = access.read(backend, y);
      addon.gelu(v, v);
      return y;
    }
    if (!ok) return fall(name, args);
    const out = access.output(backend, info.outShape);
    const b = bias ? access.read(backend, bias) : null;
    const act = activation === 'relu' ? 1 : activation === 'gelu' ? 2 : 0;
    // A training forward pass (a gradient tape records it) keeps x's bf16 copy for dW.
    const keepX = keepId(backend, addon, x, tf.engine().state.gradientDepth > 0);
    addon.conv(0, access.read(backend, x), access.read(backend, filter), b, out.view, geometry(info), act, keepX, 0);
    return out.info;
  };

  // op 1: dx of the convolution from dy and the filter (also conv2dTranspose's forward pass);
  // op 2: dW from x and dy.
  const backprop = (name: string, op: 1 | 2) => (args: Args) => {
    if (!levers().native) return fall(name, args);
    const { inputs, backend } = args;
    const attrs = args.attrs as unknown as Conv2DBackpropInputAttrs & Conv2DBackpropFilterAttrs;
    const [a, b] = op === 1 ? [inputs.dy, inputs.filter] : [inputs.x, inputs.dy];
    const xShape = op === 1 ? attrs.inputShape : inputs.x.shape;
    const filterShape = op === 1 ? inputs.filter.shape : attrs.filterShape;
    const info = convInfo(xShape, filterShape, attrs);
    if (!supported(op, info, attrs.dataFormat, a, b)) return fall(name, args);
    const out = access.output(backend, [...(op === 1 ? xShape : filterShape)]);
    // dx keeps dy's bf16 copy for the dW that follows it (conv2d's gradient computes both from
    // the same dy); dW reuses the copies that exist and keeps nothing new.
    const keepA = keepId(backend, addon, a, op === 1);
    const keepB = op === 2 ? keepId(backend, addon, b, false) : 0;
    addon.conv(op, access.read(backend, a), access.read(backend, b), null, out.view, geometry(info), 0, keepA, keepB);
    return out.info;
  };

  const fns: Record<string, (args: Args) => TensorInfo | TensorInfo[]> = {
    [Conv2D]: forward(Conv2D),
    [FusedConv2D]: forward(FusedConv2D),
    [NATIVE_CONV_GELU]: forward(NATIVE_CONV_GELU),
    [Conv2DBackpropInput]: backprop(Conv2DBackpropInput, 1),
    [Conv2DBackpropFilter]: backprop(Conv2DBackpropFilter, 2),
    ...pointwiseKernels(access, addon),
  };
  return Object.entries(fns).map(([kernelName, f]) => ({ kernelName, backendName, kernelFunc: f as unknown as KernelFunc }));
}

/**
 * The element-wise kernels of lib/tensor/fusedOps (GELU, training BatchNorm) under their own
 * names (NATIVE_POINTWISE), which fusedOps picks when they are registered and the lever is on.
 * Inputs are float32 NHWC; channels are the last dimension.
 */
function pointwiseKernels(access: TensorAccess, addon: NativeAddon): Record<string, (args: Args) => TensorInfo | TensorInfo[]> {
  const r = (b: object, t: TensorInfo) => access.read(b, t);
  const channels = (x: TensorInfo) => x.shape[x.shape.length - 1];
  return {
    [NATIVE_POINTWISE.gelu]: ({ inputs: { x }, backend }) => {
      const y = access.output(backend, x.shape);
      addon.gelu(r(backend, x), y.view);
      return y.info;
    },
    [NATIVE_POINTWISE.geluGrad]: ({ inputs: { dy, x }, backend }) => {
      const dx = access.output(backend, x.shape);
      addon.geluGrad(r(backend, dy), r(backend, x), dx.view);
      return dx.info;
    },
    [NATIVE_POINTWISE.bnStats]: ({ inputs: { x }, backend }) => {
      const c = channels(x);
      const mean = access.output(backend, [c]);
      const variance = access.output(backend, [c]);
      addon.bnStats(r(backend, x), c, r(backend, mean.info), r(backend, variance.info));
      return [mean.info, variance.info];
    },
    [NATIVE_POINTWISE.bnApply]: ({ inputs: { x, mean, invStd, gamma, beta }, backend }) => {
      const y = access.output(backend, x.shape);
      const v = (t: TensorInfo) => r(backend, t);
      addon.bnApply(v(x), channels(x), v(mean), v(invStd), v(gamma), v(beta), y.view);
      return y.info;
    },
    [NATIVE_POINTWISE.bnGeluApply]: ({ inputs: { x, mean, invStd, gamma, beta }, backend }) => {
      const z = access.output(backend, x.shape);
      const v = (t: TensorInfo) => r(backend, t);
      addon.bnGeluApply(v(x), channels(x), v(mean), v(invStd), v(gamma), v(beta), z.view);
      return z.info;
    },
    [NATIVE_POINTWISE.bnGeluGrad]: ({ inputs: { dz, x, mean, invStd, gamma, beta }, backend }) => {
      const c = channels(x);
      const outs = [access.output(backend, x.shape), ...[0, 1, 2].map(() => access.output(backend, [c]))];
      const v = (t: TensorInfo) => r(backend, t);
      // Views taken after every allocation: an allocation may grow (and so replace) the wasm heap.
      const [dx, dgamma, dbeta, dbias] = outs.map((o) => v(o.info));
      addon.bnGeluGrad(v(dz), v(x), c, v(mean), v(invStd), v(gamma), v(beta), dx!, dgamma!, dbeta!, dbias!);
      return outs.map((o) => o.info);
    },
    [NATIVE_POINTWISE.adam]: ({ inputs: { p, g, m, v }, backend, attrs }) => {
      const { beta1, beta2, eps, stepSize, sqrtBc2 } = attrs as Record<string, number>;
      const outs = [0, 1, 2].map(() => access.output(backend, p.shape));
      // Views taken after every allocation: an allocation may grow (and so replace) the wasm heap.
      const [po, mo, vo] = outs.map((o) => r(backend, o.info));
      addon.adam(r(backend, p), r(backend, g), r(backend, m), r(backend, v), beta1!, beta2!, eps!, stepSize!, sqrtBc2!, po!, mo!, vo!);
      return outs.map((o) => o.info);
    },
    // Inputs p0, g0, m0, v0, p1, … (attr count); outputs p0', m0', v0', p1', ….
    [NATIVE_POINTWISE.adamMany]: ({ inputs, backend, attrs }) => {
      const { count, beta1, beta2, eps, stepSize, sqrtBc2 } = attrs as Record<string, number>;
      const input = (name: string, k: number) => inputs[`${name}${k}`]!;
      const outs = Array.from({ length: 3 * count! }, (_, i) => access.output(backend, input('p', Math.floor(i / 3)).shape));
      // Views taken after every allocation: an allocation may grow (and so replace) the wasm heap.
      const arrays: Float32Array[] = [];
      for (let k = 0; k < count!; k++)
        arrays.push(
          ...['p', 'g', 'm', 'v'].map((n) => r(backend, input(n, k))),
          ...outs.slice(3 * k, 3 * k + 3).map((o) => r(backend, o.info)),
        );
      addon.adamMany(arrays, beta1!, beta2!, eps!, stepSize!, sqrtBc2!);
      return outs.map((o) => o.info);
    },
    [NATIVE_POINTWISE.bnGrad]: ({ inputs: { dy, x, mean, invStd, gamma }, backend }) => {
      const c = channels(x);
      const dx = access.output(backend, x.shape);
      const dgamma = access.output(backend, [c]);
      const dbeta = access.output(backend, [c]);
      const v = (t: TensorInfo) => r(backend, t);
      // Views taken after every allocation: an allocation may grow (and so replace) the wasm heap.
      addon.bnGrad(v(dy), v(x), c, v(mean), v(invStd), v(gamma), v(dx.info), v(dgamma.info), v(dbeta.info));
      return [dx.info, dgamma.info, dbeta.info];
    },
  };
}

/**
 * The names of the addon's element-wise kernels: GELU y = x·Φ(x) ({x}) and its gradient
 * ({dy, x}); training BatchNorm statistics ({x} → [mean, variance]), apply
 * ({x, mean, invStd, gamma, beta}) and gradient ({dy, x, mean, invStd, gamma} → [dx, dγ, dβ]);
 * BatchNorm then GELU in one pass ({x, mean, invStd, gamma, beta}) and its gradient
 * ({dz, x, mean, invStd, gamma, beta} → [dx, dγ, dβ, dbias]); one Adam update ({p, g, m, v} and
 * the attrs of fusedOps' FusedAdam → [p', m', v']), and of every parameter at once
 * ({p0, g0, m0, v0, p1, …}, attrs with count → [p0', m0', v0', p1', …]).
 */
export const NATIVE_POINTWISE = {
  gelu: 'NativeGelu',
  geluGrad: 'NativeGeluGrad',
  bnStats: 'NativeBNStats',
  bnApply: 'NativeBNApply',
  bnGrad: 'NativeBNGrad',
  bnGeluApply: 'NativeBNGeluApply',
  bnGeluGrad: 'NativeBNGeluGrad',
  adam: 'NativeAdam',
  adamMany: 'NativeAdamMany',
} as const;

/**
 * The addon's convolution with bias and exact GELU in one oneDNN primitive (a post-op): inputs
 * {x, filter, bias}, FusedConv2D's attributes. For inference (it has no gradient); where oneDNN
 * cannot take the geometry, the backend's convolution and then the addon's GELU.
 */
export const NATIVE_CONV_GELU = 'NativeConvGelu';

const registeredOn = new Set<string>();

/** The most OpenMP threads the addon takes (setThreads). */
export const NATIVE_MAX_THREADS = 256;

/** The kernel names the addon takes over. */
export const NATIVE_KERNEL_NAMES = [Conv2D, FusedConv2D, Conv2DBackpropInput, Conv2DBackpropFilter] as const;

/**
 * Registers the oneDNN kernels on a backend over the ones registered now (which stay as the
 * fallback), with `threads` oneDNN threads. Returns the oneDNN version, or why not (one line).
 * Idempotent per backend.
 */
export function registerNativeKernels(backendName: 'wasm' | 'cpu', threads: number): { version?: string; why?: string } {
  const s = nativeStatus();
  if (!s.addon) return { why: s.why };
  // The addon takes 1..256 OpenMP threads (OpenMP aborts when it cannot make the threads it was
  // told to); DIFFUSION_THREADS allows up to 1024 for the wasm pool.
  s.addon.setThreads(Math.max(1, Math.min(NATIVE_MAX_THREADS, Math.floor(threads))));
  if (registeredOn.has(backendName)) return { version: s.version };
  const fallback = new Map<string, KernelFunc>();
  for (const name of NATIVE_KERNEL_NAMES) {
    const old = tf.getKernel(name, backendName);
    if (!old) return { why: `the ${backendName} backend has no ${name} kernel to fall back to` };
    fallback.set(name, old.kernelFunc);
  }
  for (const config of nativeKernels(backendName, s.addon, fallback)) {
    const old = tf.getKernel(config.kernelName, backendName);
    if (old) tf.unregisterKernel(config.kernelName, backendName);
    if (old?.setupFunc) config.setupFunc = old.setupFunc;
    tf.registerKernel(config);
  }
  registeredOn.add(backendName);
  return { version: s.version };
}

/** A convolution precision of the CPU engines (DIFFUSION_PRECISION, initEngine's precision, --precision). */
export type Precision = 'fp32' | 'bf16';

/**
 * Whether a CPU with these /proc/cpuinfo flags runs bf16 in hardware: AVX512-BF16 or AMX-BF16
 * (without them oneDNN emulates bf16, slower than fp32).
 */
export function cpuHasBf16(flags: string): boolean {
  return /(^|\s)(avx512_bf16|amx_bf16)(\s|$)/.test(flags);
}

/** This machine's CPU flags (the first "flags" line of /proc/cpuinfo; '' where there is none). */
function cpuFlags(): string {
  try {
    return /^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  } catch {
    return '';
  }
}

/**
 * Sets the addon's convolution precision. Returns the precision in force and, when bf16 was asked
 * for and cannot run, why (one line): no addon, no bf16 in this CPU, or none in oneDNN for it.
 */
export function setNativePrecision(want: Precision, flags = cpuFlags()): { precision: Precision; why?: string } {
  const addon = nativeStatus().addon;
  bf16Convolutions = false;
  if (want === 'fp32') {
    addon?.setPrecision(0);
    return { precision: 'fp32' };
  }
  if (!addon) return { precision: 'fp32', why: 'bf16 needs the oneDNN addon on the wasm or cpu engine: running fp32' };
  if (!cpuHasBf16(flags)) return { precision: 'fp32', why: 'this CPU has no bf16 instructions (AVX512-BF16 or AMX): running fp32' };
  try {
    addon.setPrecision(1);
    bf16Convolutions = true;
  } catch (e) {
    addon.setPrecision(0);
    return { precision: 'fp32', why: `${String((e as Error).message).split('\n')[0]}: running fp32` };
  }
  return { precision: 'bf16' };
}
