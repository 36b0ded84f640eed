/**
 * Part A's algorithms (SPEC §1.1–1.9), each written once against the Denoiser interface
 * (lib/diffusion/denoiser.ts). They run unchanged on Part B's MNIST UNet, on DeepFloyd IF and on
 * the tests' Gaussian oracle; nothing here knows which model it drives.
 *
 * Conventions:
 * - Images are NHWC [B,H,W,C] in the model's own value range (see denoiser.ts: use toModelRange
 *   on [0,1] pixels first). Results are new tensors the caller owns.
 * - Timesteps are indices into `den.schedule` (t in [0,T-1]; ᾱ_{-1} = 1).
 * - Every formula comes from lib/diffusion/formulas.ts (Eq. A.2, x̂₀, Eq. A.3, Eq. A.4, learned
 *   range); nothing is re-derived here.
 * - Randomness: every function that draws takes an `Rng`. The order of draws is documented per
 *   function (the tests' float64 reference replays it): the starting noise first (when the
 *   function makes one), then per loop step one ε for the variance term (the seed's add_variance),
 *   then, for inpainting, one ε for re-noising the original (Eq. A.5).
 * - Every loop step runs in tf.tidy; only the current x survives a step.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../tensor/random';
import { alphaBarAt, type NoiseSchedule } from './schedule';
import * as F from './formulas';
import { checkImage, predictAll, type CondHandle, type Denoiser, type Prediction, type PredictItem } from './denoiser';

// ---------------------------------------------------------------------------------------------
// 1.1 Forward process

/**
 * Forward process of §1.1 (Eq. A.1/A.2): x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε with a fresh ε ~ N(0, I).
 * @param im clean images [B,H,W,C] in the model's range
 * @param t timestep index in [0, T-1] (−1 returns a copy of im)
 * @param schedule the model's schedule (den.schedule)
 * @param rng draws ε (one draw of im's shape)
 * @returns x_t [B,H,W,C]
 */
export function forward(im: tf.Tensor4D, t: number, schedule: NoiseSchedule, rng: Rng): tf.Tensor4D {
  const ab = alphaBarAt(schedule, t);
  return tf.tidy(() => F.forward(im, ab, rng.normal(im.shape) as tf.Tensor4D));
}

/**
 * A timestep of the seed's T = 1000 scale mapped to a model with T steps (§1.1's 250/500/750):
 * round(t · T / fromT), clamped to [0, T-1].
 */
export function scaleTimestep(t: number, T: number, fromT = 1000): number {
  return Math.min(T - 1, Math.max(0, Math.round((t * T) / fromT)));
}

// ---------------------------------------------------------------------------------------------
// 1.2 Gaussian blur (classical denoising; also the low-pass of §1.9)

/** A Gaussian blur: odd kernel size (pixels) and standard deviation σ (pixels). */
export interface BlurOptions {
  kernelSize: number;
  sigma: number;
}

/**
 * Scales blur parameters given at one image size to another, as Visual Anagrams does for its
 * hybrid views (k = 33, σ = 2 at 64 px → k = 133, σ = 8 at 256 px): σ · s and k = round(k · s)
 * made odd, with s = size / at.
 */
export function scaledBlur(base: BlurOptions, at: number, size: number): BlurOptions {
  const s = size / at;
  let k = Math.max(1, Math.round(base.kernelSize * s));
  if (k % 2 === 0) k += 1;
  return { kernelSize: k, sigma: base.sigma * s };
}

/** The §1.9 low-pass of the seed: kernel 33, σ = 2 at 64 px (SPEC §1.9), scaled to `size` px. */
export function hybridBlur(size: number): BlurOptions {
  return scaledBlur({ kernelSize: 33, sigma: 2 }, 64, size);
}

/** A default blur for §1.2's classical denoising: kernel 5, σ = 2 at 64 px, scaled to `size` px. */
export function denoiseBlur(size: number): BlurOptions {
  return scaledBlur({ kernelSize: 5, sigma: 2 }, 64, size);
}

