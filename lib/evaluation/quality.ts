/**
 * Quality numbers for the Part B models (reported, not asserted in tests):
 *  - denoiser: test-set MSE ‖D(x + σε) − x‖² (mean per pixel) at each σ;
 *  - class model: per-digit accuracy of CFG samples as judged by the project's classifier;
 *  - time model: mean top-class confidence of its (unconditional) samples.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../tensor/random';
import type { UNet } from '../models/unet';
import type { Classifier } from '../models/classifier';
import type { MnistSet } from '../data/mnist';
import { sampleClass, sampleTime } from '../algorithms/ddpmSampling';
import { addNoise } from '../schedulers/formulas';

/** Denoiser MSE on the first `count` test images at noise level σ (seeded noise, batches of 250). */
export function denoiserMse(net: UNet, data: MnistSet, sigma: number, count = data.count, seed = 0): number {
  const rng = new Rng(seed);
  let sum = 0;
  const n = Math.min(count, data.count);
  for (let s = 0; s < n; s += 250) {
    const B = Math.min(250, n - s);
    sum += tf.tidy(() => {
      const x = tf.tensor4d(data.images.subarray(s * 784, (s + B) * 784), [B, 28, 28, 1]);
      const z = addNoise(x, sigma, rng.normal(x.shape) as tf.Tensor4D); // Eq. B.2
      return tf.sum(tf.squaredDifference(net.apply({ x: z }, false), x)).dataSync()[0];
    });
  }
  return sum / (n * 784);
}

/** Digits [B,28,28,1] (clipped to [0,1]) → predicted class and its probability. */
export function judge(clf: Classifier, images: tf.Tensor4D): { pred: Int32Array; conf: Float32Array } {
  return tf.tidy(() => {
    const p = clf.probs(tf.clipByValue(images, 0, 1) as tf.Tensor4D);
    return { pred: p.argMax(1).dataSync() as Int32Array, conf: p.max(1).dataSync() as Float32Array };
  });
}

/** Per-digit accuracy of `perDigit` CFG samples of every digit (all digits in one batch). */
export function classSampleAccuracy(
  net: UNet,
  clf: Classifier,
  opts: { perDigit: number; guidance: number; seed: number; onStep?: (done: number, total: number) => void },
): { perDigit: number[]; overall: number; meanConfidence: number } {
  const labels = Array.from({ length: 10 * opts.perDigit }, (_, i) => i % 10);
  const res = sampleClass(net, labels, { seed: opts.seed, guidance: opts.guidance, onStep: opts.onStep });
  const { pred, conf } = judge(clf, res.images);
  res.images.dispose();
  const right = new Array(10).fill(0);
  labels.forEach((d, i) => {
    if (pred[i] === d) right[d]++;
  });
  const acc = right.map((r) => r / opts.perDigit);
  return { perDigit: acc, overall: acc.reduce((a, b) => a + b, 0) / 10, meanConfidence: conf.reduce((a, b) => a + b, 0) / labels.length };
}

/** Mean top-class confidence (and the histogram of predicted digits) of `count` time-model samples. */
export function timeSampleConfidence(
  net: UNet,
  clf: Classifier,
  opts: { count: number; seed: number },
): { meanConfidence: number; digitCounts: number[] } {
  const res = sampleTime(net, { count: opts.count, seed: opts.seed });
  const { pred, conf } = judge(clf, res.images);
  res.images.dispose();
  const counts = new Array(10).fill(0);
  pred.forEach((p) => counts[p]++);
  return { meanConfidence: conf.reduce((a, b) => a + b, 0) / opts.count, digitCounts: counts };
}
