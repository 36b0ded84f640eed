/**
 * One training step and one sampling step of each Part B model (SPEC §2.3–2.5) on batches made
 * on the host, used by the WebGPU tests (test/gpu) and the GPU check (scripts/gpu/check.ts) to
 * exercise and time the GPU code path with identical inputs on every engine. They are Part B's own
 * pieces: the UNet, the trainer's loss and Adam, the MNIST Denoisers with the one CFG, and the one
 * scheduler step. The loss is read asynchronously: WebGPU in Node has no synchronous readback.
 *
 * Batches are generated on the host as Float32Arrays, so two backends can be fed identical data.
 * Tensors are NHWC: images [B,28,28,1], t/T [B,1], classes [B,10].
 */
import * as tf from '@tensorflow/tfjs-core';
import type { UNet, UNetKind } from '../models/unet';
import { mnistDenoiser } from '../models/mnistDenoiser';
import { DDPMScheduler } from '../schedulers/ddpm';
import { type NoiseSchedule, ddpmSchedule } from '../schedulers/schedule';
import { Rng } from '../tensor/random';
import { classGuidedEstimator } from '../algorithms/ddpmSampling';
import { Adam } from '../training/adam';
import { trainingLoss } from '../training/trainer';
import { PRESETS } from '../training/presets';

/** Predicts ε̂ for x_t [B,28,28,1] at schedule index t (same t for the whole batch). */
export type NoisePredictor = (xt: tf.Tensor4D, t: number) => tf.Tensor4D;

/** The three Part B models. */
export const PARTB_KINDS: UNetKind[] = ['denoiser', 'time', 'class'];

/** The reference preset of Part B's trainer (the spec: §2.3 D=128 B=256 5 epochs; §2.4–2.5 D=64 B=128 20 epochs). */
export const REFERENCE = PRESETS.reference.configs;
/** σ of the single-step denoiser's training noise (§2.3). */
export const DENOISER_SIGMA = REFERENCE.denoiser.sigma;
/** Probability of dropping the class vector in training (§2.5, p_uncond). */
export const P_UNCOND = REFERENCE.class.pUncond;

/** A host-side training batch. x0 [B*28*28] in [0,1]; eps like x0; t indices in [0,T-1]; labels in 0..9. */
export interface HostBatch {
  B: number;
  x0: Float32Array;
  eps: Float32Array;
  t: Int32Array;
  labels: Int32Array;
  /** 1 = keep the class vector, 0 = drop it (unconditional), drawn with P_UNCOND. */
  keep: Float32Array;
}

/** Standard normal via Box–Muller from the seeded stream. */
function gauss(rng: Rng): number {
  const u = Math.max(rng.uniform(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.uniform());
}

/**
 * Makes a batch: images from `images` (uint8 [N*784], cycled from `offset`) or smooth random
 * blobs when none, plus noise, timesteps, labels and the CFG drop mask, all from `seed`.
 */
export function makeBatch(
  B: number,
  seed: number,
  T = 300,
  images?: { pixels: Uint8Array; labels: Uint8Array; offset: number },
): HostBatch {
  const rng = new Rng(seed);
  const n = B * 784;
  const x0 = new Float32Array(n);
  const labels = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    if (images) {
      const N = images.labels.length;
      const i = (images.offset + b) % N;
      for (let p = 0; p < 784; p++) x0[b * 784 + p] = images.pixels[i * 784 + p] / 255;
      labels[b] = images.labels[i];
    } else {
      // A Gaussian blob at a random place: image-like data with no dataset at hand.
      const cx = 6 + rng.uniform() * 16,
        cy = 6 + rng.uniform() * 16,
        r = 3 + rng.uniform() * 4;
      for (let y = 0; y < 28; y++)
        for (let x = 0; x < 28; x++) x0[b * 784 + y * 28 + x] = Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r));
      labels[b] = rng.int(0, 9);
    }
  }
  const eps = new Float32Array(n);
  for (let i = 0; i < n; i++) eps[i] = gauss(rng);
  const t = new Int32Array(B);
  const keep = new Float32Array(B);
  for (let b = 0; b < B; b++) {
    t[b] = rng.int(0, T - 1);
    keep[b] = rng.uniform() < P_UNCOND ? 0 : 1;
  }
  return { B, x0, eps, t, labels, keep };
}

