/**
 * Training kernels for the wasm backend, composed from its own XNNPACK Conv2D.
 *
 * tfjs-backend-wasm has no Conv2DBackpropFilter (so training fails), and its
 * Conv2DBackpropInput (also the forward pass of conv2dTranspose) and Tile are scalar loops.
 * Each replacement here calls only stock wasm kernels, so all heavy work runs in XNNPACK's
 * threaded, SIMD convolutions. Replaced kernels keep the stock kernel's setupFunc.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';

type Backend = { disposeData(dataId: object): boolean };
type Pads = { top: number; bottom: number; left: number; right: number };

/** Stock kernels that this module replaces, captured before replacement. */
const replaced = new Map<string, KernelFunc>();

function stock(name: string): KernelFunc {
  const orig = replaced.get(name);
  if (orig) return orig;
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm kernel ${name} is not registered (is @tensorflow/tfjs-backend-wasm imported?)`);
  return k.kernelFunc;
}

/** Runs a stock wasm kernel by name. */
function run(backend: Backend, name: string, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap = {}): TensorInfo {
  return stock(name)({ inputs, backend: backend as never, attrs }) as TensorInfo;
}

/** Frees intermediates created inside a kernel. */
function free(backend: Backend, ...ts: TensorInfo[]): void {
  for (const t of ts) backend.disposeData(t.dataId);
}

const transpose = (b: Backend, x: TensorInfo, perm: number[]) => run(b, 'Transpose', { x }, { perm });

/**
 * Stride-1 NHWC convolution with explicit (possibly negative) padding and a dilation.
 * Negative padding crops the input first, since XNNPACK only takes non-negative pads.
 * x: [N,H,W,Cin], w: [fh,fw,Cin,Cout] -> [N,Ho,Wo,Cout].
 */
function convExplicit(b: Backend, x: TensorInfo, w: TensorInfo, dilation: [number, number], pads: Pads): TensorInfo {
  const [n, h, wd, c] = x.shape;
  const crop = { top: Math.max(0, -pads.top), bottom: Math.max(0, -pads.bottom), left: Math.max(0, -pads.left), right: Math.max(0, -pads.right) };
  let input = x;
  if (crop.top || crop.bottom || crop.left || crop.right) {
    input = run(b, 'Slice', { x }, { begin: [0, crop.top, crop.left, 0], size: [n, h - crop.top - crop.bottom, wd - crop.left - crop.right, c] });
  }
  const pad = [
    [0, 0],
    [Math.max(0, pads.top), Math.max(0, pads.bottom)],
    [Math.max(0, pads.left), Math.max(0, pads.right)],
    [0, 0],
  ];
  const out = run(b, 'Conv2D', { x: input, filter: w }, { strides: [1, 1], pad: pad as never, dilations: dilation, dataFormat: 'NHWC', dimRoundingMode: undefined as never });
  if (input !== x) free(b, input);
  return out;
}

type Shape4 = [number, number, number, number];

/** The forward convolution's geometry from a backprop kernel's attributes (NHWC only). */
function backpropConvInfo(kernel: string, attrs: NamedAttrMap | undefined, xShape: number[], filterShape: number[]): backend_util.Conv2DInfo {
  const { strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as {
    strides: [number, number] | number; pad: 'valid' | 'same' | number | backend_util.ExplicitPadding; dataFormat: 'NHWC' | 'NCHW';
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
  if (dataFormat === 'NCHW') throw new Error(`${kernel} on wasm supports NHWC only`);
  return backend_util.computeConv2DInfo(xShape as Shape4, filterShape as Shape4, strides, 1, pad, dimRoundingMode);
}

/** dW = conv of x^T ([Cin,H,W,N]) with dy^T ([Ho,Wo,N,Cout]) as filter, dilation = forward stride. */
const conv2DBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as unknown as Backend;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const info = backpropConvInfo('Conv2DBackpropFilter', attrs, x.shape, (attrs as unknown as { filterShape: Shape4 }).filterShape);
  const [, h, w] = x.shape;
  const [, ho, wo] = dy.shape;
  const { top, left } = info.padInfo;
  const xt = transpose(b, x, [3, 1, 2, 0]);
  const dyt = transpose(b, dy, [1, 2, 0, 3]);
  const pads: Pads = {
    top,
    left,
    bottom: info.filterHeight - h - top + (ho - 1) * info.strideHeight,
    right: info.filterWidth - w - left + (wo - 1) * info.strideWidth,
  };
  const dwT = convExplicit(b, xt, dyt, [info.strideHeight, info.strideWidth], pads); // [Cin,fh,fw,Cout]
  const dw = transpose(b, dwT, [1, 2, 0, 3]);
  free(b, xt, dyt, dwT);
  return dw;
};

/**
 * dx of a strided convolution as sh·sw phase sub-convolutions (the forward pass of
 * conv2dTranspose too). Padded output row h' = h + padTop = q·sh + r only receives filter taps
 * kh ≡ r (mod sh), so each phase r is a stride-1 convolution of dy with the flipped sub-filter
 * W[r::sh, rw::sw], producing rows q0, q0+1, …; the phases are then interleaved. Unlike a
 * convolution over zero-inserted dy, no multiply touches an inserted zero (3/4 of the work at
 * stride 2).
 *
 * When h and w are multiples of the strides (28 = 2·14), the window starts at h' = padTop and
 * covers exactly the h×w outputs (no final Slice); otherwise it starts at h' = 0 and the result
 * is cropped.
 */
function backpropInputPhases(b: Backend, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo, h: number, w: number): TensorInfo {
  const [n, ho, wo, co] = dy.shape;
  const ci = filter.shape[2];
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const { top: pT, left: pL } = info.padInfo;
  const exact = EXACT_PHASES.enabled && h % sh === 0 && w % sw === 0;
  // Window of padded rows h' = startH + i, i in [0, nh·sh) (columns alike).
  const startH = exact ? pT : 0;
  const startW = exact ? pL : 0;
  const nh = exact ? h / sh : Math.ceil((h + pT) / sh);
  const nw = exact ? w / sw : Math.ceil((w + pL) / sw);
  const rows: TensorInfo[] = [];
  for (let oh = 0; oh < sh; oh++) {
    const r = (startH + oh) % sh;
    const qh0 = Math.floor((startH + oh) / sh);
    const cols: TensorInfo[] = [];
    for (let ow = 0; ow < sw; ow++) {
      const rw = (startW + ow) % sw;
      const qw0 = Math.floor((startW + ow) / sw);
      const jh = Math.ceil((fh - r) / sh);
      const jw = Math.ceil((fw - rw) / sw);
      let phase: TensorInfo;
      if (jh <= 0 || jw <= 0) {
        phase = run(b, 'Fill', {}, { shape: [n, nh, nw, ci], value: 0, dtype: 'float32' });
      } else {
        const sub = run(b, 'StridedSlice', { x: filter }, { begin: [r, rw, 0, 0], end: [fh, fw, ci, co], strides: [sh, sw, 1, 1], beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0 });
        const rev = run(b, 'Reverse', { x: sub }, { dims: [0, 1] });
        const wT = transpose(b, rev, [0, 1, 3, 2]); // [jh,jw,Cout,Cin]
        // Phase output q in [q0, q0+nh) reads dy[q - jh + 1 .. q].
        const pads: Pads = { top: jh - 1 - qh0, left: jw - 1 - qw0, bottom: qh0 + nh - ho, right: qw0 + nw - wo };
        phase = convExplicit(b, dy, wT, [1, 1], pads);
        free(b, sub, rev, wT);
      }
      cols.push(run(b, 'Reshape', { x: phase }, { shape: [n, nh, 1, nw, 1, ci] }));
      free(b, phase);
    }
    rows.push(cols.length > 1 ? run(b, 'Concat', cols as never, { axis: 4 }) : cols[0]);
    if (cols.length > 1) free(b, ...cols);
  }
  const all = rows.length > 1 ? run(b, 'Concat', rows as never, { axis: 2 }) : rows[0];
  if (rows.length > 1) free(b, ...rows);
  const flat = run(b, 'Reshape', { x: all }, { shape: [n, nh * sh, nw * sw, ci] });
  free(b, all);
  if (exact) return flat;
  const dx = run(b, 'Slice', { x: flat }, { begin: [0, pT - startH, pL - startW, 0], size: [n, h, w, ci] });
  free(b, flat);
  return dx;
}

/** Switch for the exact-size phase decomposition (A/B benchmark and tests). */
export const EXACT_PHASES = { enabled: true };

/** dx = conv of zero-inserted dy with the spatially flipped filter, transposed to [fh,fw,Cout,Cin]. */
function backpropInputZeroInserted(b: Backend, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo, h: number, w: number): TensorInfo {
  const [n, ho, wo, co] = dy.shape;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  let z = dy;
  if (sh > 1 || sw > 1) {
    // Zero insertion: [N,Ho,1,Wo,1,C] padded to [N,Ho,sh,Wo,sw,C], then cropped to (Ho-1)*sh+1 rows.
    const r = run(b, 'Reshape', { x: dy }, { shape: [n, ho, 1, wo, 1, co] });
    const p = run(b, 'PadV2', { x: r }, { paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]] as never, constantValue: 0 });
    const f = run(b, 'Reshape', { x: p }, { shape: [n, ho * sh, wo * sw, co] });
    z = run(b, 'Slice', { x: f }, { begin: [0, 0, 0, 0], size: [n, (ho - 1) * sh + 1, (wo - 1) * sw + 1, co] });
    free(b, r, p, f);
  }
  const rev = run(b, 'Reverse', { x: filter }, { dims: [0, 1] });
  const wT = transpose(b, rev, [0, 1, 3, 2]); // [fh,fw,Cout,Cin]
  const fh = info.filterHeight;
  const fw = info.filterWidth;
  const top = fh - 1 - info.padInfo.top;
  const left = fw - 1 - info.padInfo.left;
  const pads: Pads = { top, left, bottom: h + fh - 1 - z.shape[1] - top, right: w + fw - 1 - z.shape[2] - left };
  const dx = convExplicit(b, z, wT, [1, 1], pads);
  free(b, rev, wT);
  if (z !== dy) free(b, z);
  return dx;
}

/**
 * dx when dy is a single pixel and the filter window covers dx exactly (no padding): the
 * Unflatten ConvTranspose2d(7,7,0) of the Part B UNet, [B,1,1,Cin] → [B,7,7,Cout]. Then
 * dx[b,h,w,ci] = Σ_co dy[b,co] · filter[h,w,ci,co], one GEMM (a 1×1 convolution) of dy with the
 * filter transposed to [Cout, fh·fw·Cin]. Either convolution form would multiply mostly padding
 * zeros here (fh·fw times the work: 49× for the Unflatten).
 */
function backpropInputSinglePixel(b: Backend, dy: TensorInfo, filter: TensorInfo, fh: number, fw: number): TensorInfo {
  const [n, , , co] = dy.shape;
  const ci = filter.shape[2];
  const ft = transpose(b, filter, [3, 0, 1, 2]); // [Cout, fh, fw, Cin]
  const w1 = run(b, 'Reshape', { x: ft }, { shape: [1, 1, co, fh * fw * ci] });
  const out = run(b, 'Conv2D', { x: dy, filter: w1 }, { strides: [1, 1], pad: 'valid', dilations: [1, 1], dataFormat: 'NHWC', dimRoundingMode: undefined as never });
  const dx = run(b, 'Reshape', { x: out }, { shape: [n, fh, fw, ci] });
  free(b, ft, w1, out);
  return dx;
}

const conv2DBackpropInput: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as unknown as Backend;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const inputShape = (attrs as unknown as { inputShape: Shape4 }).inputShape;
  const info = backpropConvInfo('Conv2DBackpropInput', attrs, inputShape, filter.shape);
  const [, ho, wo] = dy.shape;
  const [, h, w] = inputShape;
  const { top: pT, left: pL } = info.padInfo;
  if (SINGLE_PIXEL.enabled && ho === 1 && wo === 1 && pT === 0 && pL === 0 && h === info.filterHeight && w === info.filterWidth) {
    return backpropInputSinglePixel(b, dy, filter, h, w);
  }
  // Phases pay off only when zero insertion would insert zeros (dy wider than one pixel).
  const zerosInserted = (info.strideHeight > 1 && ho > 1) || (info.strideWidth > 1 && wo > 1);
  if (!(zerosInserted && PHASES.enabled)) return backpropInputZeroInserted(b, dy, filter, info, h, w);
  return backpropInputPhases(b, dy, filter, info, h, w);
};

/** Switch for the benchmark and tests (both paths are kept correct). */
export const PHASES = { enabled: true };
/** Switch for the single-pixel-dy GEMM path of Conv2DBackpropInput (A/B benchmark and tests). */
export const SINGLE_PIXEL = { enabled: true };

/** Tile as one memcpy-speed Concat per repeated axis (the stock kernel is a scalar index loop). */
const tile: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as unknown as Backend;
  const { x } = inputs as { x: TensorInfo };
  const { reps } = attrs as unknown as { reps: number[] };
  let cur = x;
  reps.forEach((r, axis) => {
    if (r === 1) return;
    const next = run(b, 'Concat', Array.from({ length: r }, () => cur) as never, { axis });
    if (cur !== x) free(b, cur);
    cur = next;
  });
  // Kernels must return a fresh tensor; an all-ones reps still needs a copy.
  return cur === x ? run(b, 'Identity', { x }) : cur;
};

type RefBackend = Backend & { incRef(dataId: object): void };

/**
 * Identity as a new reference to the same memory (as the cpu backend does), instead of the stock
 * copy. TF.js tensors are immutable, and the engine clones (Identity) every tensor it saves for
 * the backward pass: ~680 copies per Part B training step, all of them free this way.
 */
const identity: KernelFunc = ({ inputs, backend }) => {
  const { x } = inputs as { x: TensorInfo };
  if (!ZERO_COPY.enabled || x.dtype === 'string') return stock('Identity')({ inputs, backend, attrs: {} }) as TensorInfo;
  (backend as unknown as RefBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

/** Cast to the same dtype (every Multiply gradient casts its other input) is a reference too. */
const cast: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: TensorInfo };
  const { dtype } = attrs as unknown as { dtype: string };
  if (!ZERO_COPY.enabled || dtype !== x.dtype || x.dtype === 'string') return stock('Cast')({ inputs, backend, attrs }) as TensorInfo;
  (backend as unknown as RefBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

type HeapBackend = Backend & {
  typedArrayFromHeap(t: TensorInfo): Float32Array;
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
};

/**
 * Sum / Mean of a float32 tensor over its leading axes [0..k) (bias gradients: [B,H,W,C] → [C];
 * the loss: all axes) as one contiguous JS pass with float64 accumulators. The stock kernels first
 * transpose the reduced axes innermost (a full strided copy), then reduce on one thread.
 * Returns null for other cases (the stock kernel runs).
 */
function reduceLeading(b: Backend, x: TensorInfo, axis: number | number[], keepDims: boolean, mean: boolean): TensorInfo | null {
  if (!REDUCE.enabled || x.dtype !== 'float32') return null;
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
  const acc = new Float64Array(inner);
  for (let i = 0; i < xs.length; i += inner) for (let j = 0; j < inner; j++) acc[j] += xs[i + j];
  const scale = mean ? 1 / outer : 1;
  for (let j = 0; j < inner; j++) ys[j] = acc[j] * scale;
  return out;
}

const sum: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: TensorInfo };
  const { axis, keepDims } = attrs as unknown as { axis: number | number[]; keepDims: boolean };
  return reduceLeading(backend as unknown as Backend, x, axis, keepDims, false) ?? (stock('Sum')({ inputs, backend, attrs }) as TensorInfo);
};

const mean: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: TensorInfo };
  const { axis, keepDims } = attrs as unknown as { axis: number | number[]; keepDims: boolean };
  return reduceLeading(backend as unknown as Backend, x, axis, keepDims, true) ?? (stock('Mean')({ inputs, backend, attrs }) as TensorInfo);
};

/**
 * Concat and SplitV of float32 tensors as JS copy loops. The stock kernels copy one inner chunk
 * per subarray/set call (Concat) or per Slice row: with a channel-axis chunk of 16–64 floats (the
 * UNet's skip concats and their gradients) the call overhead dominates. Long chunks still use set().
 */
function copyChunks(src: Float32Array, srcStride: number, srcOff: number, dst: Float32Array, dstStride: number, dstOff: number, chunk: number, outer: number): void {
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

const concat: KernelFunc = ({ inputs, backend, attrs }) => {
  const xs = inputs as unknown as TensorInfo[];
  const rank = xs[0]?.shape.length ?? 0;
  const axisRaw = (attrs as unknown as { axis: number | number[] }).axis;
  const axis0 = Array.isArray(axisRaw) ? axisRaw[0] : axisRaw;
  const axis = axis0 < 0 ? axis0 + rank : axis0;
  const nonEmpty = xs.filter((t) => t.shape.reduce((p, q) => p * q, 1) > 0);
  if (!COPY_LOOPS.enabled || nonEmpty.length < 2 || xs.some((t) => t.dtype !== 'float32' || t.shape.length !== rank)) {
    return stock('Concat')({ inputs, backend, attrs }) as TensorInfo;
  }
  const hb = backend as unknown as HeapBackend;
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
};

const splitV: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: TensorInfo };
  const { numOrSizeSplits, axis: axisRaw } = attrs as unknown as { numOrSizeSplits: number | number[]; axis: number | number[] };
  const rank = x.shape.length;
  const a0 = Array.isArray(axisRaw) ? axisRaw[0] : axisRaw;
  const axis = a0 < 0 ? a0 + rank : a0;
  if (!COPY_LOOPS.enabled || x.dtype !== 'float32') return stock('SplitV')({ inputs, backend, attrs }) as unknown as TensorInfo;
  const sizes = backend_util.prepareSplitSize(x as never, numOrSizeSplits, axis) as number[];
  const hb = backend as unknown as HeapBackend;
  const outer = x.shape.slice(0, axis).reduce((p, q) => p * q, 1);
  const unit = x.shape.slice(axis + 1).reduce((p, q) => p * q, 1);
  const outs = sizes.map((sz) => hb.makeOutput(x.shape.map((d, i) => (i === axis ? sz : d)), 'float32'));
  const xv = hb.typedArrayFromHeap(x);
  let off = 0;
  outs.forEach((o, i) => {
    const chunk = sizes[i] * unit;
    copyChunks(xv, x.shape[axis] * unit, off, hb.typedArrayFromHeap(o), chunk, 0, chunk, outer);
    off += chunk;
  });
  return outs as unknown as TensorInfo;
};

/** Switch for the JS Concat/SplitV copy loops (A/B benchmark and tests). */
export const COPY_LOOPS = { enabled: true };

/** Switch for the leading-axes Sum/Mean (A/B benchmark and tests). */
export const REDUCE = { enabled: true };

/** Switch for the zero-copy Identity/Cast (A/B benchmark and tests). */
export const ZERO_COPY = { enabled: true };

/** The kernels this module supplies, by name. */
export const SUPPLIED_WASM_KERNELS: Record<string, KernelFunc> = {
  Conv2DBackpropFilter: conv2DBackpropFilter,
  Conv2DBackpropInput: conv2DBackpropInput,
  Tile: tile,
  Identity: identity,
  Cast: cast,
  Sum: sum,
  Mean: mean,
  Concat: concat,
  SplitV: splitV,
};

let registered = false;

/** Registers (or replaces) the supplied kernels on the 'wasm' backend; idempotent. */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  for (const [kernelName, kernelFunc] of Object.entries(SUPPLIED_WASM_KERNELS)) {
    const old = tf.getKernel(kernelName, 'wasm');
    if (old) replaced.set(kernelName, old.kernelFunc);
    if (old) tf.unregisterKernel(kernelName, 'wasm');
    const config: KernelConfig = { kernelName, backendName: 'wasm', kernelFunc };
    if (old?.setupFunc) config.setupFunc = old.setupFunc;
    tf.registerKernel(config);
  }
  registered = true;
}
