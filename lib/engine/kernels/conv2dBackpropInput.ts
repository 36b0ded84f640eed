/**
 * Conv2DBackpropInput for wasm (also the forward pass of conv2dTranspose), composed from XNNPACK
 * convolutions instead of the stock scalar loop. Three forms: one GEMM for a single-pixel dy
 * (lever singlePixel), stride-phase sub-convolutions when zero insertion would insert zeros
 * (lever phases, with exactPhases), and the convolution of the zero-inserted dy otherwise.
 */
import {
  backend_util,
  Concat,
  Conv2D,
  Conv2DBackpropInput,
  Fill,
  PadV2,
  Reshape,
  Reverse,
  Slice,
  StridedSlice,
} from '@tensorflow/tfjs-core';
import type {
  ConcatAttrs,
  Conv2DAttrs,
  Conv2DBackpropInputAttrs,
  Conv2DBackpropInputInputs,
  FillAttrs,
  KernelConfig,
  PadV2Attrs,
  ReshapeAttrs,
  ReverseAttrs,
  SliceAttrs,
  StridedSliceAttrs,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { levers } from '../levers';
import { backpropConvInfo, convExplicit, free, kernelFunc, run, transpose, type Backend, type Pads } from './util';

/**
 * dx of a strided convolution as sh·sw phase sub-convolutions (the forward pass of
 * conv2dTranspose too). Padded output row h' = h + padTop = q·sh + r only receives filter taps
 * kh ≡ r (mod sh), so each phase r is a stride-1 convolution of dy with the flipped sub-filter
 * W[r::sh, rw::sw], producing rows q0, q0+1, …; the phases are then interleaved. Unlike a
 * convolution over zero-inserted dy, no multiply touches an inserted zero (3/4 of the work at
 * stride 2).
 *
 * When h and w are multiples of the strides (28 = 2·14), the window starts at h' = padTop and
 * covers exactly the h×w outputs (no final Slice; lever exactPhases); otherwise it starts at
 * h' = 0 and the result is cropped.
 */
function backpropInputPhases(
  b: Backend,
  dy: TensorInfo,
  filter: TensorInfo,
  info: backend_util.Conv2DInfo,
  h: number,
  w: number,
): TensorInfo {
  const [n, ho, wo, co] = dy.shape;
  const ci = filter.shape[2];
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const { top: pT, left: pL } = info.padInfo;
  const exact = levers().exactPhases && h % sh === 0 && w % sw === 0;
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
        phase = run(b, Fill, {}, { shape: [n, nh, nw, ci], value: 0, dtype: 'float32' } satisfies FillAttrs);
      } else {
        const sub = run(b, StridedSlice, { x: filter }, {
          begin: [r, rw, 0, 0],
          end: [fh, fw, ci, co],
          strides: [sh, sw, 1, 1],
          beginMask: 0,
          endMask: 0,
          ellipsisMask: 0,
          newAxisMask: 0,
          shrinkAxisMask: 0,
        } satisfies StridedSliceAttrs);
        const rev = run(b, Reverse, { x: sub }, { dims: [0, 1] } satisfies ReverseAttrs);
        const wT = transpose(b, rev, [0, 1, 3, 2]); // [jh,jw,Cout,Cin]
        // Phase output q in [q0, q0+nh) reads dy[q - jh + 1 .. q].
        const pads: Pads = { top: jh - 1 - qh0, left: jw - 1 - qw0, bottom: qh0 + nh - ho, right: qw0 + nw - wo };
        phase = convExplicit(b, dy, wT, [1, 1], pads);
        free(b, sub, rev, wT);
      }
      cols.push(run(b, Reshape, { x: phase }, { shape: [n, nh, 1, nw, 1, ci] } satisfies ReshapeAttrs));
      free(b, phase);
    }
    rows.push(cols.length > 1 ? run(b, Concat, cols as never, { axis: 4 } satisfies ConcatAttrs) : cols[0]);
    if (cols.length > 1) free(b, ...cols);
  }
  const all = rows.length > 1 ? run(b, Concat, rows as never, { axis: 2 } satisfies ConcatAttrs) : rows[0];
  if (rows.length > 1) free(b, ...rows);
  const flat = run(b, Reshape, { x: all }, { shape: [n, nh * sh, nw * sw, ci] } satisfies ReshapeAttrs);
  free(b, all);
  if (exact) return flat;
  const dx = run(b, Slice, { x: flat }, { begin: [0, pT - startH, pL - startW, 0], size: [n, h, w, ci] } satisfies SliceAttrs);
  free(b, flat);
  return dx;
}

