/**
 * Sampling the flow-matching models (lib/schedulers/flowMatching.ts): Euler integration of the
 * learned velocity field from pure noise at t = 0 to an image at t = 1, with classifier-free guidance
 * on the velocity for the class-conditioned model (the one CFG, lib/guidance/cfg.ts). Seeded and
 * batched; images are NHWC [B,28,28,1], about in [0,1] like MNIST pixels.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../tensor/random';
import type { UNet } from '../models/unet';
import { oneHot } from '../models/conditioning';
import { cfgNoise } from '../guidance/cfg';
import { eulerStep, eulerTimes, flowTimeInputs } from '../schedulers/flowMatching';

/** Euler steps the figures, notebook, `npm run sample` and the quality table use by default. */
export const FLOW_SAMPLING_STEPS = 32;

/** A velocity field v(x_t, t): x [B,H,W,C] at flow time t ∈ [0,1] → v [B,H,W,C] (the caller disposes v). */
export type VelocityField = (x: tf.Tensor4D, t: number) => tf.Tensor4D;

/** The time-conditioned flow model's velocity v_θ(x, t). */
export function timeVelocity(net: UNet): VelocityField {
  if (net.config.kind !== 'time') throw new Error(`timeVelocity needs the time-conditioned UNet, got the ${net.config.kind} model`);
  return (x, t) => tf.tidy(() => net.apply({ x, t: flowTimeInputs(t, x.shape[0]) }, false));
}

/**
 * The class-conditioned flow model's guided velocity v = v_u + γ (v_c − v_u) (Eq. A.4 on the velocity),
 * v_u with the zero class vector; both branches in one batched call. One label per sample.
 */
export function classGuidedVelocity(net: UNet, labels: ArrayLike<number>, guidance: number): VelocityField {
  if (net.config.kind !== 'class')
    throw new Error(`classGuidedVelocity needs the class-conditioned UNet, got the ${net.config.kind} model`);
  const B = labels.length;
  const cond = oneHot(labels, 10);
  return (x, t) =>
    tf.tidy(() => {
      if (x.shape[0] !== B) throw new Error(`${B} labels for a batch of ${x.shape[0]}`);
      const c = tf.concat([tf.tensor2d(cond, [B, 10]), tf.zeros([B, 10])]) as tf.Tensor2D;
      const both = net.apply({ x: tf.concat([x, x]), t: flowTimeInputs(t, 2 * B), c }, false);
      const [vc, vu] = tf.split(both, 2) as [tf.Tensor4D, tf.Tensor4D];
      return cfgNoise(vu, vc, guidance);
    });
}

export interface FlowSampleOptions {
  /** Number of samples B. */
  count: number;
  seed: number;
  /** Euler steps from t = 0 to 1. */
  steps: number;
  /** Keep x_t every this many steps (plus the first and last) for a GIF; 0 = none. */
  frameEvery?: number;
  /** Called after every step (progress). */
  onStep?: (done: number, total: number) => void;
  /** Start from this noise x₀ [B,28,28,1] instead of drawing it (reflow pairs, tests). */
  noise?: tf.Tensor4D;
}

export interface FlowSampleResult {
  /** x at t = 1 [B,H,W,C], unclipped. */
  images: tf.Tensor4D;
  /** Kept x_t frames, from the noise to the image (caller disposes). */
  frames: tf.Tensor4D[];
  /** Flow time of each frame. */
  frameTimes: number[];
}

/**
 * Euler integration of dx/dt = v(x, t) on eulerTimes(steps): x₀ ~ N(0, I) (one seeded draw), then
 * x_{i+1} = x_i + (t_{i+1} − t_i)·v(x_i, t_i).
 */
export function eulerSample(field: VelocityField, opts: FlowSampleOptions): FlowSampleResult {
  const times = eulerTimes(opts.steps);
  const every = opts.frameEvery ?? 0;
  const frames: tf.Tensor4D[] = [];
  const frameTimes: number[] = [];
  let x = opts.noise ? opts.noise.clone() : (new Rng(opts.seed).normal([opts.count, 28, 28, 1]) as tf.Tensor4D);
  if (every > 0) {
    frames.push(x.clone());
    frameTimes.push(0);
  }
  for (let i = 0; i < opts.steps; i++) {
    const v = field(x, times[i]);
    const next = eulerStep(x, v, times[i + 1] - times[i]);
    v.dispose();
    x.dispose();
    x = next;
    if (every > 0 && ((i + 1) % every === 0 || i + 1 === opts.steps)) {
      frames.push(x.clone());
      frameTimes.push(times[i + 1]);
    }
    opts.onStep?.(i + 1, opts.steps);
  }
  return { images: x, frames, frameTimes };
}

/** Samples from the time-conditioned flow model. @returns images [count,28,28,1] (+ frames). */
export function sampleFlowTime(net: UNet, opts: FlowSampleOptions): FlowSampleResult {
  return eulerSample(timeVelocity(net), opts);
}

/** Samples digits from the class-conditioned flow model with CFG scale `guidance` (default 5, as Alg. B.4). */
export function sampleFlowClass(
  net: UNet,
  labels: number[],
  opts: Omit<FlowSampleOptions, 'count'> & { guidance?: number },
): FlowSampleResult {
  return eulerSample(classGuidedVelocity(net, labels, opts.guidance ?? 5), { ...opts, count: labels.length });
}
