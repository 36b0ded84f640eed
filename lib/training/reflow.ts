/**
 * One round of rectified flow ("reflow", Liu et al. 2023, Alg. 1): integrate a trained flow model
 * from fixed noise draws to get (noise x₀, image x₁) pairs, then train on those pairs (the same linear
 * path and velocity loss, lib/schedulers/flowMatching.ts) starting from the trained weights. The
 * paths of the new model cross less, so few Euler steps land closer to the many-step result.
 * The pairs are a tensor file: noise [N,28,28,1], images [N,28,28,1], labels [N].
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../tensor/random';
import type { UNet } from '../models/unet';
import { classGuidedVelocity, eulerSample, timeVelocity } from '../algorithms/flowSampling';
import { loadTensorFile, saveTensorFile } from '../weights/tensorFile';
import type { MnistSet } from '../data/mnist';

const PX = 28 * 28;

/** Noise–image pairs made by a flow model. noise, images: count × 784; labels: the digit each was drawn as (0 for the time model). */
export interface ReflowPairs extends MnistSet {
  noise: Float32Array;
}

export interface PairOptions {
  count: number;
  /** Euler steps of the teacher's integration. */
  steps: number;
  seed: number;
  /** Class model: the CFG scale the pairs are drawn with (default 5). */
  guidance?: number;
  /** Samples integrated at once. */
  chunk?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Integrates the trained flow model from `count` seeded noise draws (labels cycle 0..9 for the class model). */
export function makeReflowPairs(net: UNet, o: PairOptions): ReflowPairs {
  const chunk = o.chunk ?? 250;
  const noise = new Float32Array(o.count * PX);
  const images = new Float32Array(o.count * PX);
  const labels = new Uint8Array(o.count);
  const rng = new Rng(o.seed);
  for (let start = 0; start < o.count; start += chunk) {
    const B = Math.min(chunk, o.count - start);
    const K = net.classCount;
    const lab = Array.from({ length: B }, (_, i) => (K > 0 ? (start + i) % K : 0));
    const x0 = rng.normal([B, 28, 28, 1]) as tf.Tensor4D;
    const field = K > 0 ? classGuidedVelocity(net, lab, o.guidance ?? 5) : timeVelocity(net);
    const res = eulerSample(field, { count: B, seed: 0, steps: o.steps, noise: x0 });
    noise.set(x0.dataSync(), start * PX);
    images.set(res.images.dataSync(), start * PX);
    labels.set(lab, start);
    x0.dispose();
    res.images.dispose();
    o.onProgress?.(start + B, o.count);
  }
  return { noise, images, labels, count: o.count };
}

/** Writes the pairs (atomically) with a header saying how they were made. */
export function saveReflowPairs(file: string, p: ReflowPairs, made: Record<string, unknown>): void {
  const t = new Map([
    ['noise', { shape: [p.count, 28, 28, 1], data: p.noise }],
    ['images', { shape: [p.count, 28, 28, 1], data: p.images }],
    ['labels', { shape: [p.count], data: Float32Array.from(p.labels) }],
  ]);
  saveTensorFile(file, t, { kind: 'reflow-pairs', count: p.count, ...made });
}

/** Reads pairs written by saveReflowPairs; one-line errors for anything else. */
export function loadReflowPairs(file: string): ReflowPairs {
  const { meta, tensors } = loadTensorFile(file);
  if ((meta as { kind?: unknown })?.kind !== 'reflow-pairs')
    throw new Error(`${file} is not a reflow pairs file; make one with npm run train -- --model flow-time --reflow-from FILE`);
  const noise = tensors.get('noise'),
    images = tensors.get('images'),
    labels = tensors.get('labels');
  const n = labels?.data.length ?? 0;
  if (!noise || !images || !labels || noise.data.length !== n * PX || images.data.length !== n * PX) {
    throw new Error(`${file}: the noise, images and labels do not match in count; regenerate the pairs`);
  }
  return { noise: noise.data, images: images.data, labels: Uint8Array.from(labels.data), count: n };
}
