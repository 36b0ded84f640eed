/**
 * Quality numbers for the Part B models (reported, not asserted in tests):
 *  - denoiser: test-set MSE ‖D(x + σε) − x‖² (mean per pixel) at each σ;
 *  - DDPM samples (the class model's at γ = 5, judged against the digit asked for; the time model's): the Fréchet distance of the classifier's penultimate features to the MNIST test set,
 *    calibrated by real training digits at the same n, the confident share and the background level.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../tensor/random';
import type { UNet } from '../models/unet';
import type { Classifier } from '../models/classifier';
import type { MnistSet } from '../data/mnist';
import { addNoise } from '../schedulers/formulas';
import { featureStats, frechetDistance, type FeatureStats } from './frechet';
import type { DDPMSchedulerConfig } from '../schedulers/ddpm';

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

/** The mean image of a set: [1,28,28,1] as 784 values. */
export function meanImage(data: MnistSet): Float32Array {
  const m = new Float64Array(784);
  for (let i = 0; i < data.count; i++) for (let p = 0; p < 784; p++) m[p] += data.images[i * 784 + p];
  return Float32Array.from(m, (v) => v / data.count);
}

/** How close a pure-noise denoiser's outputs come to the mean training digit (SPEC-flow Part B §1.2.3). */
export interface MeanImageReport {
  /** Per-pixel MSE between its outputs for n noise draws and the mean training image. */
  mseToMean: number;
  /** Per-pixel variance of its outputs across the n draws (0 = one image whatever the noise). */
  outputSpread: number;
  /** Per-pixel MSE of the mean training image to n test digits: the best any constant output does. */
  meanToTest: number;
  /** Per-pixel MSE of its outputs to n test digits (paired). */
  outputToTest: number;
}

/**
 * Feeds n seeded noise draws to a denoiser and compares its outputs with the mean training image;
 * the MSE-optimal output of a network that sees only noise is that mean.
 */
export function meanImageReport(net: UNet, train: MnistSet, test: MnistSet, n: number, seed = 0): MeanImageReport {
  const mean = meanImage(train);
  const rng = new Rng(seed);
  const m = Math.min(n, test.count);
  let toMean = 0;
  let toTest = 0;
  let meanTest = 0;
  const sum = new Float64Array(784);
  const sumSq = new Float64Array(784);
  for (let s = 0; s < m; s += 250) {
    const B = Math.min(250, m - s);
    const y = tf.tidy(() => net.apply({ x: rng.normal([B, 28, 28, 1]) as tf.Tensor4D }, false).dataSync());
    for (let b = 0; b < B; b++)
      for (let p = 0; p < 784; p++) {
        const v = y[b * 784 + p];
        const t = test.images[(s + b) * 784 + p];
        toMean += (v - mean[p]) ** 2;
        toTest += (v - t) ** 2;
        meanTest += (mean[p] - t) ** 2;
        sum[p] += v;
        sumSq[p] += v * v;
      }
  }
  let spread = 0;
  for (let p = 0; p < 784; p++) spread += sumSq[p] / m - (sum[p] / m) ** 2;
  const px = m * 784;
  return { mseToMean: toMean / px, outputSpread: spread / 784, meanToTest: meanTest / px, outputToTest: toTest / px };
}

/** Digits [B,28,28,1] (clipped to [0,1]) → predicted class and its probability. */
export function judge(clf: Classifier, images: tf.Tensor4D): { pred: Int32Array; conf: Float32Array } {
  return tf.tidy(() => {
    const p = clf.probs(tf.clipByValue(images, 0, 1) as tf.Tensor4D);
    return { pred: p.argMax(1).dataSync() as Int32Array, conf: p.max(1).dataSync() as Float32Array };
  });
}

/** Classifier features [n·128] of images (n·784 values in [0,1], or a tensor [n,28,28,1], clipped to [0,1]), in batches. */
export function classifierFeatures(clf: Classifier, images: Float32Array | tf.Tensor4D, batch = 500): Float32Array {
  const n = images instanceof Float32Array ? images.length / 784 : images.shape[0];
  if (!Number.isInteger(n)) throw new Error(`classifierFeatures: ${(images as Float32Array).length} values are not whole 28×28 images`);
  const out = new Float32Array(n * 128);
  for (let s = 0; s < n; s += batch) {
    const B = Math.min(batch, n - s);
    const f = tf.tidy(() => {
      const x =
        images instanceof Float32Array
          ? tf.tensor4d(images.subarray(s * 784, (s + B) * 784), [B, 28, 28, 1])
          : images.slice([s, 0, 0, 0], [B, 28, 28, 1]);
      return clf.features(tf.clipByValue(x, 0, 1) as tf.Tensor4D);
    });
    out.set(f.dataSync(), s * 128);
    f.dispose();
  }
  return out;
}

