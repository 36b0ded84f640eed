/**
 * DDPM sampling for the Part B models: Alg. B.2 (time-conditioned) and Alg. B.4 (class-conditioned
 * with classifier-free guidance), seeded and batched. Both are the one loop's sampler
 * (sampleModel, lib/algorithms/loops.ts) over the full chain T−1 … 0 and a last step to the clean
 * image (the spec's t = T … 1), with the variance fixed at β_t ("fixed_large", Alg. B.2 line 3) and
 * no noise on the last step (z = 0). The models enter as Denoisers (lib/models/mnistDenoiser.ts).
 */
import { fullChainTimesteps, toClean } from '../schedulers/timesteps';
import { ddpmScheduleOf, type Denoiser } from '../models/denoiser';
import { PARTB_REGISTRY } from '../models/registry';
import type { UNet } from '../models/unet';
import { sampleModel, type NoiseEstimator, type SampleOptions, type SampleResult } from './loops';
import { courseConfig, type DDPMSchedulerConfig } from '../schedulers/ddpm';
import { samplePartB, type PartBSampleOptions } from './partBSampling';

export type { SampleOptions, SampleResult };
export { classGuidedEstimator } from './partBSampling';

/** Alg. B.2 line 3 as the spec writes it: x_{t−1} = mean + √β_t z, x̂₀ unclipped. */
export const ALG_B2_SCHEDULER: DDPMSchedulerConfig = courseConfig('fixed_large');

/** The sampler Part B's figures, notebook and quality table use (measured choice: see the cpu preset). */
export const PARTB_SAMPLER: DDPMSchedulerConfig = ALG_B2_SCHEDULER;

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

/** Samples digits from the class-conditioned model (Alg. B.4). @returns images [B,28,28,1] (+ frames). */
export function sampleClass(
  net: UNet,
  labels: number[],
  opts: Omit<SampleOptions, 'count' | 'scheduler'> & { guidance?: number; T?: number; scheduler?: DDPMSchedulerConfig },
): SampleResult {
  return samplePartB(PARTB_REGISTRY.class, net, {
    ...partBOptions(opts),
    labels,
    ...(opts.guidance !== undefined ? { guidance: opts.guidance } : {}),
  });
}

/** Samples from the time-conditioned model (Alg. B.2). @returns images [count,28,28,1] (+ frames). */
export function sampleTime(
  net: UNet,
  opts: Omit<SampleOptions, 'scheduler'> & { T?: number; scheduler?: DDPMSchedulerConfig },
): SampleResult {
  return samplePartB(PARTB_REGISTRY.time, net, { ...partBOptions(opts), count: opts.count });
}

/** The options of samplePartB from this file's (the DDPM step's settings under their old name). */
function partBOptions(
  opts: Omit<SampleOptions, 'count' | 'scheduler'> & { T?: number; scheduler?: DDPMSchedulerConfig },
): PartBSampleOptions {
  const { scheduler, noise, startLevel, ...rest } = opts;
  if (noise || startLevel !== undefined) throw new Error('sampleClass/sampleTime draw their own noise: use ddpmSample for a given start');
  return { ...rest, ...(scheduler ? { ddpmScheduler: scheduler } : {}) };
}
