/**
 * Sampling the flow-matching models (lib/schedulers/flowMatching.ts): Euler integration of the
 * learned velocity field from pure noise at t = 0 to an image at t = 1, with classifier-free guidance
 * on the velocity for the class-conditioned model. Everything runs on the one loop (sampleModel,
 * lib/algorithms/loops.ts) with the flow scheduler and the one CFG (lib/guidance/cfg.ts); this file
 * only adapts Part B's UNets and bare velocity fields to it. Seeded and batched; images are NHWC
 * [B,H,W,C], about in [0,1] like MNIST pixels.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { velocityFunctionDenoiser } from '../models/denoiser';
import { mnistFlowDenoiser } from '../models/mnistDenoiser';
import type { UNet } from '../models/unet';
import { eulerTimes } from '../schedulers/flowMatching';
import { sampleModel, type SampleOptions, type SampleResult } from './loops';
import { PARTB_REGISTRY } from '../models/registry';
import { classGuidedEstimator, samplePartB, type PartBSampleOptions } from './partBSampling';

/** Euler steps the figures, notebook, `npm run sample` and the quality table use by default. */
export const FLOW_SAMPLING_STEPS = 32;

/** A velocity field v(x_t, t): x [B,H,W,C] at flow time t ∈ [0,1] → v [B,H,W,C] (the caller disposes v). */
export type VelocityField = (x: tf.Tensor4D, t: number) => tf.Tensor4D;

/** The time-conditioned flow model's velocity v_θ(x, t). */
export function timeVelocity(net: UNet): VelocityField {
  if (!net.hasTimeInput || net.classCount > 0)
    throw new Error(`timeVelocity needs the time-conditioned UNet, got the ${net.config.kind} model`);
  const den = mnistFlowDenoiser(net);
  const cond = den.encodePrompt(den.neutralPrompt);
  return (x, t) => den.predict(x, t, cond).eps;
}

/**
 * The class-conditioned flow model's guided velocity v = v_u + γ (v_c − v_u) (Eq. A.4 on the velocity,
 * the DDPM convention: γ = w + 1 of the course's w), v_u with the zero class vector; both branches in
 * one batched call (the one CFG). One label per sample.
 */
export function classGuidedVelocity(net: UNet, labels: ArrayLike<number>, guidance: number): VelocityField {
  if (net.classCount === 0) throw new Error(`classGuidedVelocity needs the class-conditioned UNet, got the ${net.config.kind} model`);
  const estimate = classGuidedEstimator(mnistFlowDenoiser(net), labels, guidance);
  return (x, t) => {
    if (x.shape[0] !== labels.length) throw new Error(`${labels.length} labels for a batch of ${x.shape[0]}`);
    return estimate(x, t).eps;
  };
}

export interface FlowSampleOptions extends Omit<SampleOptions, 'timesteps' | 'scheduler' | 'startLevel'> {
  /** Euler steps from t = 0 to 1 (equal steps, eulerTimes). */
  steps: number;
  /** The image shape [H, W, C] of a bare field (default MNIST's [28, 28, 1]; a UNet's own otherwise). */
  shape?: [number, number, number];
}

export type FlowSampleResult = SampleResult;

/**
 * Euler integration of dx/dt = v(x, t) on eulerTimes(steps): x₀ ~ N(0, I) (one seeded draw), then
 * x_{i+1} = x_i + (t_{i+1} − t_i)·v(x_i, t_i), on the one loop.
 */
export function eulerSample(field: VelocityField, opts: FlowSampleOptions): FlowSampleResult {
  const shape = opts.shape ?? (opts.noise ? [opts.noise.shape[1], opts.noise.shape[2], opts.noise.shape[3]] : [28, 28, 1]);
  const den = velocityFunctionDenoiser('a velocity field', shape as [number, number, number], field);
  const cond = den.encodePrompt('');
  return sampleModel(den, (x, t) => den.predict(x, t, cond), { ...opts, timesteps: eulerTimes(opts.steps) });
}

/** Samples from the time-conditioned flow model. @returns images [count,28,28,1] (+ frames). */
export function sampleFlowTime(net: UNet, opts: FlowSampleOptions): FlowSampleResult {
  return samplePartB(PARTB_REGISTRY['flow-time'], net, flowOptions(opts));
}

/** Samples digits from the class-conditioned flow model with CFG scale `guidance` (default 5, as Alg. B.4). */
export function sampleFlowClass(
  net: UNet,
  labels: number[],
  opts: Omit<FlowSampleOptions, 'count'> & { guidance?: number },
): FlowSampleResult {
  return samplePartB(PARTB_REGISTRY['flow-class'], net, { ...flowOptions(opts), labels });
}

function flowOptions(opts: Omit<FlowSampleOptions, 'count'> & { count?: number; guidance?: number }): PartBSampleOptions {
  const { noise, shape, ...rest } = opts;
  if (noise || shape) throw new Error('sampleFlowTime/sampleFlowClass draw their own noise: use eulerSample for a given start');
  return rest;
}
