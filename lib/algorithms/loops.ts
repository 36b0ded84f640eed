/**
 * The reverse diffusion loop and the algorithms of SPEC §1.1–1.6 built on it, written once
 * against the Denoiser interface (lib/models/denoiser.ts): they run unchanged on the MNIST UNets,
 * on DeepFloyd IF and on the tests' Gaussian oracle.
 *
 * Conventions:
 * - Images are NHWC [B,H,W,C] in the model's own value range (use toModelRange on [0,1] pixels
 *   first). Results are new tensors the caller owns.
 * - Timesteps are indices into `den.schedule` (lib/schedulers/timesteps.ts: the loop steps from
 *   each entry of the list to the next; −1 = the clean image).
 * - Each step is the scheduler's (lib/schedulers/ddpm.ts); formulas come from
 *   lib/schedulers/formulas.ts; CFG from lib/guidance/cfg.ts. Nothing is re-derived here.
 * - Randomness: every function that draws takes an `Rng`. Order of draws (the tests' float64
 *   reference replays it): the starting noise first (when the function makes one), then per loop
 *   step one ε for the variance term when t > 0 (the course's add_variance), then, for
 *   inpainting, one ε for re-noising the original (Eq. A.5).
 * - Every loop step runs in tf.tidy; only the current x survives a step.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../tensor/random';
import { alphaBarAt, type NoiseSchedule } from '../schedulers/schedule';
import * as F from '../schedulers/formulas';
import { courseConfig, DDPMScheduler, type DDPMSchedulerConfig, type VarianceType } from '../schedulers/ddpm';
import { checkTimesteps, stridedTimesteps } from '../schedulers/timesteps';
import { checkImage, defaultVarianceType, resolvePrompt, type Denoiser, type Prediction, type PromptLike } from '../models/denoiser';
import { cfgPredict, guidanceFor, type GuidanceOptions } from '../guidance/cfg';
import { gaussianBlur, scaledBlur, type BlurOptions } from '../image/filters';

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
 * A timestep of the course's T = 1000 scale mapped to a model with T steps (§1.1's 250/500/750):
 * round(t · T / fromT), clamped to [0, T-1].
 */
export function scaleTimestep(t: number, T: number, fromT = 1000): number {
  return Math.min(T - 1, Math.max(0, Math.round((t * T) / fromT)));
}

// ---------------------------------------------------------------------------------------------
// 1.2 Classical denoising by Gaussian blur

