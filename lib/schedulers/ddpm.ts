/**
 * The DDPM scheduler: ONE reverse step x_t → x_{t'} for every DDPM sampler of the project (Part A's
 * strided loops, Part B's Algorithms B.2/B.4, DeepFloyd IF's pipeline, the GPU check), configured
 * as diffusers' DDPMScheduler is (variance_type, thresholding, clip_sample). It implements the
 * Scheduler interface (lib/schedulers/scheduler.ts) that the flow family's Euler scheduler shares.
 *
 * The step (DDPM eqs. 6–7, SPEC Eq. A.3): x̂₀ = (x_t − √(1−ᾱ_t) ε̂)/√ᾱ_t, optionally thresholded
 * or clipped; mean = √ᾱ_{t'} β/(1−ᾱ_t) · x̂₀ + √α (1−ᾱ_{t'})/(1−ᾱ_t) · x_t with α = ᾱ_t/ᾱ_{t'};
 * then + σ·z when t > 0 (diffusers' rule: no noise on the step from t = 0 to the clean image).
 * t' is any earlier index (strided loops), −1 meaning the clean image (ᾱ = 1).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../tensor/random';
import * as F from './formulas';
import { alphaBarAt, cosineSchedule, linearSchedule, type NoiseSchedule } from './schedule';
import { dynamicThreshold } from './thresholding';
import { checkTimesteps, stridedTimesteps } from './timesteps';
import type { NoisePrediction, Scheduler } from './scheduler';

export type { NoisePrediction };

/** How the step's variance σ² is chosen (diffusers' variance_type names). */
export type VarianceType = 'learned_range' | 'fixed_small' | 'fixed_large';

/** A scheduler's settings (diffusers' scheduler_config.json, the parts this project uses). */
export interface DDPMSchedulerConfig {
  /**
   * fixed_small: the posterior variance β̃ (DDPM's σ² = β̃); fixed_large: β of the step (Alg. B.2's
   * √β_t z); learned_range: interpolated in log space between the two by the model's v channels.
   */
  varianceType: VarianceType;
  /** Dynamic thresholding of x̂₀ (diffusers `thresholding`), or false. */
  thresholding: false | { ratio: number; sampleMaxValue: number };
  /**
   * Clip x̂₀ to [−r, r] when not thresholding (diffusers `clip_sample`/`clip_sample_range`), to
   * [lo, hi] for data in another range (MNIST's [0, 1]; DDPM's clip_denoised), or false.
   */
  clipSample: false | number | readonly [number, number];
}

/** The course's manual loops (SPEC §1.4): no thresholding or clipping; variance chosen per model. */
export function courseConfig(varianceType: VarianceType): DDPMSchedulerConfig {
  return { varianceType, thresholding: false, clipSample: false };
}

export class DDPMScheduler implements Scheduler {
  readonly family = 'ddpm';
  readonly prediction = 'epsilon';

  constructor(
    readonly schedule: NoiseSchedule,
    readonly config: DDPMSchedulerConfig,
  ) {}

  /** The course's strided list T−1 … 0 (SPEC §1.4; lib/schedulers/timesteps.ts). */
  timesteps(): number[] {
    return stridedTimesteps(this.schedule.T);
  }

  checkTimesteps(ts: readonly number[], iStart: number, fn: string): void {
    checkTimesteps(ts, this.schedule.T, iStart, fn);
  }

  /** Eq. A.2: x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε (t = −1: the clean image). */
  addNoise(clean: tf.Tensor4D, noise: tf.Tensor4D, t: number): tf.Tensor4D {
    return F.forward(clean, alphaBarAt(this.schedule, t), noise);
  }

  /** x̂₀ from ε̂ (§1.3), then thresholded or clipped as configured. [B,H,W,C] → new tensor. */
  predictOriginal(xt: tf.Tensor4D, pred: NoisePrediction | tf.Tensor4D, t: number): tf.Tensor4D {
    const eps = pred instanceof tf.Tensor ? pred : pred.eps;
    const x0 = F.estimateX0(xt, eps, alphaBarAt(this.schedule, t));
    const c = this.config;
    if (c.thresholding) {
      const out = dynamicThreshold(x0, c.thresholding.ratio, c.thresholding.sampleMaxValue).x0;
      x0.dispose();
      return out;
    }
    if (c.clipSample !== false) {
      const [lo, hi] = typeof c.clipSample === 'number' ? [-c.clipSample, c.clipSample] : c.clipSample;
      const out = tf.clipByValue(x0, lo, hi) as tf.Tensor4D;
      x0.dispose();
      return out;
    }
    return x0;
  }

  /**
   * σ of the step t → t': a number for fixed variances, a tensor like v for learned_range (which
   * uses the CURRENT t, as diffusers' _get_variance and the course's add_variance do).
   */
  stepStd(t: number, tPrev: number, variance?: tf.Tensor4D): number | tf.Tensor4D {
    const ab = alphaBarAt(this.schedule, t);
    const abPrev = alphaBarAt(this.schedule, tPrev);
    switch (this.config.varianceType) {
      case 'fixed_small':
        return Math.sqrt(F.posteriorVariance(ab, abPrev));
      case 'fixed_large':
        return Math.sqrt(F.stepBeta(ab, abPrev));
      case 'learned_range':
        if (!variance) throw new Error('the scheduler has variance_type learned_range but the model returned no variance channels');
        return tf.tidy(() => tf.exp(tf.mul(F.learnedRangeLogVariance(variance, ab, abPrev), 0.5)) as tf.Tensor4D);
    }
  }

