/**
 * The one sampling loop and the algorithms of SPEC §1.1–1.6 built on it, written once against the
 * Denoiser interface (lib/models/denoiser.ts) and the Scheduler interface (lib/schedulers/scheduler.ts):
 * they run unchanged on the MNIST DDPMs, the MNIST flow models, DeepFloyd IF and the tests' oracle.
 *
 * Conventions:
 * - Images are NHWC [B,H,W,C] in the model's own value range (use toModelRange on [0,1] pixels
 *   first). Results are new tensors the caller owns.
 * - A grid ("timesteps") is the scheduler's: for DDPM models strictly decreasing indices into the
 *   model's schedule (lib/schedulers/timesteps.ts; −1 = the clean image), for flow models strictly
 *   increasing flow times ending at 1 (flowTimesteps). The loop steps from each entry to the next.
 * - Each step is the scheduler's (lib/schedulers/ddpm.ts, lib/schedulers/flowMatching.ts); CFG is
 *   lib/guidance/cfg.ts. Nothing is re-derived here.
 * - Randomness: every function that draws takes an `Rng`. Order of draws (the tests' float64
 *   reference replays it): the starting noise first (when the function makes one), then per loop
 *   step one ε for the variance term when t > 0 (the course's add_variance), then, for
 *   inpainting, one ε for re-noising the original (Eq. A.5).
 * - Every loop step runs in tf.tidy; only the current x survives a step.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../tensor/random';
import { alphaBarAt, type NoiseSchedule } from '../schedulers/schedule';
import * as F from '../schedulers/formulas';
import { courseConfig, DDPMScheduler, type DDPMSchedulerConfig, type VarianceType } from '../schedulers/ddpm';
import { FlowMatchEulerScheduler } from '../schedulers/flowMatching';
import type { PredictionType, Scheduler } from '../schedulers/scheduler';
import {
  checkImage,
  ddpmScheduleOf,
  defaultVarianceType,
  resolvePrompt,
  type DDPMDenoiser,
  type Denoiser,
  type Prediction,
  type PromptLike,
} from '../models/denoiser';
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
 * §1.3 (both families): the scheduler's one-step estimate of the clean image from one model call:
 * DDPM x̂₀ = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t (formulas.estimateX0), flow x̂₁ = x_t + (1 − t)·v̂.
 * @param xt [B,H,W,C] noisy images at level t (a timestep index, or a flow time)
 * @param prompt default den.neutralPrompt (the course's "a high quality photo")
 * @returns the estimate [B,H,W,C]
 */
export function oneStepDenoise(den: Denoiser, xt: tf.Tensor4D, t: number, prompt: PromptLike = den.neutralPrompt): tf.Tensor4D {
  checkImage(den, xt, 'oneStepDenoise: x_t');
  if (den.prediction === 'velocity') {
    const scheduler = loopScheduler(den, {});
    return tf.tidy(() => scheduler.predictOriginal(xt, den.predict(xt, t, resolvePrompt(den, prompt)), t));
  }
  const ab = alphaBarAt(ddpmScheduleOf(den, 'oneStepDenoise'), t);
  return tf.tidy(() => F.estimateX0(xt, den.predict(xt, t, resolvePrompt(den, prompt)).eps, ab));
}

/**
 * The forward process of either family to level t of the model's scheduler, with one fresh noise
 * draw of im's shape: SDEdit's and inpainting's noising. [B,H,W,C] → [B,H,W,C]
 */
export function noiseTo(scheduler: Scheduler, im: tf.Tensor4D, t: number, rng: Rng): tf.Tensor4D {
  return tf.tidy(() => scheduler.addNoise(im, rng.normal(im.shape) as tf.Tensor4D, t));
}

// ---------------------------------------------------------------------------------------------
// 1.4 The reverse loop

/** Called after every loop step with the new x at t' (the grid's entry i); x is the loop's own tensor (clone to keep it). */
export type StepCallback = (info: { i: number; t: number; x: tf.Tensor4D; steps: number }) => void;

/** Options shared by every loop. */
export interface LoopOptions {
  /** Draws every noise; see the file comment for their order. */
  rng: Rng;
  /** The grid to step through; default the scheduler's (DDPM: stridedTimesteps(T); flow: h = 0.02 from 0). */
  timesteps?: number[];
  /**
   * The step's variance: default learned_range for models that predict it (IF), else fixed_small
   * (the posterior β̃; Part B's Alg. B.2 uses fixed_large, lib/algorithms/ddpmSampling.ts).
   */
  varianceType?: VarianceType;
  /**
   * DDPM models: full scheduler settings (thresholding, clipping; overrides varianceType), default the
   * course's (none). Any model: a Scheduler of the model's family to step with.
   */
  scheduler?: DDPMSchedulerConfig | Scheduler;
  /** After each step: i = index of the new timestep in `timesteps`, t = that timestep. */
  onStep?: StepCallback;
}

/** Options of the CFG loops. */
export type CfgOptions = LoopOptions & GuidanceOptions;

/** The noise estimate of one loop step at x_t, t (caller-owned tensors). */
export type NoiseEstimator = (xt: tf.Tensor4D, t: number) => Prediction;

function isScheduler(s: DDPMSchedulerConfig | Scheduler | undefined): s is Scheduler {
  return s !== undefined && 'step' in s;
}

