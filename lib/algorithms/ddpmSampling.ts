/**
 * DDPM sampling for the Part B models: Alg. B.2 (time-conditioned) and Alg. B.4 (class-conditioned
 * with classifier-free guidance), seeded and batched. Both are the one loop's sampler
 * (sampleModel, lib/algorithms/loops.ts) over the full chain T−1 … 0 and a last step to the clean
 * image (the spec's t = T … 1), with the variance fixed at β_t ("fixed_large", Alg. B.2 line 3) and
 * no noise on the last step (z = 0). The models enter as Denoisers (lib/models/mnistDenoiser.ts).
 */
import { fullChainTimesteps, toClean } from '../schedulers/timesteps';
import { ddpmScheduleOf, type Denoiser } from '../models/denoiser';
import { mnistDenoiser, type MnistDenoiser } from '../models/mnistDenoiser';
import type { UNet } from '../models/unet';
import { cfgPredict } from '../guidance/cfg';
import { sampleModel, type NoiseEstimator, type SampleOptions, type SampleResult } from './loops';
import { courseConfig, type DDPMSchedulerConfig } from '../schedulers/ddpm';

export type { SampleOptions, SampleResult };

/** Alg. B.2 line 3 as the spec writes it: x_{t−1} = mean + √β_t z, x̂₀ unclipped. */
export const ALG_B2_SCHEDULER: DDPMSchedulerConfig = courseConfig('fixed_large');

/** The sampler Part B's figures, notebook and quality table use (measured choice: see the cpu preset). */
export const PARTB_SAMPLER: DDPMSchedulerConfig = ALG_B2_SCHEDULER;

/** The guidance scale of Alg. B.4 (γ = 5). */
export const PARTB_GUIDANCE = 5;

/**
 * Alg. B.2 with any noise estimator: x_T ~ N(0,I) (one draw), then for t = T−1 … 0 the scheduler's
 * step to t−1 with σ² = β_t and z = 0 at t = 0. Draws: the noise, then one z per step with t > 0.
 * The first frame's level is T (the noise before the first step).
 */
export function ddpmSample(den: Denoiser, estimate: NoiseEstimator, opts: SampleOptions): SampleResult {
  const T = ddpmScheduleOf(den, 'ddpmSample').T;
  return sampleModel(den, estimate, {
    ...opts,
    timesteps: opts.timesteps ?? toClean(fullChainTimesteps(T)),
    scheduler: opts.scheduler ?? PARTB_SAMPLER,
    startLevel: T,
  });
}

/**
 * Alg. B.4's guided estimate for a batch of digits (one per sample; γ = 5 in the spec), unconditional
 * = zero class vector; both branches in one batched call (lib/guidance/cfg.ts). Serves DDPM (ε) and
 * flow (velocity) class models alike.
 */
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
  return ddpmSample(den, classGuidedEstimator(den, labels, opts.guidance ?? PARTB_GUIDANCE), { ...opts, count: labels.length });
}

/** Samples from the time-conditioned model (Alg. B.2). @returns images [count,28,28,1] (+ frames). */
export function sampleTime(net: UNet, opts: SampleOptions & { T?: number }): SampleResult {
  if (net.config.kind !== 'time') throw new Error(`sampleTime needs the time-conditioned UNet, got the ${net.config.kind} model`);
  const den = mnistDenoiser(net, { T: opts.T ?? 300 });
  const cond = den.encodePrompt(den.neutralPrompt);
  return ddpmSample(den, (xt, t) => den.predict(xt, t, cond), opts);
}