  /**
   * One reverse step x_t → x_{t'} (t' < t, −1 = clean). When t > 0 it adds σ·z with z drawn from
   * `noise` (an Rng: one draw of x_t's shape) or given (a tensor like x_t, e.g. made on the host
   * for cross-engine checks); at t = 0 it adds nothing and draws nothing.
   * @param xt [B,H,W,C]; @param pred ε̂ (and v) like xt
   * @returns x_{t'} [B,H,W,C] (new tensor; the inputs are not disposed)
   */
  step(xt: tf.Tensor4D, pred: NoisePrediction, t: number, tPrev: number, noise: Rng | tf.Tensor4D): tf.Tensor4D {
    if (!(tPrev < t)) throw new Error(`scheduler step from t=${t} to t'=${tPrev}: t' must be smaller`);
    return tf.tidy(() => {
      const x0 = this.predictOriginal(xt, pred, t);
      const mean = F.reverseStepMean(x0, xt, alphaBarAt(this.schedule, t), alphaBarAt(this.schedule, tPrev));
      if (t <= 0) return mean;
      const z = noise instanceof tf.Tensor ? noise : (noise.normal(xt.shape) as tf.Tensor4D);
      return tf.add(mean, tf.mul(z, this.stepStd(t, tPrev, pred.variance))) as tf.Tensor4D;
    });
  }
}

/** IF's ᾱ schedule (stage I, stage II and stage II's image-noising scheduler all use it). */
export function ifSchedule(): NoiseSchedule {
  return cosineSchedule(1000, 0.999);
}

/** IF stage I's scheduler_config.json (SPEC §3.3): learned range, dynamic thresholding 0.95 / 1.5. */
export const STAGE_I_CONFIG: DDPMSchedulerConfig = {
  varianceType: 'learned_range',
  thresholding: { ratio: 0.95, sampleMaxValue: 1.5 },
  clipSample: 1,
};
/** IF stage II: the same with sample_max_value 1.0. */
export const STAGE_II_CONFIG: DDPMSchedulerConfig = {
  varianceType: 'learned_range',
  thresholding: { ratio: 0.95, sampleMaxValue: 1.0 },
  clipSample: 1,
};

/** A parsed scheduler_config.json: the scheduler and its timestep spacing settings. */
export interface LoadedScheduler {
  scheduler: DDPMScheduler;
  /** steps_offset of set_timesteps (0 for IF). */
  stepsOffset: number;
  /** Where it came from, for captions. */
  source: string;
}

/**
 * Reads a diffusers scheduler_config.json (DDPMScheduler): beta_schedule squaredcos_cap_v2 or
 * linear, num_train_timesteps, variance_type, thresholding, dynamic_thresholding_ratio,
 * sample_max_value, clip_sample(_range), prediction_type (epsilon only), timestep_spacing
 * (leading only), steps_offset. Anything else it does not support is refused in one line.
 */
export function schedulerFromConfig(raw: Record<string, unknown>, source = 'scheduler_config.json'): LoadedScheduler {
  const bad = (why: string) => new Error(`${source}: ${why}`);
  const num = (k: string, d: number): number => {
    const v = raw[k] ?? d;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`${k} must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const cls = raw._class_name;
  if (cls !== undefined && cls !== 'DDPMScheduler') throw bad(`_class_name ${JSON.stringify(cls)} is not supported (only DDPMScheduler)`);
  const pred = raw.prediction_type ?? 'epsilon';
  if (pred !== 'epsilon') throw bad(`prediction_type ${JSON.stringify(pred)} is not supported (only "epsilon")`);
  const spacing = raw.timestep_spacing ?? 'leading';
  if (spacing !== 'leading') throw bad(`timestep_spacing ${JSON.stringify(spacing)} is not supported (only "leading")`);
  if (raw.rescale_betas_zero_snr) throw bad('rescale_betas_zero_snr is not supported');
  const T = num('num_train_timesteps', 1000);
  const betaSchedule = raw.beta_schedule ?? 'linear';
  let schedule: NoiseSchedule;
  if (betaSchedule === 'squaredcos_cap_v2') schedule = cosineSchedule(T);
  else if (betaSchedule === 'linear') schedule = linearSchedule(num('beta_start', 0.0001), num('beta_end', 0.02), T);
  else throw bad(`beta_schedule ${JSON.stringify(betaSchedule)} is not supported (squaredcos_cap_v2 or linear)`);
  const vt = raw.variance_type ?? 'fixed_small';
  if (vt !== 'fixed_small' && vt !== 'fixed_large' && vt !== 'learned_range')
    throw bad(`variance_type ${JSON.stringify(vt)} is not supported`);
  const config: DDPMSchedulerConfig = {
    varianceType: vt,
    thresholding: raw.thresholding
      ? { ratio: num('dynamic_thresholding_ratio', 0.995), sampleMaxValue: num('sample_max_value', 1) }
      : false,
    clipSample: (raw.clip_sample ?? true) ? num('clip_sample_range', 1) : false,
  };
  return { scheduler: new DDPMScheduler(schedule, config), stepsOffset: num('steps_offset', 0), source };
}

/**
 * The scheduler of a diffusers model folder: <dir>/scheduler/scheduler_config.json when present,
 * else `fallback` (IF's published settings).
 */
export function loadSchedulerConfig(dir: string, fallback: DDPMSchedulerConfig): LoadedScheduler {
  const file = path.join(dir, 'scheduler', 'scheduler_config.json');
  if (!fs.existsSync(file)) return { scheduler: new DDPMScheduler(ifSchedule(), fallback), stepsOffset: 0, source: 'built-in IF settings' };
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return schedulerFromConfig(raw, file);
}