/** Normalized 1-D Gaussian taps at offsets −(k−1)/2 … (k−1)/2, as torchvision's gaussian_blur. */
export function gaussianKernel1d(kernelSize: number, sigma: number): Float64Array {
  if (!Number.isInteger(kernelSize) || kernelSize < 1 || kernelSize % 2 === 0) {
    throw new Error(`blur kernelSize ${kernelSize} must be a positive odd integer (e.g. 33)`);
  }
  if (!(sigma > 0)) throw new Error(`blur sigma ${sigma} must be > 0`);
  const r = (kernelSize - 1) / 2;
  const k = new Float64Array(kernelSize);
  let sum = 0;
  for (let i = 0; i < kernelSize; i++) {
    k[i] = Math.exp(-0.5 * ((i - r) / sigma) ** 2);
    sum += k[i];
  }
  for (let i = 0; i < kernelSize; i++) k[i] /= sum;
  return k;
}

/** Index i reflected into [0, n−1] without repeating the edge (torch 'reflect' padding), any distance. */
function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let j = ((i % period) + period) % period;
  if (j >= n) j = period - j;
  return j;
}

/**
 * The n×n matrix of a 1-D blur along one axis with reflect boundaries: row i holds the taps that
 * output pixel i takes from each input pixel (M[i][reflect(i+d)] += k[d+r]).
 */
export function blurMatrix(n: number, kernel: Float64Array): Float32Array {
  const r = (kernel.length - 1) / 2;
  const m = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let d = -r; d <= r; d++) m[i * n + reflectIndex(i + d, n)] += kernel[d + r];
  }
  return m;
}

/**
 * Gaussian blur of every channel of x, separable, with reflect padding (as torchvision's
 * gaussian_blur). The one blur of the project: §1.2's classical denoising and §1.9's low-pass.
 * Written as two small matrix products (one per axis) so it runs on every backend and accepts
 * kernels wider than the image.
 * @param x [B,H,W,C] → blurred [B,H,W,C]
 */
export function gaussianBlur(x: tf.Tensor4D, opts: BlurOptions): tf.Tensor4D {
  const k = gaussianKernel1d(opts.kernelSize, opts.sigma);
  const [b, h, w, c] = x.shape;
  return tf.tidy(() => {
    const mh = tf.tensor2d(blurMatrix(h, k), [h, h]);
    const mw = tf.tensor2d(blurMatrix(w, k), [w, w]);
    // along H: [B,H,W,C] → [H, B·W·C], y = M_H · x
    const xh = tf.transpose(x, [1, 0, 2, 3]).reshape([h, b * w * c]);
    const yh = tf.matMul(mh, xh).reshape([h, b, w, c]).transpose([1, 2, 0, 3]); // [B,W,H,C]
    // along W: [B,W,H,C] → [W, B·H·C]
    const yw = tf.matMul(mw, yh.reshape([b, w, h * c]).transpose([1, 0, 2]).reshape([w, b * h * c]));
    return yw.reshape([w, b, h, c]).transpose([1, 2, 0, 3]) as tf.Tensor4D;
  });
}

/** §1.2 classical denoising: a Gaussian blur of the noisy image. [B,H,W,C] → [B,H,W,C]. */
export function blurDenoise(xt: tf.Tensor4D, opts: BlurOptions): tf.Tensor4D {
  return gaussianBlur(xt, opts);
}

/**
 * §1.2 asks for the best blur result: tries each candidate blur on x_t and keeps the one closest
 * (mean squared error) to the clean image. Default candidates: σ = 0.5, 1, 1.5, 2, 3 px with
 * kernel 2·⌈2σ⌉ + 1.
 * @param xt noisy [B,H,W,C]; @param clean the original, same shape (or [1,H,W,C])
 * @returns the blurred images and the chosen blur
 */
export function bestBlurDenoise(
  xt: tf.Tensor4D,
  clean: tf.Tensor4D,
  candidates: BlurOptions[] = [0.5, 1, 1.5, 2, 3].map((sigma) => ({ sigma, kernelSize: 2 * Math.ceil(2 * sigma) + 1 })),
): { image: tf.Tensor4D; blur: BlurOptions; mse: number } {
  if (candidates.length === 0) throw new Error('bestBlurDenoise: no candidate blurs');
  let best: { image: tf.Tensor4D; blur: BlurOptions; mse: number } | undefined;
  for (const blur of candidates) {
    const image = gaussianBlur(xt, blur);
    const mse = tf.tidy(() => tf.mean(tf.squaredDifference(image, clean)).dataSync()[0]);
    if (!best || mse < best.mse) {
      best?.image.dispose();
      best = { image, blur, mse };
    } else image.dispose();
  }
  return best!;
}