/**
 * The reference a set of samples is judged against: the MNIST test split's feature statistics, the
 * background mask (pixels where real digits are blank) and the real digits' own numbers at the
 * same n (the calibration: FD has a bias that shrinks with n, so samples are compared with real
 * training digits drawn at the same n).
 */
export interface QualityReference {
  test: FeatureStats;
  /** 784 flags: pixels with ink (> 0.1) in fewer than 1% of training digits. */
  blank: Uint8Array;
  /**
   * Real training digits at this n, averaged over `draws` disjoint random sets: FD to the test set
   * (with the smallest and largest single-draw FD), background level, confident share.
   */
  real: { n: number; draws: number; fd: number; fdMin: number; fdMax: number; background: number; confidentShare: number };
}

/** Background level: mean displayed pixel value (clipped to [0,1]) over the blank pixels. images: n·784. */
export function backgroundLevel(images: Float32Array, blank: Uint8Array): number {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < images.length; i++) {
    if (!blank[i % 784]) continue;
    sum += Math.min(1, Math.max(0, images[i]));
    count++;
  }
  return sum / count;
}

/** The pixels where real digits are blank: ink (> 0.1) in fewer than 1% of the training digits. */
export function blankMask(train: MnistSet): Uint8Array {
  const ink = new Float64Array(784);
  for (let i = 0; i < train.images.length; i++) if (train.images[i] > 0.1) ink[i % 784]++;
  return Uint8Array.from(ink, (c) => (c < 0.01 * train.count ? 1 : 0));
}

/**
 * Builds the reference: test-set statistics, blank mask, and `draws` disjoint seeded sets of n training
 * digits judged like samples. One draw is a noisy yardstick (at n = 500 single draws' FD spans about
 * 6 to 12), so the calibration is their mean, with the spread kept beside it.
 */
export function qualityReference(clf: Classifier, train: MnistSet, test: MnistSet, n: number, seed = 0, draws = 8): QualityReference {
  if (!(Number.isInteger(draws) && draws >= 1)) throw new Error(`qualityReference: draws must be a positive integer, got ${draws}`);
  if (n * draws > train.count)
    throw new Error(
      `qualityReference: ${draws} disjoint draws of ${n} digits need ${n * draws} training images, the set has ${train.count}`,
    );
  const testStats = featureStats(classifierFeatures(clf, test.images), test.count, 128);
  const blank = blankMask(train);
  const idx = new Int32Array(train.count);
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  new Rng(seed).shuffle(idx);
  const placeholder: QualityReference = {
    test: testStats,
    blank,
    real: { n, draws, fd: NaN, fdMin: NaN, fdMax: NaN, background: NaN, confidentShare: NaN },
  };
  const fds: number[] = [];
  let background = 0;
  let confidentShare = 0;
  for (let d = 0; d < draws; d++) {
    const real = new Float32Array(n * 784);
    for (let i = 0; i < n; i++) {
      const k = idx[d * n + i];
      real.set(train.images.subarray(k * 784, (k + 1) * 784), i * 784);
    }
    const j = judgeImages(clf, real, placeholder);
    fds.push(j.fd);
    background += j.background / draws;
    confidentShare += j.confidentShare / draws;
  }
  const fd = fds.reduce((a, b) => a + b, 0) / draws;
  return { test: testStats, blank, real: { n, draws, fd, fdMin: Math.min(...fds), fdMax: Math.max(...fds), background, confidentShare } };
}

/** What the judge says about a set of images. */
export interface SampleJudgement {
  n: number;
  /** Fréchet distance of the images' features to the test set's. */
  fd: number;
  /** fd / the real digits' fd at the same n (1 = as good as real digits). */
  fdRatio: number;
  /** Share of images whose top class has probability ≥ 0.9. */
  confidentShare: number;
  meanConfidence: number;
  /** Share of images predicted as each digit. */
  digitShares: number[];
  /** Predicted digit of each image. */
  pred: Int32Array;
  background: number;
  /** background / the real digits' background. */
  backgroundRatio: number;
}

/** Judges n images (n·784 values, or a tensor [n,28,28,1]) against the reference. */
export function judgeImages(clf: Classifier, images: Float32Array | tf.Tensor4D, ref: QualityReference): SampleJudgement {
  const flat = images instanceof Float32Array ? images : (images.dataSync() as Float32Array);
  const n = flat.length / 784;
  const fd = frechetDistance(featureStats(classifierFeatures(clf, flat), n, 128), ref.test);
  const pred = new Int32Array(n);
  const conf = new Float32Array(n);
  for (let s = 0; s < n; s += 500) {
    const B = Math.min(500, n - s);
    const x = tf.tensor4d(flat.subarray(s * 784, (s + B) * 784), [B, 28, 28, 1]);
    const j = judge(clf, x);
    x.dispose();
    pred.set(j.pred, s);
    conf.set(j.conf, s);
  }
  const shares = new Array<number>(10).fill(0);
  for (const p of pred) shares[p] += 1 / n;
  const background = backgroundLevel(flat, ref.blank);
  return {
    n,
    fd,
    fdRatio: fd / ref.real.fd,
    confidentShare: conf.filter((c) => c >= 0.9).length / n,
    meanConfidence: conf.reduce((a, b) => a + b, 0) / n,
    digitShares: shares,
    pred,
    background,
    backgroundRatio: background / ref.real.background,
  };
}

