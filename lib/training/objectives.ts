/**
 * The training objectives of the Part B models, one entry per loss (docs/equations.md, Part B). A
 * model's description (lib/models/registry.ts) names its loss; the trainer looks it up here and
 * knows nothing else about the model:
 *  - denoise:  ‖D(x + σε) − x‖² (Eqs. B.1–B.2), no time input;
 *  - denoise-pure-noise: ‖D(ε) − x‖², the same network fed pure noise (SPEC-flow Part B §1.2.3):
 *              the input says nothing about x, so the MSE-optimal output is the mean training image;
 *  - epsilon:  ‖ε_θ(x_t, t[, c]) − ε‖², t uniform over 0..T−1, x_t by Eq. A.2 (Alg. B.1 / B.3),
 *              time input timeInput(t, T) = (t+1)/T;
 *  - velocity: ‖v_θ(x_t, t[, c]) − (x₁ − x₀)‖², t uniform in [0, 1), x_t = (1 − t)x₀ + t x₁ with the
 *              noise x₀ = eps and the image x₁ = x0 (SPEC-flow Part B, Alg. B.1), time input t.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../tensor/random';
import type { NoiseSchedule } from '../schedulers/schedule';
import { addNoise, forward } from '../schedulers/formulas';
import { flowInterpolate, flowTimeInputs, flowVelocityTarget } from '../schedulers/flowMatching';
import { timeInputs } from '../models/conditioning';
import type { LossName } from '../models/registry';
import type { UNet } from '../models/unet';

/** One training batch, NHWC. */
export interface TrainingBatch {
  /** clean images [B,H,W,C] in [0,1] */
  x0: tf.Tensor4D;
  /** noise like x0 */
  eps: tf.Tensor4D;
  /** timestep indices in [0,T−1], one per sample (DDPMs) */
  t?: Int32Array;
  /** flow times in [0,1), one per sample (flow matching; t = 0 is the noise eps, t = 1 the image x0) */
  flowT?: Float32Array;
  /** class vectors [B·K], one-hot or all-zero (class models) */
  classes?: Float32Array;
}

export interface TrainingObjective {
  /** Denoisers: what the network is fed for a clean batch x0 and its noise draw (the loss's input, and previews'). */
  denoiserInput?(x0: tf.Tensor4D, eps: tf.Tensor4D, sigma: number): tf.Tensor4D;
  /** Denoisers: that input in a caption ("σ = 0.5", "pure noise"). */
  denoiserInputLabel?(sigma: number): string;
  /** Draws each sample's time from the run's noise RNG (nothing for the denoiser). */
  drawTimes(rng: Rng, B: number, T: number): Pick<TrainingBatch, 't' | 'flowT'>;
  /**
   * The loss on a batch (a scalar for variableGrads), the network in training mode.
   * @param c the class input [B,K] of class models, else undefined
   */
  loss(net: UNet, batch: TrainingBatch, c: tf.Tensor2D | undefined, schedule: NoiseSchedule, sigma: number): tf.Scalar;
}

/** A denoiser's objective: ‖D(input(x0, ε, σ)) − x0‖², no time input. */
function denoiserObjective(
  input: (x0: tf.Tensor4D, eps: tf.Tensor4D, sigma: number) => tf.Tensor4D,
  label: (sigma: number) => string,
): TrainingObjective {
  return {
    denoiserInput: input,
    denoiserInputLabel: label,
    drawTimes: () => ({}),
    loss: (net, { x0, eps }, _c, _schedule, sigma) =>
      tf.mean(tf.squaredDifference(net.apply({ x: input(x0, eps, sigma) }, true), x0)) as tf.Scalar,
  };
}

export const TRAINING_OBJECTIVES: Readonly<Record<LossName, TrainingObjective>> = {
  denoise: denoiserObjective(
    (x0, eps, sigma) => addNoise(x0, sigma, eps),
    (sigma) => `σ = ${sigma}`,
  ),
  'denoise-pure-noise': denoiserObjective(
    (_x0, eps) => eps,
    () => 'pure noise',
  ),
  epsilon: {
    drawTimes: (rng, B, T) => {
      // t uniform over indices 0..T−1 (≡ the spec's 1..T).
      const t = new Int32Array(B);
      for (let i = 0; i < B; i++) t[i] = rng.int(0, T - 1);
      return { t };
    },
    loss: (net, batch, c, schedule) => {
      const { x0, eps } = batch;
      const B = x0.shape[0];
      if (!batch.t || batch.t.length !== B)
        throw new Error(`the ${net.config.kind}-conditioned loss needs ${B} timesteps, got ${batch.t?.length ?? 0}`);
      const abar = tf.tensor1d(Float32Array.from(batch.t, (t) => schedule.alphasCumprod[t]));
      const xt = forward(x0, abar, eps);
      return tf.mean(tf.squaredDifference(net.apply({ x: xt, t: timeInputs(batch.t, schedule.T, B), c }, true), eps)) as tf.Scalar;
    },
  },
  velocity: {
    drawTimes: (rng, B) => {
      // Flow matching: t uniform in [0, 1).
      const flowT = new Float32Array(B);
      for (let i = 0; i < B; i++) flowT[i] = rng.uniform();
      return { flowT };
    },
    loss: (net, batch, c) => {
      const { x0, eps } = batch;
      const B = x0.shape[0];
      if (!batch.flowT || batch.flowT.length !== B)
        throw new Error(`the flow-matching loss needs ${B} flow times, got ${batch.flowT?.length ?? 0}`);
      const xt = flowInterpolate(eps, x0, batch.flowT);
      const v = net.apply({ x: xt, t: flowTimeInputs(batch.flowT, B), c }, true);
      return tf.mean(tf.squaredDifference(v, flowVelocityTarget(eps, x0))) as tf.Scalar;
    },
  },
};