/** High-pass of §1.9: x − blur(x). [B,H,W,C] → [B,H,W,C]. */
export function highPass(x: tf.Tensor4D, opts: BlurOptions): tf.Tensor4D {
  return tf.tidy(() => tf.sub(x, gaussianBlur(x, opts)) as tf.Tensor4D);
}

// ---------------------------------------------------------------------------------------------
// Shared pieces: prompts, CFG, the variance term

/** A prompt given as text or as a handle from den.encodePrompt. */
export type PromptLike = string | CondHandle;

function handle(den: Denoiser, p: PromptLike): CondHandle {
  return typeof p === 'string' ? den.encodePrompt(p) : p;
}

/** tf.tidy for a function returning a Prediction: keeps eps and variance, frees the rest. */
export function tidyPrediction(fn: () => Prediction): Prediction {
  return tf.tidy(() => fn() as unknown as tf.TensorContainer) as unknown as Prediction;
}

/**
 * Classifier-free guidance for one x_t (Eq. A.4, formulas.cfgNoise): ε = ε_u + γ(ε_c − ε_u), with
 * the conditional variance (SPEC §1.6: the seed feeds the conditional variance to add_variance).
 * Cond and uncond run as one batched model call when the model has predictMany.
 * @param xt [B,H,W,C]; returns ε [B,H,W,C] (+ variance for learned-range models)
 */
export function cfgPredict(den: Denoiser, xt: tf.Tensor4D, t: number, cond: PromptLike, uncond: PromptLike, gamma: number): Prediction {
  return tidyPrediction(() => {
    const [c, u] = predictAll(den, [{ xt, cond: handle(den, cond) }, { xt, cond: handle(den, uncond) }], t);
    const out: Prediction = { eps: F.cfgNoise(u.eps, c.eps, gamma) };
    if (c.variance) out.variance = c.variance;
    return out;
  });
}

/**
 * The seed's add_variance (SPEC §1.4): x + exp(½ log σ²) · z, z ~ N(0, I) (one draw of x's shape),
 * for the strided step t → t' (t' = the next strided entry; −1 means ᾱ = 1). The log-variance is
 * learned-range from the model's v with the CURRENT t (formulas.learnedRangeLogVariance), or the
 * fixed posterior variance β̃ (fixed_small), or β_t (fixed_large, Alg. B.2's √β_t z).
 * @param mean [B,H,W,C]; @param variance the model's v [B,H,W,C] (learned_range only)
 */
export function addVariance(den: Denoiser, mean: tf.Tensor4D, variance: tf.Tensor4D | undefined, t: number, tPrev: number, rng: Rng): tf.Tensor4D {
  const ab = alphaBarAt(den.schedule, t);
  const abPrev = alphaBarAt(den.schedule, tPrev);
  return tf.tidy(() => {
    const z = rng.normal(mean.shape) as tf.Tensor4D;
    let std: tf.Tensor | number;
    if (den.varianceType === 'learned_range') {
      if (!variance) throw new Error(`${den.name} has varianceType learned_range but predict() returned no variance`);
      std = tf.exp(tf.mul(F.learnedRangeLogVariance(variance, ab, abPrev), 0.5));
    } else {
      const v = den.varianceType === 'fixed_small' ? F.posteriorVariance(ab, abPrev) : F.stepBeta(ab, abPrev);
      std = Math.sqrt(v);
    }
    return tf.add(mean, tf.mul(z, std)) as tf.Tensor4D;
  });
}

// ---------------------------------------------------------------------------------------------
// 1.3 One-step denoising

/**
 * §1.3: x̂₀ = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t with ε̂ from one model call (formulas.estimateX0).
 * @param xt [B,H,W,C] noisy images at timestep t
 * @param prompt default den.neutralPrompt (the seed's "a high quality photo")
 * @returns x̂₀ [B,H,W,C]
 */
export function oneStepDenoise(den: Denoiser, xt: tf.Tensor4D, t: number, prompt: PromptLike = den.neutralPrompt): tf.Tensor4D {
  checkImage(den, xt, 'oneStepDenoise: x_t');
  const ab = alphaBarAt(den.schedule, t);
  return tf.tidy(() => F.estimateX0(xt, den.predict(xt, t, handle(den, prompt)).eps, ab));
}