/** dx = conv of zero-inserted dy with the spatially flipped filter, transposed to [fh,fw,Cout,Cin]. */
function backpropInputZeroInserted(
  b: Backend,
  dy: TensorInfo,
  filter: TensorInfo,
  info: backend_util.Conv2DInfo,
  h: number,
  w: number,
): TensorInfo {
  const [n, ho, wo, co] = dy.shape;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  let z = dy;
  if (sh > 1 || sw > 1) {
    // Zero insertion: [N,Ho,1,Wo,1,C] padded to [N,Ho,sh,Wo,sw,C], then cropped to (Ho-1)*sh+1 rows.
    const r = run(b, Reshape, { x: dy }, { shape: [n, ho, 1, wo, 1, co] } satisfies ReshapeAttrs);
    const paddings: Array<[number, number]> = [
      [0, 0],
      [0, 0],
      [0, sh - 1],
      [0, 0],
      [0, sw - 1],
      [0, 0],
    ];
    const p = run(b, PadV2, { x: r }, { paddings, constantValue: 0 } satisfies PadV2Attrs);
    const f = run(b, Reshape, { x: p }, { shape: [n, ho * sh, wo * sw, co] } satisfies ReshapeAttrs);
    z = run(b, Slice, { x: f }, { begin: [0, 0, 0, 0], size: [n, (ho - 1) * sh + 1, (wo - 1) * sw + 1, co] } satisfies SliceAttrs);
    free(b, r, p, f);
  }
  const rev = run(b, Reverse, { x: filter }, { dims: [0, 1] } satisfies ReverseAttrs);
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
  const w1 = run(b, Reshape, { x: ft }, { shape: [1, 1, co, fh * fw * ci] } satisfies ReshapeAttrs);
  const out = run(b, Conv2D, { x: dy, filter: w1 }, {
    strides: [1, 1],
    pad: 'valid',
    dilations: [1, 1],
    dataFormat: 'NHWC',
    dimRoundingMode: undefined,
  } satisfies Conv2DAttrs);
  const dx = run(b, Reshape, { x: out }, { shape: [n, fh, fw, ci] } satisfies ReshapeAttrs);
  free(b, ft, w1, out);
  return dx;
}

export const conv2DBackpropInput = kernelFunc<Conv2DBackpropInputInputs, Conv2DBackpropInputAttrs>(({ inputs, backend, attrs }) => {
  const b = backend as Backend;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const inputShape = attrs.inputShape;
  const info = backpropConvInfo(Conv2DBackpropInput, attrs, inputShape, filter.shape);
  const [, ho, wo] = dy.shape;
  const [, h, w] = inputShape;
  const { top: pT, left: pL } = info.padInfo;
  const lv = levers();
  if (lv.singlePixel && ho === 1 && wo === 1 && pT === 0 && pL === 0 && h === info.filterHeight && w === info.filterWidth) {
    return backpropInputSinglePixel(b, dy, filter, h, w);
  }
  // Phases pay off only when zero insertion would insert zeros (dy wider than one pixel).
  const zerosInserted = (info.strideHeight > 1 && ho > 1) || (info.strideWidth > 1 && wo > 1);
  if (!(zerosInserted && lv.phases)) return backpropInputZeroInserted(b, dy, filter, info, h, w);
  return backpropInputPhases(b, dy, filter, info, h, w);
});

export const conv2DBackpropInputConfig: KernelConfig = {
  kernelName: Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropInput,
};
