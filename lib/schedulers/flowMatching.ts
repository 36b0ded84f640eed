/**
 * Flow matching on the linear (rectified-flow) path, with the course's direction convention, stated
 * here once: t = 0 is pure noise and t = 1 is a data image.
 *   path       x_t = (1 − t)·x₀ + t·x₁,   x₀ ~ N(0, I) (noise), x₁ a data image   (Lipman et al. 2023, Eq. 20 with σ_min = 0)
 *   velocity   u = dx_t/dt = x₁ − x₀                                              (the regression target, an L2 loss)
 *   sampling   x_{t+Δt} = x_t + Δt·v_θ(x_t, t), from t = 0 (noise) to t = 1 (Euler)
 * The network's time input is t itself (continuous, in [0, 1]): flowTimeInputs. Tensors are NHWC.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../tensor/random';
import type { NoisePrediction, Scheduler } from './scheduler';

/** Which end of the path is which: the one convention every flow function here follows. */
export const FLOW_CONVENTION = { noiseAt: 0, dataAt: 1 } as const;

/** Per-sample t as a [B,1,1,1] tensor, or a scalar broadcast. */
function tColumn(t: number | ArrayLike<number>, B: number): tf.Tensor {
  if (typeof t === 'number') return tf.scalar(t);
  if (t.length !== B) throw new Error(`${t.length} flow times for a batch of ${B}`);
  return tf.tensor4d(Float32Array.from(t), [B, 1, 1, 1]);
}

/**
 * The point at time t on the straight line from noise to data: x_t = (1 − t)·noise + t·data.
 * @param noise x₀ [B,H,W,C]; @param data x₁ like it; @param t one time or one per sample, in [0,1] → [B,H,W,C]
 */
export function flowInterpolate(noise: tf.Tensor4D, data: tf.Tensor4D, t: number | ArrayLike<number>): tf.Tensor4D {
  return tf.tidy(() => {
    const tt = tColumn(t, noise.shape[0]);
    return tf.add(tf.mul(tf.sub(1, tt), noise), tf.mul(tt, data)) as tf.Tensor4D;
  });
}

/** The velocity of that line, the network's target: u = data − noise (independent of t). [B,H,W,C] → [B,H,W,C] */
export function flowVelocityTarget(noise: tf.Tensor4D, data: tf.Tensor4D): tf.Tensor4D {
  return tf.sub(data, noise);
}

/** The network's time input column [B,1] for one flow time shared by the batch, or one per sample. */
export function flowTimeInputs(t: number | ArrayLike<number>, B: number): tf.Tensor2D {
  if (typeof t === 'number') return tf.fill([B, 1], t) as tf.Tensor2D;
  if (t.length !== B) throw new Error(`${t.length} flow times for a batch of ${B}`);
  return tf.tensor2d(Float32Array.from(t), [B, 1]);
}

/** The course's Euler step size (SPEC-flow.md, Conventions: 50 updates from 0, 25 from 0.5). */
export const FLOW_STEP_SIZE = 0.02;

/** Slack for "h divides 1 − start": 0.02 · 50 is 1 + 2e-16 in floating point. */
const GRID_TOLERANCE = 1e-9;

/**
 * The Euler grid from `start` to 1 with step h (docs/equations.md, F.3): start, start + h, …, and a
 * last step shortened so the grid ends exactly at 1. When h divides 1 − start (within 1e-9) the n
 * steps are spaced exactly (1 − start)/n, so h = 1/n from 0 gives t_i = i/n. h = 0.02: 50 updates
 * from 0, 25 from 0.5; from 0.93: 0.93, 0.95, 0.97, 0.99, 1 (four steps, the last 0.01).
 */
export function flowTimesteps(h: number = FLOW_STEP_SIZE, start = 0): number[] {
  if (!(Number.isFinite(h) && h > 0 && h <= 1)) throw new Error(`the Euler step h must be a number in (0, 1], got ${h}`);
  if (!(Number.isFinite(start) && start >= 0 && start < 1)) throw new Error(`the start time must be a number in [0, 1), got ${start}`);
  const span = 1 - start;
  const n = Math.ceil(span / h - GRID_TOLERANCE);
  if (n > 1e6) throw new Error(`an Euler step of ${h} from ${start} makes ${n} steps: use a larger step`);
  const exact = Math.abs(n * h - span) <= GRID_TOLERANCE;
  const ts = Array.from({ length: n }, (_, i) => (exact ? start + (i * span) / n : start + i * h));
  ts.push(1);
  return ts;
}