// ---------------------------------------------------------------------------------------------
// 1.4 Strided timesteps and the iterative loop

/**
 * §1.4's strided schedule: start, start − stride, …, 0. For T = 1000 the seed's 990 → 0 by 30
 * (34 entries). Defaults for other T keep that shape: stride = 3% of T, rounded to the nearest
 * multiple of 10 when that is ≥ 5 (T = 300 → 10), else to an integer ≥ 1; start = the largest
 * multiple of the stride ≤ T − 1 (T = 300 → 290, 30 entries).
 */
export function stridedTimesteps(T: number, opts: { start?: number; stride?: number } = {}): number[] {
  if (!Number.isInteger(T) || T < 1) throw new Error(`stridedTimesteps: T = ${T} must be a positive integer`);
  let stride = opts.stride;
  if (stride === undefined) {
    const raw = 0.03 * T;
    stride = raw >= 5 ? Math.round(raw / 10) * 10 : Math.max(1, Math.round(raw));
  }
  if (!Number.isInteger(stride) || stride < 1) throw new Error(`stridedTimesteps: stride ${stride} must be a positive integer`);
  const start = opts.start ?? Math.floor((T - 1) / stride) * stride;
  if (!Number.isInteger(start) || start < 0 || start > T - 1) {
    throw new Error(`stridedTimesteps: start ${start} must be an integer in 0..${T - 1}`);
  }
  const ts: number[] = [];
  for (let t = start; t > 0; t -= stride) ts.push(t);
  ts.push(0);
  return ts;
}

/** Called after every loop step with the new x_{t'}; x is the loop's own tensor (clone to keep it). */
export type StepCallback = (info: { i: number; t: number; x: tf.Tensor4D; steps: number }) => void;

/** Options shared by every loop. */
export interface LoopOptions {
  /** Draws every noise; see the file comment for their order. */
  rng: Rng;
  /** The strided list (descending, ending at 0); default stridedTimesteps(den.schedule.T). */
  timesteps?: number[];
  /** After each step: i = index of the new timestep in `timesteps`, t = that timestep. */
  onStep?: StepCallback;
}

/** Options of the CFG loops. */
export interface CfgOptions extends LoopOptions {
  /** Conditional prompt; default den.neutralPrompt. */
  prompt?: PromptLike;
  /** Unconditional prompt; default den.emptyPrompt (the seed's ""). */
  uncondPrompt?: PromptLike;
  /** Guidance scale γ; default 7 (SPEC §1.0). */
  gamma?: number;
}

/** The noise estimate of one loop step at x_t, t (caller-owned tensors). */
export type NoiseEstimator = (xt: tf.Tensor4D, t: number) => Prediction;

function checkTimesteps(den: Denoiser, ts: number[], iStart: number, fn: string): void {
  if (ts.length < 1) throw new Error(`${fn}: timesteps is empty`);
  for (let i = 0; i < ts.length; i++) {
    if (!Number.isInteger(ts[i]) || ts[i] < 0 || ts[i] > den.schedule.T - 1 || (i > 0 && ts[i] >= ts[i - 1])) {
      throw new Error(`${fn}: timesteps must be strictly decreasing integers in 0..${den.schedule.T - 1} (entry ${i} is ${ts[i]})`);
    }
  }
  if (!Number.isInteger(iStart) || iStart < 0 || iStart > ts.length - 1) {
    throw new Error(`${fn}: i_start ${iStart} must be an integer in 0..${ts.length - 1} (${ts.length} strided timesteps)`);
  }
}

/**
 * The reverse loop of §1.4, shared by every algorithm: from x at timesteps[iStart], for each
 * strided pair t → t' (i = iStart … len−2): ε̂ (and v) from `estimate`; x̂₀ (§1.3); the Eq. A.3
 * mean (formulas.reverseStepMean); plus the variance term (addVariance); then `afterStep`
 * (inpainting's Eq. A.5). Returns x at timesteps[len−1] (= 0 by default), caller-owned.
 */