/**
 * The training loss of one host batch (a scalar): Part B's own objective (lib/training/trainer.ts
 * trainingLoss) on tensors made from the host arrays, so every engine sees identical inputs.
 */
export function partbLoss(net: UNet, batch: HostBatch, schedule: NoiseSchedule): tf.Scalar {
  return tf.tidy(() => {
    const { B } = batch;
    const x0 = tf.tensor4d(batch.x0, [B, 28, 28, 1]);
    const eps = tf.tensor4d(batch.eps, [B, 28, 28, 1]);
    const classes = Float32Array.from({ length: B * 10 }, (_, i) =>
      batch.labels[Math.floor(i / 10)] === i % 10 ? batch.keep[Math.floor(i / 10)] : 0,
    );
    return trainingLoss(net, { x0, eps, t: batch.t, classes }, schedule, { sigma: DENOISER_SIGMA });
  });
}

/**
 * Loss value and gradients of every trainable parameter (caller disposes the grads).
 * Async: the WebGPU backend in Node can only read GPU data asynchronously (its dataSync needs
 * OffscreenCanvas, which Node lacks).
 */
export async function lossAndGrads(
  net: UNet,
  batch: HostBatch,
  schedule: NoiseSchedule,
): Promise<{ loss: number; grads: Map<string, tf.Tensor> }> {
  const vars = [...net.store.params.values()];
  const names = [...net.store.params.keys()];
  const { value, grads } = tf.variableGrads(() => partbLoss(net, batch, schedule), vars);
  const loss = (await value.data())[0];
  value.dispose();
  net.store.discardPending(); // only a measurement: no running-stat update
  const out = new Map<string, tf.Tensor>();
  for (let i = 0; i < vars.length; i++) out.set(names[i], grads[vars[i].name]);
  return { loss, grads: out };
}

/** Part B's Adam for the model's parameters. */
export function newAdam(net: UNet): Adam {
  return new Adam(net.store.params);
}

/**
 * One optimizer step on one batch with Part B's Adam, then the BatchNorm running-stat update.
 * Returns the loss tensor (the caller reads it with `await loss.data()` and disposes it).
 */
export function trainStep(net: UNet, adam: Adam, batch: HostBatch, schedule: NoiseSchedule, lr = 1e-3): tf.Scalar {
  const names = [...net.store.params.keys()];
  const vars = names.map((n) => net.store.params.get(n)!);
  const { value, grads } = tf.variableGrads(() => partbLoss(net, batch, schedule), vars);
  const byName = new Map<string, tf.Tensor>(names.map((n, i) => [n, grads[vars[i].name]]));
  adam.update(net.store.params, byName, lr);
  for (const g of byName.values()) g.dispose();
  net.store.commitBatchNorm();
  return value;
}

/**
 * The model as a noise predictor: the time model's ε̂, the class model's guided ε̂ (Alg. B.4, one
 * label per sample, γ = 5); the denoiser maps x to its one-step estimate and ignores t.
 */
export function predictorFor(net: UNet, labels?: ArrayLike<number>, guidance = 5, T = 300): NoisePredictor {
  if (!net.hasTimeInput) return (x) => net.apply({ x }, false);
  const den = mnistDenoiser(net, { T });
  if (net.classCount === 0) {
    const cond = den.encodePrompt(den.neutralPrompt);
    return (x, t) => den.predict(x, t, cond).eps;
  }
  if (!labels) throw new Error('predictorFor: the class-conditioned model needs one label per sample');
  const estimate = classGuidedEstimator(den, labels, guidance);
  return (x, t) => estimate(x, t).eps;
}

/** One reverse step of Alg. B.2 / B.4 (the scheduler's, σ² = β_t) with the given noise z; none when tPrev = −1. */
export function sampleStep(
  eps: NoisePredictor,
  xt: tf.Tensor4D,
  t: number,
  tPrev: number,
  z: tf.Tensor4D,
  schedule: NoiseSchedule,
): tf.Tensor4D {
  const scheduler = new DDPMScheduler(schedule, { varianceType: 'fixed_large', thresholding: false, clipSample: false });
  return tf.tidy(() => scheduler.step(xt, { eps: eps(xt, t) }, t, tPrev, z));
}

export { ddpmSchedule };