/** One line of the quality table (also what the manifests store). */
export interface QualityRow {
  label: string;
  n: number;
  fd: number;
  /** The real digits' FD at the same n: the mean over the reference's draws, and their range. */
  fdReal: number;
  fdRealRange?: [number, number];
  fdRatio: number;
  confidentShare: number;
  meanConfidence: number;
  /** Share of samples predicted as each digit, and the smallest of them. */
  digitShares: number[];
  minDigitShare: number;
  /** Class model: share judged as the digit asked for, overall and per digit. */
  accuracy?: number;
  perDigitAccuracy?: number[];
  minDigitAccuracy?: number;
  background: number;
  backgroundReal: number;
  backgroundRatio: number;
}

/** The table row of a judgement; `labels` (the digit asked for, per sample) for a class model. */
export function qualityRow(label: string, j: SampleJudgement, ref: QualityReference, labels?: ArrayLike<number>): QualityRow {
  const row: QualityRow = {
    label,
    n: j.n,
    fd: j.fd,
    fdReal: ref.real.fd,
    fdRealRange: [ref.real.fdMin, ref.real.fdMax],
    fdRatio: j.fdRatio,
    confidentShare: j.confidentShare,
    meanConfidence: j.meanConfidence,
    digitShares: j.digitShares,
    minDigitShare: Math.min(...j.digitShares),
    background: j.background,
    backgroundReal: ref.real.background,
    backgroundRatio: j.backgroundRatio,
  };
  if (labels) {
    const right = new Array<number>(10).fill(0);
    const asked = new Array<number>(10).fill(0);
    for (let i = 0; i < labels.length; i++) {
      asked[labels[i]]++;
      if (j.pred[i] === labels[i]) right[labels[i]]++;
    }
    row.perDigitAccuracy = right.map((r, d) => (asked[d] ? r / asked[d] : NaN));
    row.accuracy = right.reduce((a, b) => a + b, 0) / labels.length;
    row.minDigitAccuracy = Math.min(...row.perDigitAccuracy.filter((x) => !Number.isNaN(x)));
  }
  return row;
}

const pct = (x: number) => `${(100 * x).toPrecision(3)}%`;
const sig3 = (x: number) => (Number.isFinite(x) ? x.toPrecision(3) : String(x));

/**
 * The quality table's cells, numbers to 3 significant figures (lib/display's formatTable and
 * showTable render them): FD of the samples and of as many real digits (mean of the reference's
 * draws, with their range), their ratio (1 = as good as real digits on average), the confident share, the rarest digit's share, class accuracy (worst digit),
 * and the background level with its ratio to real digits'.
 */
export function qualityTableCells(rows: QualityRow[]): { columns: string[]; rows: string[][] } {
  return {
    columns: [
      'model',
      'n',
      'FD',
      'FD of real digits (range)',
      'FD ratio',
      'conf ≥ 0.9',
      'rarest digit',
      'accuracy (worst digit)',
      'background (× real)',
    ],
    rows: rows.map((r) => [
      r.label,
      String(r.n),
      sig3(r.fd),
      r.fdRealRange ? `${sig3(r.fdReal)} (${sig3(r.fdRealRange[0])}–${sig3(r.fdRealRange[1])})` : sig3(r.fdReal),
      sig3(r.fdRatio),
      pct(r.confidentShare),
      pct(r.minDigitShare),
      r.accuracy === undefined ? '—' : `${pct(r.accuracy)} (${pct(r.minDigitAccuracy!)})`,
      `${r.background.toPrecision(3)} (${sig3(r.backgroundRatio)}×)`,
    ]),
  };
}

/** A scheduler config in words, for tables and manifests. */
export function describeSampler(c: DDPMSchedulerConfig): string {
  const v = c.varianceType === 'fixed_large' ? 'σ² = β_t' : c.varianceType === 'fixed_small' ? 'σ² = β̃_t (posterior)' : 'learned σ²';
  const clip =
    c.clipSample === false
      ? 'x̂₀ unclipped'
      : `x̂₀ clipped to [${typeof c.clipSample === 'number' ? [-c.clipSample, c.clipSample] : c.clipSample}]`;
  return `${v}, ${clip}`;
}