export function denoiseLoop(
  den: Denoiser,
  x: tf.Tensor4D,
  iStart: number,
  estimate: NoiseEstimator,
  opts: LoopOptions,
  fn: string,
  afterStep?: (x: tf.Tensor4D, tPrev: number) => tf.Tensor4D,
): tf.Tensor4D {
  const ts = opts.timesteps ?? stridedTimesteps(den.schedule.T);
  checkTimesteps(den, ts, iStart, fn);
  checkImage(den, x, `${fn}: image`);
  let cur = x.clone();
  for (let i = iStart; i < ts.length - 1; i++) {
    const t = ts[i];
    const tPrev = ts[i + 1];
    const ab = alphaBarAt(den.schedule, t);
    const abPrev = alphaBarAt(den.schedule, tPrev);
    const prev = cur;
    const next = tf.tidy(() => {
      const { eps, variance } = estimate(prev, t);
      const x0 = F.estimateX0(prev, eps, ab);
      const mean = F.reverseStepMean(x0, prev, ab, abPrev);
      const stepped = addVariance(den, mean, variance, t, tPrev, opts.rng);
      return afterStep ? afterStep(stepped, tPrev) : stepped;
    });
    prev.dispose();
    cur = next;
    opts.onStep?.({ i: i + 1, t: tPrev, x: cur, steps: ts.length - 1 - iStart });
  }
  return cur;
}

/**
 * §1.4 iterative_denoise: the loop from timesteps[iStart] to 0 under one prompt, no CFG.
 * @param im x at timesteps[iStart], [B,H,W,C]
 * @param opts.prompt default den.neutralPrompt
 * Draws: one ε per step.
 */
export function iterativeDenoise(den: Denoiser, im: tf.Tensor4D, iStart: number, opts: LoopOptions & { prompt?: PromptLike }): tf.Tensor4D {
  const cond = handle(den, opts.prompt ?? den.neutralPrompt);
  return denoiseLoop(den, im, iStart, (xt, t) => den.predict(xt, t, cond), opts, 'iterativeDenoise');
}

/** Pure noise N(0, I) of the model's shape: [n,H,W,C]. One draw. */
export function pureNoise(den: Denoiser, n: number, rng: Rng): tf.Tensor4D {
  if (!Number.isInteger(n) || n < 1) throw new Error(`number of samples ${n} must be a positive integer`);
  const [h, w] = den.imageSize;
  return rng.normal([n, h, w, den.channels]) as tf.Tensor4D;
}

/**
 * §1.5 sampling: iterative_denoise from pure noise at i_start = 0.
 * @returns n samples [n,H,W,C]. Draws: the starting noise, then one ε per step.
 */
