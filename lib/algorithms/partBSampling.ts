/**
 * Sampling any Part B model by its description (lib/models/registry.ts): the model's Denoiser
 * adapter, grid and scheduler, the one guided estimator for class models (lib/guidance/cfg.ts) and
 * the one loop's sampler (sampleModel). DDPMs run Alg. B.2 / B.4, flow models Euler integration;
 * nothing here knows which.
 */
import { samplingOf, type PartBModelDescription } from '../models/registry';
import type { UNet } from '../models/unet';
import type { DDPMSchedulerConfig } from '../schedulers/ddpm';
import { cfgPredict } from '../guidance/cfg';
import type { MnistDenoiser } from '../models/mnistDenoiser';
import { sampleModel, type NoiseEstimator, type SampleResult } from './loops';

export interface PartBSampleOptions {
  seed: number;
  /** Samples to draw (models without classes). */
  count?: number;
  /** One digit per sample (class models). */
  labels?: ArrayLike<number>;
  /** Steps; default the model's (DDPM: the full chain of T; flow: 32 Euler steps). */
  steps?: number;
  /** The grid itself, instead of `steps`. */
  timesteps?: number[];
  /** Class models: the CFG scale γ; default the model's (5, Alg. B.4). */
  guidance?: number;
  /** Diffusion steps of the model's training (DDPM; from the weights header); default the description's. */
  T?: number;
  /** DDPM models: the step's settings; default Alg. B.2's fixed_large. */
  ddpmScheduler?: DDPMSchedulerConfig;
  /** Keep x every this many steps (plus the first and last) for a GIF; 0 = none. */
  frameEvery?: number;
  /** Called after every step (progress). */
  onStep?: (done: number, total: number) => void;
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

/** Samples a Part B model from its description. @returns images [B,28,28,1] (+ frames). */
export function samplePartB(d: PartBModelDescription, net: UNet, opts: PartBSampleOptions): SampleResult {
  const s = samplingOf(d);
  if (net.config.kind !== d.network) throw new Error(`the ${d.title} needs the ${d.network} UNet, got the ${net.config.kind} model`);
  const T = opts.T ?? d.T;
  const den = s.denoiser(net, T);
  const timesteps = opts.timesteps ?? s.grid(opts.steps ?? s.defaultSteps(T), T);
  let estimate: NoiseEstimator;
  let count: number;
  if (d.numClasses > 0) {
    if (!opts.labels) throw new Error(`the ${d.title} needs one digit label per sample`);
    const guidance = opts.guidance ?? s.guidance;
    if (guidance === null) throw new Error(`the ${d.title} has no default guidance scale: pass one`);
    estimate = classGuidedEstimator(den, opts.labels, guidance);
    count = opts.labels.length;
  } else {
    if (opts.labels) throw new Error(`the ${d.title} takes no digit labels: pass a count`);
    const cond = den.encodePrompt(den.neutralPrompt);
    estimate = (xt, t) => den.predict(xt, t, cond);
    count = opts.count ?? 1;
  }
  return sampleModel(den, estimate, {
    count,
    seed: opts.seed,
    timesteps,
    scheduler: s.scheduler(T, opts.ddpmScheduler),
    startLevel: s.startLevel(T),
    ...(opts.frameEvery !== undefined ? { frameEvery: opts.frameEvery } : {}),
    ...(opts.onStep ? { onStep: opts.onStep } : {}),
  });
}
