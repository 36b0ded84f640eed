/**
 * Float64 plain-TS reference of Part A's loops for the Gaussian oracle, written independently of
 * lib/ (no tensors except to replay the Rng's noise draws). Images are flat NHWC Float64Arrays.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../lib/tensor/random';

export interface RefClass {
  mu: Float64Array; // H*W*C
  s: number;
}

export interface RefModel {
  H: number;
  W: number;
  C: number;
  alphasCumprod: Float64Array;
  varianceType: 'learned_range' | 'fixed_small' | 'fixed_large';
  /** raw variance channel map (H*W*C) at t, for learned_range */
  v: (t: number) => Float64Array;
  classes: Record<string, RefClass>;
}

/** Replays an Rng's draws as float64 arrays (the same shapes in the same order give the same values). */
export class Replay {
  private rng: Rng;
  constructor(seed: number) {
    this.rng = new Rng(seed);
  }
  next(shape: number[]): Float64Array {
    const t = this.rng.normal(shape);
    const d = Float64Array.from(t.dataSync());
    t.dispose();
    return d;
  }
}

export function ab(m: RefModel, t: number): number {
  return t < 0 ? 1 : m.alphasCumprod[t];
}

/** E[ε | x_t] for x₀ ~ N(μ, s²): √(1−ᾱ)(x − √ᾱ μ)/(ᾱ s² + 1 − ᾱ), batch of B images. */
export function epsRef(m: RefModel, x: Float64Array, t: number, prompt: string): Float64Array {
  const cls = m.classes[prompt];
  const a = ab(m, t);
  const g = Math.sqrt(1 - a) / (a * cls.s * cls.s + 1 - a);
  const n = m.H * m.W * m.C;
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = g * (x[i] - Math.sqrt(a) * cls.mu[i % n]);
  return out;
}

export function tileV(m: RefModel, t: number, B: number): Float64Array {
  const v = m.v(t);
  const out = new Float64Array(v.length * B);
  for (let b = 0; b < B; b++) out.set(v, b * v.length);
  return out;
}

export function cfgRef(eu: Float64Array, ec: Float64Array, g: number): Float64Array {
  return eu.map((u, i) => u + g * (ec[i] - u));
}

export interface Est {
  eps: Float64Array;
  v?: Float64Array;
}

/** One strided step t → tp (Eq. A.3 + the variance term) with the noise z. */
export function stepRef(m: RefModel, x: Float64Array, e: Est, t: number, tp: number, z: Float64Array): Float64Array {
  const a = ab(m, t);
  const ap = ab(m, tp);
  const alpha = a / ap;
  const beta = 1 - alpha;
  const post = Math.max(((1 - ap) / (1 - a)) * beta, 1e-20);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const x0 = (x[i] - Math.sqrt(1 - a) * e.eps[i]) / Math.sqrt(a);
    const mean = ((Math.sqrt(ap) * beta) / (1 - a)) * x0 + ((Math.sqrt(alpha) * (1 - ap)) / (1 - a)) * x[i];
    let logVar: number;
    if (m.varianceType === 'learned_range') {
      const frac = (e.v![i] + 1) / 2;
      logVar = frac * Math.log(beta) + (1 - frac) * Math.log(post);
    } else {
      logVar = Math.log(m.varianceType === 'fixed_small' ? post : beta);
    }
    out[i] = mean + Math.exp(0.5 * logVar) * z[i];
  }
  return out;
}

export function forwardRef(m: RefModel, x0: Float64Array, t: number, z: Float64Array): Float64Array {
  const a = ab(m, t);
  return x0.map((v, i) => Math.sqrt(a) * v + Math.sqrt(1 - a) * z[i]);
}

/** The loop from ts[iStart] to the end; `after` may re-noise (inpainting); draws one z per step first. */
export function loopRef(
  m: RefModel,
  x: Float64Array,
  B: number,
  ts: number[],
  iStart: number,
  est: (x: Float64Array, t: number) => Est,
  rp: Replay,
  after?: (x: Float64Array, tp: number) => Float64Array,
): Float64Array {
  let cur = x;
  for (let i = iStart; i < ts.length - 1; i++) {
    const e = est(cur, ts[i]);
    const z = rp.next([B, m.H, m.W, m.C]);
    cur = stepRef(m, cur, e, ts[i], ts[i + 1], z);
    if (after) cur = after(cur, ts[i + 1]);
  }
  return cur;
}

/** Index reflected into [0, n) by bouncing off the edges one at a time (torch 'reflect'). */
function bounce(i: number, n: number): number {
  if (n === 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

export function kernelRef(k: number, sigma: number): Float64Array {
  const r = (k - 1) / 2;
  const out = new Float64Array(k);
  let s = 0;
  for (let i = 0; i < k; i++) s += out[i] = Math.exp(-((i - r) ** 2) / (2 * sigma * sigma));
  return out.map((v) => v / s);
}

/** Direct separable Gaussian convolution with reflect boundaries, NHWC flat. */
export function blurRef(x: Float64Array, B: number, H: number, W: number, C: number, k: number, sigma: number): Float64Array {
  const ker = kernelRef(k, sigma);
  const r = (k - 1) / 2;
  const idx = (b: number, h: number, w: number, c: number) => ((b * H + h) * W + w) * C + c;
  const tmp = new Float64Array(x.length);
  const out = new Float64Array(x.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let w = 0; w < W; w++)
        for (let c = 0; c < C; c++) {
          let s = 0;
          for (let d = -r; d <= r; d++) s += ker[d + r] * x[idx(b, bounce(h + d, H), w, c)];
          tmp[idx(b, h, w, c)] = s;
        }
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let w = 0; w < W; w++)
        for (let c = 0; c < C; c++) {
          let s = 0;
          for (let d = -r; d <= r; d++) s += ker[d + r] * tmp[idx(b, h, bounce(w + d, W), c)];
          out[idx(b, h, w, c)] = s;
        }
  return out;
}

/** Vertical flip (along H), NHWC flat. */
export function flipRef(x: Float64Array, B: number, H: number, W: number, C: number): Float64Array {
  const out = new Float64Array(x.length);
  const n = W * C;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const src = (b * H + h) * n;
      const dst = (b * H + (H - 1 - h)) * n;
      for (let i = 0; i < n; i++) out[dst + i] = x[src + i];
    }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function toF64(t: tf.Tensor): Float64Array {
  return Float64Array.from(t.dataSync());
}