export function sample(den: Denoiser, n: number, opts: LoopOptions & { prompt?: PromptLike }): tf.Tensor4D {
  const x = pureNoise(den, n, opts.rng);
  try {
    return iterativeDenoise(den, x, 0, opts);
  } finally {
    x.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// 1.6 CFG

/**
 * §1.6 iterative_denoise_cfg: the loop with ε = ε_u + γ(ε_c − ε_u) (Eq. A.4) and the conditional
 * variance. @param im x at timesteps[iStart], [B,H,W,C]. Draws: one ε per step.
 */
export function iterativeDenoiseCfg(den: Denoiser, im: tf.Tensor4D, iStart: number, opts: CfgOptions): tf.Tensor4D {
  const cond = handle(den, opts.prompt ?? den.neutralPrompt);
  const uncond = handle(den, opts.uncondPrompt ?? den.emptyPrompt);
  const gamma = opts.gamma ?? 7;
  return denoiseLoop(den, im, iStart, (xt, t) => cfgPredict(den, xt, t, cond, uncond, gamma), opts, 'iterativeDenoiseCfg');
}

/** §1.6 samples: CFG loop from pure noise (i_start = 0). [n,H,W,C]. Draws: noise, then one ε per step. */
export function sampleCfg(den: Denoiser, n: number, opts: CfgOptions): tf.Tensor4D {
  const x = pureNoise(den, n, opts.rng);
  try {
    return iterativeDenoiseCfg(den, x, 0, opts);
  } finally {
    x.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// 1.7 SDEdit, 1.7.1 sketches and outside images, 1.7.3 text-conditional image-to-image

/** The seed's SDEdit noise levels (SPEC §1.7). */
export const SDEDIT_I_STARTS = [1, 3, 5, 7, 10, 20] as const;

/**
 * §1.7 SDEdit: forward(im, timesteps[iStart]) then iterative_denoise_cfg from iStart (default prompt
 * den.neutralPrompt). Also §1.7.1 (sketches, outside images: the same call) and, with another
 * prompt, §1.7.3. @param im clean images [B,H,W,C] in model range. Draws: forward ε, then one per step.
 */
export function sdedit(den: Denoiser, im: tf.Tensor4D, iStart: number, opts: CfgOptions): tf.Tensor4D {
  checkImage(den, im, 'sdedit: image');
  const ts = opts.timesteps ?? stridedTimesteps(den.schedule.T);
  checkTimesteps(den, ts, iStart, 'sdedit');
  const noisy = forward(im, ts[iStart], den.schedule, opts.rng);
  try {
    return iterativeDenoiseCfg(den, noisy, iStart, { ...opts, timesteps: ts });
  } finally {
    noisy.dispose();
  }
}

/** §1.7.3 text-conditional image-to-image: SDEdit under `opts.prompt` (required). */
export function textImageToImage(den: Denoiser, im: tf.Tensor4D, iStart: number, opts: CfgOptions & { prompt: PromptLike }): tf.Tensor4D {
  return sdedit(den, im, iStart, opts);
}

// ---------------------------------------------------------------------------------------------
// 1.7.2 Inpainting

/**
 * §1.7.2 inpaint (Eq. A.5): the CFG loop from pure noise (i_start = 0 unless opts.iStart), and after
 * every step t → t' the known region is forced back: x ← m·x + (1 − m)·forward(orig, t').
 * @param orig clean images [B,H,W,C] in model range
 * @param mask [1 or B,H,W,1 or C], 1 = generate new content, 0 = keep
 * @returns [B,H,W,C]. Draws: starting noise (when iStart = 0; otherwise forward(orig) at
 *   timesteps[iStart]), then per step the variance ε and the re-noising ε.
 */
export function inpaint(den: Denoiser, orig: tf.Tensor4D, mask: tf.Tensor4D, opts: CfgOptions & { iStart?: number }): tf.Tensor4D {
  checkImage(den, orig, 'inpaint: original image');
  checkMask(den, orig, mask, 'inpaint');
  const ts = opts.timesteps ?? stridedTimesteps(den.schedule.T);
  const iStart = opts.iStart ?? 0;
  checkTimesteps(den, ts, iStart, 'inpaint');
  const cond = handle(den, opts.prompt ?? den.neutralPrompt);
  const uncond = handle(den, opts.uncondPrompt ?? den.emptyPrompt);
  const gamma = opts.gamma ?? 7;
  const start = iStart === 0 ? pureNoise(den, orig.shape[0], opts.rng) : forward(orig, ts[iStart], den.schedule, opts.rng);
  try {
    return denoiseLoop(
      den,
      start,
      iStart,
      (xt, t) => cfgPredict(den, xt, t, cond, uncond, gamma),
      { ...opts, timesteps: ts },
      'inpaint',
      (x, tPrev) => tf.add(tf.mul(mask, x), tf.mul(tf.sub(1, mask), forward(orig, tPrev, den.schedule, opts.rng))) as tf.Tensor4D,
    );
  } finally {
    start.dispose();
  }
}

function checkMask(den: Denoiser, orig: tf.Tensor4D, mask: tf.Tensor4D, fn: string): void {
  const [h, w] = den.imageSize;
  const s = mask.shape;
  const okB = s[0] === 1 || s[0] === orig.shape[0];
  const okC = s[3] === 1 || s[3] === den.channels;
  if (s.length !== 4 || !okB || s[1] !== h || s[2] !== w || !okC) {
    throw new Error(
      `${fn}: mask has shape [${s.join(',')}] but needs [1 or ${orig.shape[0]},${h},${w},1 or ${den.channels}] ` +
        `(NHWC, 1 = generate, 0 = keep): resize the mask to ${h}×${w}`,
    );
  }
  const [mn, mx] = tf.tidy(() => [tf.min(mask).dataSync()[0], tf.max(mask).dataSync()[0]]);
  if (mn < 0 || mx > 1) throw new Error(`${fn}: mask values must lie in [0,1] (1 = generate), got ${mn}..${mx}`);
}

// ---------------------------------------------------------------------------------------------
// 1.8 Visual anagrams

/** Vertical flip (upside down, along H), the anagram view of SPEC §1.8 (not a 180° rotation). */
export function flipVertical(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.reverse(x, 1) as tf.Tensor4D);
}

/**
 * §1.8 visual_anagrams from pure noise: each step ε₁ = CFG(x_t, p₁), ε₂ = flip(CFG(flip(x_t), p₂)),
 * ε = (ε₁ + ε₂)/2, then the normal reverse step. Variance (learned-range models): the two branches'
 * conditional variance channels, the second flipped back, are averaged, as the Visual Anagrams code
 * averages its inverse-viewed variances (the spec leaves it open; the log-variance is affine in v,
 * so this equals averaging the log-variances). The four model calls of a step are one batch when
 * the model has predictMany.
 * @param p1 prompt seen upright; @param p2 prompt seen flipped
 * @returns [n,H,W,C] upright. Draws: starting noise, then one ε per step.
 */
export function visualAnagrams(den: Denoiser, p1: PromptLike, p2: PromptLike, opts: Omit<CfgOptions, 'prompt'> & { n?: number }): tf.Tensor4D {
  const c1 = handle(den, p1);
  const c2 = handle(den, p2);
  const u = handle(den, opts.uncondPrompt ?? den.emptyPrompt);
  const gamma = opts.gamma ?? 7;
  const x = pureNoise(den, opts.n ?? 1, opts.rng);
  const estimate: NoiseEstimator = (xt, t) =>
    tidyPrediction(() => {
      const xf = flipVertical(xt);
      const items: PredictItem[] = [
        { xt, cond: c1 },
        { xt, cond: u },
        { xt: xf, cond: c2 },
        { xt: xf, cond: u },
      ];
      const [a1, a0, b1, b0] = predictAll(den, items, t);
      const e1 = F.cfgNoise(a0.eps, a1.eps, gamma);
      const e2 = flipVertical(F.cfgNoise(b0.eps, b1.eps, gamma));
      const out: Prediction = { eps: tf.div(tf.add(e1, e2), 2) as tf.Tensor4D };
      if (a1.variance && b1.variance) out.variance = tf.div(tf.add(a1.variance, flipVertical(b1.variance)), 2) as tf.Tensor4D;
      return out;
    });
  try {
    return denoiseLoop(den, x, 0, estimate, opts, 'visualAnagrams');
  } finally {
    x.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// 1.9 Hybrid images (factorized diffusion)

/**
 * §1.9 make_hybrids from pure noise: ε = lowpass(ε₁) + highpass(ε₂), each ε_i the CFG estimate
 * under p_i (sharing one unconditional call), lowpass = gaussianBlur, highpass = x − blur(x).
 * Blur default: kernel 33, σ = 2 at 64 px, scaled to the model's width (hybridBlur). Variance
 * (learned-range models): the average of the two conditional variances, as for the anagrams.
 * @param pLow prompt seen from afar; @param pHigh prompt seen up close
 * @returns [n,H,W,C]. Draws: starting noise, then one ε per step.
 */
export function makeHybrids(
  den: Denoiser,
  pLow: PromptLike,
  pHigh: PromptLike,
  opts: Omit<CfgOptions, 'prompt'> & { n?: number; blur?: BlurOptions },
): tf.Tensor4D {
  const c1 = handle(den, pLow);
  const c2 = handle(den, pHigh);
  const u = handle(den, opts.uncondPrompt ?? den.emptyPrompt);
  const gamma = opts.gamma ?? 7;
  const blur = opts.blur ?? hybridBlur(den.imageSize[1]);
  gaussianKernel1d(blur.kernelSize, blur.sigma); // validate before drawing
  const x = pureNoise(den, opts.n ?? 1, opts.rng);
  const estimate: NoiseEstimator = (xt, t) =>
    tidyPrediction(() => {
      const [a1, a2, a0] = predictAll(den, [{ xt, cond: c1 }, { xt, cond: c2 }, { xt, cond: u }], t);
      const e1 = F.cfgNoise(a0.eps, a1.eps, gamma);
      const e2 = F.cfgNoise(a0.eps, a2.eps, gamma);
      const out: Prediction = { eps: tf.add(gaussianBlur(e1, blur), highPass(e2, blur)) as tf.Tensor4D };
      if (a1.variance && a2.variance) out.variance = tf.div(tf.add(a1.variance, a2.variance), 2) as tf.Tensor4D;
      return out;
    });
  try {
    return denoiseLoop(den, x, 0, estimate, opts, 'makeHybrids');
  } finally {
    x.dispose();
  }
}
