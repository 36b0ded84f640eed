/**
 * Flow matching on the linear (rectified-flow) path, with the course's direction convention, stated
 * here once: t = 0 is pure noise and t = 1 is a data image.
 *   path       x_t = (1 − t)·x₀ + t·x₁,   x₀ ~ N(0, I) (noise), x₁ a data image   (Lipman et al. 2023, Eq. 20 with σ_min = 0)
 *   velocity   u = dx_t/dt = x₁ − x₀                                              (the regression target, an L2 loss)
 *   sampling   x_{t+Δt} = x_t + Δt·v_θ(x_t, t), from t = 0 (noise) to t = 1 (Euler)
 * The network's time input is t itself (continuous, in [0, 1]): flowTimeInputs. Tensors are NHWC.
 */
import * as tf from '@tensorflow/tfjs-core';

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

/** The Euler grid of `steps` equal steps: t_i = i/steps, i = 0 … steps (steps + 1 times, 0 to 1). */
export function eulerTimes(steps: number): number[] {
  if (!(Number.isInteger(steps) && steps >= 1)) throw new Error(`the number of Euler steps must be a positive integer, got ${steps}`);
  return Array.from({ length: steps + 1 }, (_, i) => i / steps);
}

/** One Euler step of dx/dt = v: x + Δt·v. @param x [B,H,W,C]; @param v like it → [B,H,W,C] */
export function eulerStep(x: tf.Tensor4D, v: tf.Tensor4D, dt: number): tf.Tensor4D {
  return tf.tidy(() => tf.add(x, tf.mul(v, dt)) as tf.Tensor4D);
}