/** A default blur for §1.2's classical denoising: kernel 5, σ = 2 at 64 px, scaled to `size` px. */
export function denoiseBlur(size: number): BlurOptions {
  return scaledBlur({ kernelSize: 5, sigma: 2 }, 64, size);
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

// ---------------------------------------------------------------------------------------------
// 1.3 One-step denoising

/**
 * §1.3: x̂₀ = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t with ε̂ from one model call (formulas.estimateX0).
 * @param xt [B,H,W,C] noisy images at timestep t
 * @param prompt default den.neutralPrompt (the course's "a high quality photo")
 * @returns x̂₀ [B,H,W,C]
 */
export function oneStepDenoise(den: Denoiser, xt: tf.Tensor4D, t: number, prompt: PromptLike = den.neutralPrompt): tf.Tensor4D {
  checkImage(den, xt, 'oneStepDenoise: x_t');
  const ab = alphaBarAt(den.schedule, t);
  return tf.tidy(() => F.estimateX0(xt, den.predict(xt, t, resolvePrompt(den, prompt)).eps, ab));
}

// ---------------------------------------------------------------------------------------------
// 1.4 The reverse loop

/** Called after every loop step with the new x_{t'}; x is the loop's own tensor (clone to keep it). */
export type StepCallback = (info: { i: number; t: number; x: tf.Tensor4D; steps: number }) => void;

/** Options shared by every loop. */
export interface LoopOptions {
  /** Draws every noise; see the file comment for their order. */
  rng: Rng;
  /** The list to step through (descending); default stridedTimesteps(den.schedule.T). */
  timesteps?: number[];
  /**
   * The step's variance: default learned_range for models that predict it (IF), else fixed_small
   * (the posterior β̃; Part B's Alg. B.2 uses fixed_large, lib/algorithms/ddpmSampling.ts).
   */
  varianceType?: VarianceType;
  /** Full scheduler settings (thresholding, clipping); overrides varianceType. Default: the course's (none). */
  scheduler?: DDPMSchedulerConfig;
  /** After each step: i = index of the new timestep in `timesteps`, t = that timestep. */
  onStep?: StepCallback;
}

/** Options of the CFG loops. */
export type CfgOptions = LoopOptions & GuidanceOptions;

/** The noise estimate of one loop step at x_t, t (caller-owned tensors). */
export type NoiseEstimator = (xt: tf.Tensor4D, t: number) => Prediction;

/** The scheduler a loop uses for `den` under `opts` (see LoopOptions.varianceType). */
export function loopScheduler(den: Denoiser, opts: Pick<LoopOptions, 'varianceType' | 'scheduler'>): DDPMScheduler {
  return new DDPMScheduler(den.schedule, opts.scheduler ?? courseConfig(opts.varianceType ?? defaultVarianceType(den)));
}

/**
 * The reverse loop shared by every algorithm: from x at timesteps[iStart], for each pair t → t'
 * of consecutive entries: ε̂ (and v) from `estimate`, then the scheduler's step (x̂₀, the Eq. A.3
 * mean, the variance term), then `afterStep` (inpainting's Eq. A.5). Returns x at the list's last
 * entry (0 for the course's strided lists, −1 = clean for lists made with toClean), caller-owned.
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
  checkTimesteps(ts, den.schedule.T, iStart, fn);
  checkImage(den, x, `${fn}: image`);
  const scheduler = loopScheduler(den, opts);
  let cur = x.clone();
  for (let i = iStart; i < ts.length - 1; i++) {
    const t = ts[i];
    const tPrev = ts[i + 1];
    const prev = cur;
    const next = tf.tidy(() => {
      const stepped = scheduler.step(prev, estimate(prev, t), t, tPrev, opts.rng);
      return afterStep ? afterStep(stepped, tPrev) : stepped;
    });
    prev.dispose();
    cur = next;
    opts.onStep?.({ i: i + 1, t: tPrev, x: cur, steps: ts.length - 1 - iStart });
  }
  return cur;
}

/**
 * §1.4 iterative_denoise: the loop from timesteps[iStart] to the end under one prompt, no CFG.
 * @param im x at timesteps[iStart], [B,H,W,C]
 * @param opts.prompt default den.neutralPrompt
 * Draws: one ε per step with t > 0.
 */
export function iterativeDenoise(den: Denoiser, im: tf.Tensor4D, iStart: number, opts: LoopOptions & { prompt?: PromptLike }): tf.Tensor4D {
  const cond = resolvePrompt(den, opts.prompt ?? den.neutralPrompt);
  return denoiseLoop(den, im, iStart, (xt, t) => den.predict(xt, t, cond), opts, 'iterativeDenoise');
}

/** Pure noise N(0, I) of the model's shape: [n,H,W,C]. One draw. */
export function pureNoise(den: Denoiser, n: number, rng: Rng): tf.Tensor4D {
  if (!Number.isInteger(n) || n < 1) throw new Error(`number of samples ${n} must be a positive integer`);
  const [h, w] = den.imageSize;
  return rng.normal([n, h, w, den.channels]) as tf.Tensor4D;
}

/** Runs `loop` on fresh noise [n,H,W,C] (drawn first) and frees the noise. */
export function fromNoise(den: Denoiser, n: number, rng: Rng, loop: (x: tf.Tensor4D) => tf.Tensor4D): tf.Tensor4D {
  const x = pureNoise(den, n, rng);
  try {
    return loop(x);
  } finally {
    x.dispose();
  }
}

/**
 * §1.5 sampling: iterative_denoise from pure noise at i_start = 0.
 * @returns n samples [n,H,W,C]. Draws: the starting noise, then one ε per step with t > 0.
 */
export function sample(den: Denoiser, n: number, opts: LoopOptions & { prompt?: PromptLike }): tf.Tensor4D {
  return fromNoise(den, n, opts.rng, (x) => iterativeDenoise(den, x, 0, opts));
}

// ---------------------------------------------------------------------------------------------
// 1.6 CFG

/**
 * §1.6 iterative_denoise_cfg: the loop with ε = ε_u + γ(ε_c − ε_u) (Eq. A.4) and the conditional
 * variance. @param im x at timesteps[iStart], [B,H,W,C]. Draws: one ε per step.
 */
export function iterativeDenoiseCfg(den: Denoiser, im: tf.Tensor4D, iStart: number, opts: CfgOptions): tf.Tensor4D {
  const g = guidanceFor(den, opts);
  return denoiseLoop(den, im, iStart, (xt, t) => cfgPredict(den, xt, t, g), opts, 'iterativeDenoiseCfg');
}

/** §1.6 samples: CFG loop from pure noise (i_start = 0). [n,H,W,C]. Draws: noise, then one ε per step. */
export function sampleCfg(den: Denoiser, n: number, opts: CfgOptions): tf.Tensor4D {
  return fromNoise(den, n, opts.rng, (x) => iterativeDenoiseCfg(den, x, 0, opts));
}
