/**
 * DDPM sampling for the Part B models: Alg. B.2 (time-conditioned) and Alg. B.4 (class-conditioned
 * with classifier-free guidance). Seeded and batched.
 *
 * Indexing (same as training, lib/partb/train.ts): the loop runs over schedule indices
 * t = T−1 … 0 (the spec's T … 1); the network sees (t+1)/T; ᾱ_t = alphasCumprod[t] and
 * ᾱ_{t−1} = alphaBarAt(schedule, t−1) (1 after the last step). The variance is fixed at β_t
 * ("fixed large", Alg. B.2 line 3) and no noise is added at the last step (z = 0).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../tensor/random';
import { alphaBarAt, ddpmSchedule, type NoiseSchedule } from '../diffusion/schedule';
import { cfgNoise, estimateX0, reverseStepMean, stepBeta } from '../diffusion/formulas';
import type { UNet } from './unet';

/** Predicts ε̂ for x_t [B,28,28,1] at schedule index t (same t for the whole batch). */
export type NoisePredictor = (xt: tf.Tensor4D, t: number) => tf.Tensor4D;

export interface SampleOptions {
  /** Number of samples B. */
  count: number;
  seed: number;
  schedule?: NoiseSchedule;
  /** Keep x_t every this many steps (plus the first and last) for a GIF; 0 = none. */
  frameEvery?: number;
  /** Called after every step (progress). */
  onStep?: (done: number, total: number) => void;
  /** Image side (default 28). */
  size?: number;
}

export interface SampleResult {
  /** x_0 [B,28,28,1], unclipped (pixels are about in [0,1]). */
  images: tf.Tensor4D;
  /** Kept x_t frames, each [B,28,28,1], from pure noise to x_0 (caller disposes). */
  frames: tf.Tensor4D[];
  /** Schedule index of each frame (T for the initial noise, −1 for x_0). */
  frameTimes: number[];
}

/**
 * One reverse step of Alg. B.2 / B.4 from index t to tPrev < t (t − 1 in the full chain): x̂_0
 * from ε̂, the Eq. A.3 mean, plus √β · z with β the step's beta ("fixed large" variance; no noise
 * when z is undefined). @param xt [B,H,W,1]; @param z fresh noise like xt
 */
export function ddpmReverseStep(eps: NoisePredictor, xt: tf.Tensor4D, t: number, tPrev: number, z: tf.Tensor4D | undefined, sched: NoiseSchedule): tf.Tensor4D {
  return tf.tidy(() => {
    const abar = alphaBarAt(sched, t);
    const abarPrev = alphaBarAt(sched, tPrev);
    const mean = reverseStepMean(estimateX0(xt, eps(xt, t), abar), xt, abar, abarPrev);
    return z ? (tf.add(mean, tf.mul(z, Math.sqrt(stepBeta(abar, abarPrev)))) as tf.Tensor4D) : mean;
  });
}

/**
 * Alg. B.2 with any noise predictor (a UNet, or an oracle in tests).
 * x_T ~ N(0,I); for t = T−1 … 0: x̂_0 = estimateX0, x_{t−1} = reverseStepMean + √β_t · z.
 */
export function ddpmSample(eps: NoisePredictor, opts: SampleOptions): SampleResult {
  const sched = opts.schedule ?? ddpmSchedule();
  const size = opts.size ?? 28;
  const rng = new Rng(opts.seed);
  const frames: tf.Tensor4D[] = [];
  const frameTimes: number[] = [];
  let x = rng.normal([opts.count, size, size, 1]) as tf.Tensor4D;
  const keep = (t: number) => {
    if (opts.frameEvery && opts.frameEvery > 0) {
      frames.push(x.clone());
      frameTimes.push(t);
    }
  };
  keep(sched.T);
  for (let t = sched.T - 1; t >= 0; t--) {
    // z = 0 at the last step.
    const next = tf.tidy(() => ddpmReverseStep(eps, x, t, t - 1, t === 0 ? undefined : (rng.normal(x.shape) as tf.Tensor4D), sched));
    x.dispose();
    x = next;
    opts.onStep?.(sched.T - t, sched.T);
    if (t === 0 || (opts.frameEvery && t % opts.frameEvery === 0)) keep(t - 1);
  }
  return { images: x, frames, frameTimes };
}

/** The time-conditioned UNet as a noise predictor (eval mode; input (t+1)/T). */
export function timePredictor(net: UNet, T = 300): NoisePredictor {
  return (xt, t) =>
    tf.tidy(() => net.apply({ x: xt, t: tf.fill([xt.shape[0], 1], (t + 1) / T) as tf.Tensor2D }, false));
}

/**
 * The class-conditioned UNet with classifier-free guidance (Alg. B.4): ε = ε_u + γ(ε_c − ε_u),
 * where ε_u uses the zero class vector. Both branches run as one batch of 2B.
 * @param labels one digit per sample (length B); @param guidance γ (5 in the spec)
 */
export function cfgPredictor(net: UNet, labels: ArrayLike<number>, guidance: number, T = 300): NoisePredictor {
  const B = labels.length;
  const nc = net.config.numClasses;
  const oh = new Float32Array(2 * B * nc); // rows 0..B−1 conditional, B..2B−1 zero (unconditional)
  for (let i = 0; i < B; i++) {
    const d = labels[i];
    if (!(Number.isInteger(d) && d >= 0 && d < nc)) throw new Error(`digit ${d} is not a class label 0..${nc - 1}`);
    oh[i * nc + d] = 1;
  }
  return (xt, t) =>
    tf.tidy(() => {
      if (xt.shape[0] !== B) throw new Error(`batch of ${xt.shape[0]} images but ${B} labels`);
      const c = tf.tensor2d(oh, [2 * B, nc]);
      const out = net.apply({ x: tf.concat([xt, xt], 0), t: tf.fill([2 * B, 1], (t + 1) / T) as tf.Tensor2D, c }, false);
      const [ec, eu] = tf.split(out, 2, 0) as [tf.Tensor4D, tf.Tensor4D];
      return cfgNoise(eu, ec, guidance);
    });
}

/** Samples digits from the class-conditioned model. @returns images [B,28,28,1] (+ frames). */
export function sampleClass(net: UNet, labels: number[], opts: Omit<SampleOptions, 'count'> & { guidance?: number }): SampleResult {
  if (net.config.kind !== 'class') throw new Error(`sampleClass needs the class-conditioned UNet, got the ${net.config.kind} model`);
  return ddpmSample(cfgPredictor(net, labels, opts.guidance ?? 5, opts.schedule?.T ?? 300), { ...opts, count: labels.length });
}

/** Samples from the time-conditioned model. @returns images [count,28,28,1] (+ frames). */
export function sampleTime(net: UNet, opts: SampleOptions): SampleResult {
  if (net.config.kind !== 'time') throw new Error(`sampleTime needs the time-conditioned UNet, got the ${net.config.kind} model`);
  return ddpmSample(timePredictor(net, opts.schedule?.T ?? 300), opts);
}
