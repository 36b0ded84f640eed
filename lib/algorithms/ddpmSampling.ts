/**
 * DDPM sampling for the Part B models: Alg. B.2 (time-conditioned) and Alg. B.4 (class-conditioned
 * with classifier-free guidance), seeded and batched. Both are the shared reverse loop
 * (lib/algorithms/loops.ts) over the full chain T−1 … 0 and a last step to the clean image
 * (the spec's t = T … 1), with the variance fixed at β_t ("fixed_large", Alg. B.2 line 3) and no
 * noise on the last step (z = 0). The models enter as Denoisers (lib/models/mnistDenoiser.ts).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../tensor/random';
import { fullChainTimesteps, toClean } from '../schedulers/timesteps';
import type { Denoiser } from '../models/denoiser';
import { mnistDenoiser, type MnistDenoiser } from '../models/mnistDenoiser';
import type { UNet } from '../models/unet';
import { cfgPredict } from '../guidance/cfg';
import { denoiseLoop, fromNoise, type NoiseEstimator } from './loops';
import { courseConfig, type DDPMSchedulerConfig } from '../schedulers/ddpm';

/** Alg. B.2 line 3 as the spec writes it: x_{t−1} = mean + √β_t z, x̂₀ unclipped. */
export const ALG_B2_SCHEDULER: DDPMSchedulerConfig = courseConfig('fixed_large');

/** The sampler Part B's figures, notebook and quality table use (measured choice: see the cpu preset). */
export const PARTB_SAMPLER: DDPMSchedulerConfig = ALG_B2_SCHEDULER;

export interface SampleOptions {
  /** Number of samples B. */
  count: number;
  seed: number;
  /** Keep x_t every this many steps (plus the first and last) for a GIF; 0 = none. */
  frameEvery?: number;
  /** Called after every step (progress). */
  onStep?: (done: number, total: number) => void;
  /** The list to step through; default the full chain to clean, toClean(fullChainTimesteps(T)). */
  timesteps?: number[];
  /** The step's settings; default PARTB_SAMPLER. */
  scheduler?: DDPMSchedulerConfig;
}

export interface SampleResult {
  /** x_0 [B,H,W,C], unclipped (MNIST pixels are about in [0,1]). */
  images: tf.Tensor4D;
  /** Kept x_t frames, each [B,H,W,C], from pure noise to x_0 (caller disposes). */
  frames: tf.Tensor4D[];
  /** Schedule index of each frame (T for the initial noise, −1 for x_0). */
  frameTimes: number[];
}

/**
 * Alg. B.2 with any noise estimator: x_T ~ N(0,I) (one draw), then for t = T−1 … 0 the scheduler's
 * step to t−1 with σ² = β_t and z = 0 at t = 0. Draws: the noise, then one z per step with t > 0.
 */
export function ddpmSample(den: Denoiser, estimate: NoiseEstimator, opts: SampleOptions): SampleResult {
  const T = den.schedule.T;
  const rng = new Rng(opts.seed);
  const frames: tf.Tensor4D[] = [];
  const frameTimes: number[] = [];
  const every = opts.frameEvery ?? 0;
  const timesteps = opts.timesteps ?? toClean(fullChainTimesteps(T));
  const images = fromNoise(den, opts.count, rng, (x) => {
    if (every > 0) {
      frames.push(x.clone());
      frameTimes.push(T);
    }
    return denoiseLoop(
      den,
      x,
      0,
      estimate,
      {
        rng,
        timesteps,
        scheduler: opts.scheduler ?? PARTB_SAMPLER,
        onStep: ({ i, t: tPrev, x: cur }) => {
          opts.onStep?.(i, timesteps.length - 1);
          const t = timesteps[i - 1]; // the step just taken was t → tPrev
          if (every > 0 && (t === 0 || t % every === 0)) {
            frames.push(cur.clone());
            frameTimes.push(tPrev);
          }
        },
      },
      'ddpmSample',
    );
  });
  return { images, frames, frameTimes };
}

/** Alg. B.4's guided estimate for a batch of digits (one per sample; γ = 5 in the spec), unconditional = zero class vector. */
export function classGuidedEstimator(den: MnistDenoiser, labels: ArrayLike<number>, guidance: number): NoiseEstimator {
  const g = { cond: den.encodeLabels(labels), uncond: den.encodePrompt(den.emptyPrompt), gamma: guidance };
  return (xt, t) => cfgPredict(den, xt, t, g);
}

/** Samples digits from the class-conditioned model (Alg. B.4). @returns images [B,28,28,1] (+ frames). */
export function sampleClass(
  net: UNet,
  labels: number[],
  opts: Omit<SampleOptions, 'count'> & { guidance?: number; T?: number },
): SampleResult {
  if (net.config.kind !== 'class') throw new Error(`sampleClass needs the class-conditioned UNet, got the ${net.config.kind} model`);
  const den = mnistDenoiser(net, { T: opts.T ?? 300 });
  return ddpmSample(den, classGuidedEstimator(den, labels, opts.guidance ?? 5), { ...opts, count: labels.length });
}

/** Samples from the time-conditioned model (Alg. B.2). @returns images [count,28,28,1] (+ frames). */
export function sampleTime(net: UNet, opts: SampleOptions & { T?: number }): SampleResult {
  if (net.config.kind !== 'time') throw new Error(`sampleTime needs the time-conditioned UNet, got the ${net.config.kind} model`);
  const den = mnistDenoiser(net, { T: opts.T ?? 300 });
  const cond = den.encodePrompt(den.neutralPrompt);
  return ddpmSample(den, (xt, t) => den.predict(xt, t, cond), opts);
}