/**
 * The scheduler a loop uses for `den` under `opts`: the one given, else the model's family
 * (Denoiser.prediction): flow models the Euler scheduler (h = 0.02), DDPM models a DDPMScheduler
 * on the model's schedule (see LoopOptions.varianceType).
 */
export function loopScheduler(
  den: DDPMDenoiser,
  opts: Pick<LoopOptions, 'varianceType'> & { scheduler?: DDPMSchedulerConfig },
): DDPMScheduler;
export function loopScheduler(den: Denoiser, opts: Pick<LoopOptions, 'varianceType' | 'scheduler'>): Scheduler;
export function loopScheduler(den: Denoiser, opts: Pick<LoopOptions, 'varianceType' | 'scheduler'>): Scheduler {
  const prediction = den.prediction ?? 'epsilon';
  if (isScheduler(opts.scheduler)) {
    if (opts.scheduler.prediction !== prediction) {
      const family = SCHEDULER_FOR[prediction].family;
      throw new Error(`a ${opts.scheduler.family} scheduler cannot step ${den.name}, a ${family} model: use a ${family} scheduler`);
    }
    return opts.scheduler;
  }
  return SCHEDULER_FOR[prediction].make(den, opts);
}

/** The scheduler family of each prediction type, and how a loop makes its default scheduler. */
const SCHEDULER_FOR: Record<
  PredictionType,
  { family: Scheduler['family']; make: (den: Denoiser, opts: Pick<LoopOptions, 'varianceType' | 'scheduler'>) => Scheduler }
> = {
  velocity: { family: 'flow', make: () => new FlowMatchEulerScheduler() },
  epsilon: {
    family: 'ddpm',
    make: (den, opts) =>
      new DDPMScheduler(
        ddpmScheduleOf(den, 'the DDPM loop'),
        (opts.scheduler as DDPMSchedulerConfig | undefined) ?? courseConfig(opts.varianceType ?? defaultVarianceType(den)),
      ),
  },
};

/**
 * The loop shared by every algorithm of both families: from x at timesteps[iStart], for each pair
 * t → t' of consecutive grid entries: the prediction from `estimate` (ε̂ and v, or the velocity),
 * then the scheduler's step (DDPM: x̂₀, the Eq. A.3 mean, the variance term; flow: Euler), then
 * `afterStep` (inpainting's Eq. A.5). Returns x at the grid's last entry (DDPM: 0 for the course's
 * strided lists, −1 = clean for lists made with toClean; flow: t = 1), caller-owned.
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
  const scheduler = loopScheduler(den, opts);
  const ts = opts.timesteps ?? scheduler.timesteps();
  scheduler.checkTimesteps(ts, iStart, fn);
  checkImage(den, x, `${fn}: image`);
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

/** Options of sampleModel, Part B's seeded sampling of a batch with optional GIF frames. */
export interface SampleOptions {
  /** Number of samples B. */
  count: number;
  seed: number;
  /** Keep x every this many steps (plus the first and last) for a GIF; 0 = none. */
  frameEvery?: number;
  /** Called after every step (progress). */
  onStep?: (done: number, total: number) => void;
  /** The grid to step through; default the scheduler's. */
  timesteps?: number[];
  /** The scheduler (or, for DDPM models, its settings); default the model family's (loopScheduler). */
  scheduler?: DDPMSchedulerConfig | Scheduler;
  /** Start from this noise [B,H,W,C] instead of drawing it (reflow pairs, tests); nothing is drawn for it. */
  noise?: tf.Tensor4D;
  /** The level recorded for the first frame (the starting noise); default the grid's first entry. */
  startLevel?: number;
}

export interface SampleResult {
  /** The samples [B,H,W,C] at the grid's end, unclipped. */
  images: tf.Tensor4D;
  /** Kept frames, each [B,H,W,C], from the starting noise to the result (caller disposes). */
  frames: tf.Tensor4D[];
  /** The level of each frame (after the step that made it). */
  frameTimes: number[];
}

/**
 * Seeded sampling of a batch from pure noise with any estimator, on the one loop, for both
 * families (Part B's Algs. B.2/B.4 and their flow versions): x ~ N(0, I) (one draw of
 * [count,H,W,C] from Rng(seed), unless opts.noise), then the loop over the grid; every
 * frameEvery-th step and the last are kept as frames.
 */
export function sampleModel(den: Denoiser, estimate: NoiseEstimator, opts: SampleOptions): SampleResult {
  const rng = new Rng(opts.seed);
  const scheduler = loopScheduler(den, opts);
  const timesteps = opts.timesteps ?? scheduler.timesteps();
  const total = timesteps.length - 1;
  const every = opts.frameEvery ?? 0;
  const frames: tf.Tensor4D[] = [];
  const frameTimes: number[] = [];
  const run = (x: tf.Tensor4D): tf.Tensor4D => {
    if (every > 0) {
      frames.push(x.clone());
      frameTimes.push(opts.startLevel ?? timesteps[0]);
    }
    return denoiseLoop(
      den,
      x,
      0,
      estimate,
      {
        rng,
        timesteps,
        scheduler,
        onStep: ({ i, t, x: cur }) => {
          opts.onStep?.(i, total);
          if (every > 0 && (i % every === 0 || i === total)) {
            frames.push(cur.clone());
            frameTimes.push(t);
          }
        },
      },
      'sampleModel',
    );
  };
  const images = opts.noise ? run(opts.noise) : fromNoise(den, opts.count, rng, run);
  return { images, frames, frameTimes };
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
