/**
 * DeepFloyd IF's scheduler (SPEC §3.3): diffusers' DDPMScheduler with squaredcos_cap_v2 over
 * T = 1000, variance_type "learned_range", prediction_type "epsilon", and dynamic thresholding
 * (ratio 0.95, sample_max_value 1.5 for stage I, 1.0 for stage II). Used for pipeline-matching
 * sampling (Part 0); the course's manual loops (lib/diffusion/partA.ts) do no thresholding.
 *
 * Every formula comes from lib/diffusion/formulas.ts and schedule.ts; this file only sequences them.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as F from '../diffusion/formulas';
import { alphaBarAt, cosineSchedule, NoiseSchedule } from '../diffusion/schedule';
import type { Rng } from '../tensor/random';

/** IF's ᾱ schedule (stage I, stage II and stage II's image-noising scheduler all use it). */
export function ifSchedule(): NoiseSchedule {
  return cosineSchedule(1000, 0.999);
}

/** Scheduler options of one IF stage. */
export interface IFSchedulerConfig {
  /** Dynamic thresholding on x̂₀ (diffusers `thresholding`). */
  thresholding: boolean;
  /** Quantile of |x̂₀| per sample (dynamic_thresholding_ratio). */
  ratio: number;
  /** Upper clamp of the threshold s (sample_max_value). */
  sampleMaxValue: number;
}

/** Stage I (IF-I-*): thresholding, ratio 0.95, sample_max_value 1.5. */
export const STAGE_I_SCHEDULER: IFSchedulerConfig = { thresholding: true, ratio: 0.95, sampleMaxValue: 1.5 };
/** Stage II (IF-II-*): same with sample_max_value 1.0. */
export const STAGE_II_SCHEDULER: IFSchedulerConfig = { thresholding: true, ratio: 0.95, sampleMaxValue: 1.0 };

/**
 * diffusers' set_timesteps(n) with the default "leading" spacing and steps_offset 0:
 * ratio = ⌊T/n⌋, timesteps = [(n−1)·ratio, …, ratio, 0]. n = 20 gives [950, 900, …, 0].
 */
export function pipelineTimesteps(n: number, T = 1000): number[] {
  if (!Number.isInteger(n) || n < 1 || n > T) throw new Error(`num_inference_steps must be an integer in 1..${T}, got ${n}`);
  const r = Math.floor(T / n);
  return Array.from({ length: n }, (_, i) => (n - 1 - i) * r);
}

/**
 * diffusers' previous_timestep for a custom or set list: the next entry after t, −1 after the last
 * (then ᾱ = 1). Throws if t is not in the list (SPEC §1.4, gotcha 3).
 */
export function previousTimestep(timesteps: readonly number[], t: number): number {
  const i = timesteps.indexOf(t);
  if (i < 0) throw new Error(`timestep ${t} is not in the scheduler's timestep list [${timesteps.slice(0, 4).join(', ')}, …]`);
  return i + 1 < timesteps.length ? timesteps[i + 1] : -1;
}

/**
 * Dynamic thresholding (diffusers _threshold_sample): per sample, s = quantile(|x̂₀|, ratio)
 * (linear interpolation, as torch.quantile), clamped to [1, maxValue]; x̂₀ ← clamp(x̂₀, −s, s) / s.
 * @param x0 [B,H,W,C] → same shape (new tensor)
 * @returns the thresholded tensor and the per-sample s used
 */
export function dynamicThreshold(x0: tf.Tensor4D, ratio: number, maxValue: number): { x0: tf.Tensor4D; s: number[] } {
  const [B] = x0.shape;
  const n = x0.size / B;
  const data = x0.dataSync();
  const s: number[] = [];
  for (let b = 0; b < B; b++) {
    const a = Float64Array.from(data.subarray(b * n, (b + 1) * n), Math.abs).sort();
    const pos = ratio * (n - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, n - 1);
    const q = a[lo] + (a[hi] - a[lo]) * (pos - lo);
    s.push(Math.min(Math.max(q, 1), maxValue));
  }
  const out = tf.tidy(() => {
    const st = tf.tensor1d(s).reshape([B, 1, 1, 1]);
    return tf.div(tf.minimum(tf.maximum(x0, tf.neg(st)), st), st) as tf.Tensor4D;
  });
  return { x0: out, s };
}

/**
 * One DDPMScheduler.step for a learned-range model (SPEC §3.3):
 * x̂₀ = estimateX0 → (dynamic thresholding) → mean = reverseStepMean(x̂₀, x_t, ᾱ_t, ᾱ_t') →
 * + exp(½ learnedRangeLogVariance(v, ᾱ_t, ᾱ_t')) · z when t > 0, with t' = previousTimestep(t).
 * @param xt [B,H,W,C]; @param eps ε̂ like xt; @param v the model's variance channels like xt
 * @returns x_{t'} [B,H,W,C] (new tensor)
 */
export function ddpmStep(
  schedule: NoiseSchedule,
  timesteps: readonly number[],
  t: number,
  xt: tf.Tensor4D,
  eps: tf.Tensor4D,
  v: tf.Tensor4D,
  rng: Rng,
  cfg: IFSchedulerConfig,
): tf.Tensor4D {
  const tPrev = previousTimestep(timesteps, t);
  const ab = alphaBarAt(schedule, t);
  const abPrev = alphaBarAt(schedule, tPrev);
  let x0 = F.estimateX0(xt, eps, ab);
  if (cfg.thresholding) {
    const th = dynamicThreshold(x0, cfg.ratio, cfg.sampleMaxValue);
    x0.dispose();
    x0 = th.x0;
  }
  const out = tf.tidy(() => {
    const mean = F.reverseStepMean(x0, xt, ab, abPrev);
    if (t <= 0) return mean;
    const std = tf.exp(tf.mul(F.learnedRangeLogVariance(v, ab, abPrev), 0.5));
    return tf.add(mean, tf.mul(rng.normal(xt.shape), std)) as tf.Tensor4D;
  });
  x0.dispose();
  return out;
}