/** The Euler grid of `steps` equal steps: t_i = i/steps, i = 0 … steps (steps + 1 times, 0 to 1). */
export function eulerTimes(steps: number): number[] {
  if (!(Number.isInteger(steps) && steps >= 1)) throw new Error(`the number of Euler steps must be a positive integer, got ${steps}`);
  return flowTimesteps(1 / steps);
}

/** One Euler step of dx/dt = v: x + Δt·v. @param x [B,H,W,C]; @param v like it → [B,H,W,C] */
export function eulerStep(x: tf.Tensor4D, v: tf.Tensor4D, dt: number): tf.Tensor4D {
  return tf.tidy(() => tf.add(x, tf.mul(v, dt)) as tf.Tensor4D);
}

/** The one-step estimate of the image (SPEC-flow §1.3): x̂₁ = x_t + (1 − t)·v̂. [B,H,W,C] → [B,H,W,C] */
export function flowEstimateImage(xt: tf.Tensor4D, v: tf.Tensor4D, t: number): tf.Tensor4D {
  return eulerStep(xt, v, 1 - t);
}

/**
 * Euler integration of a flow-matching model's velocity as a Scheduler (lib/schedulers/scheduler.ts),
 * diffusers' FlowMatchEulerDiscreteScheduler in the course's direction (t = 0 noise, t = 1 image):
 * the grid is flowTimesteps(h, start), a step is x + (t' − t)·v̂ and draws no noise.
 */
export class FlowMatchEulerScheduler implements Scheduler {
  readonly family = 'flow';
  readonly prediction = 'velocity';

  /** @param h the step size of the default grid (the course's 0.02) */
  constructor(readonly h: number = FLOW_STEP_SIZE) {
    flowTimesteps(h);
  }

  /** The grid from pure noise: flowTimesteps(h, 0). */
  timesteps(): number[] {
    return flowTimesteps(this.h);
  }

  /** A grid from a start time (SDEdit's start level): flowTimesteps(h, start). */
  timestepsFrom(start: number): number[] {
    return flowTimesteps(this.h, start);
  }

  checkTimesteps(ts: readonly number[], iStart: number, fn: string): void {
    if (ts.length < 2) throw new Error(`${fn}: a flow grid needs at least two times (a start and 1), got ${ts.length}`);
    for (let i = 0; i < ts.length; i++) {
      const ok = Number.isFinite(ts[i]) && ts[i] >= 0 && ts[i] <= 1 && (i === 0 || ts[i] > ts[i - 1]);
      if (!ok) throw new Error(`${fn}: flow times must increase strictly within [0, 1] (entry ${i} is ${ts[i]})`);
    }
    if (!Number.isInteger(iStart) || iStart < 0 || iStart > ts.length - 1) {
      throw new Error(`${fn}: i_start ${iStart} must be an integer in 0..${ts.length - 1} (${ts.length} flow times)`);
    }
  }

  /** The path: x_t = (1 − t)·ε + t·x₁ (t = 1 gives the image exactly). */
  addNoise(clean: tf.Tensor4D, noise: tf.Tensor4D, t: number): tf.Tensor4D {
    return flowInterpolate(noise, clean, t);
  }

  predictOriginal(xt: tf.Tensor4D, pred: NoisePrediction, t: number): tf.Tensor4D {
    return flowEstimateImage(xt, pred.eps, t);
  }

  /** Euler: x_{t'} = x_t + (t' − t)·v̂(x_t, t). Deterministic: `noise` is not drawn from. */
  step(xt: tf.Tensor4D, pred: NoisePrediction, t: number, tNext: number, noise?: Rng | tf.Tensor4D): tf.Tensor4D {
    void noise;
    if (!(tNext > t))
      throw new Error(`flow step from t=${t} to t'=${tNext}: t' must be larger (flow time runs from noise at 0 to the image at 1)`);
    return eulerStep(xt, pred.eps, tNext - t);
  }
}
