/** Shared pieces of the benchmark scripts (bench.ts, ab.ts, profile.ts, batchsize.ts). */
import * as tf from '@tensorflow/tfjs-core';
import { Trainer } from '../lib/training/trainer';
import { presetConfig } from '../lib/training/presets';
import type { UNetKind } from '../lib/models/unet';
import { Rng } from '../lib/tensor/random';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A Part B UNet with a fixed random batch: one training step or one inference pass per call. */
export interface UNetBench {
  trainer: Trainer;
  /** images [B,28,28,1] */
  x: tf.Tensor4D;
  labels: number[];
  /** One full training step (noise draw, forward process, UNet, loss, backward, Adam; no EMA). */
  train(lr?: number): void;
  /** One eval-mode forward pass, read back. */
  infer(): void;
  dispose(): void;
}

/** Builds the benchmark network and batch, seeded; runs one training step to fill caches. */
export function unetBench(model: UNetKind, D: number, batch: number, seed = 0): UNetBench {
  const rng = new Rng(seed);
  // No EMA: the step PyTorch's side times (bench/torch_unet.py) is forward, loss, backward and Adam.
  const trainer = new Trainer(presetConfig(model, 'cpu', { D, batch, seed, emaDecay: 0 }));
  const x = tf.tidy(() => tf.randomUniform([batch, 28, 28, 1], 0, 1, 'float32', rng.nextSeed())) as tf.Tensor4D;
  const labels = Array.from({ length: batch }, () => rng.int(0, 9));
  const t = trainer.net.hasTimeInput ? (tf.fill([batch, 1], 0.5) as tf.Tensor2D) : undefined;
  const K = trainer.net.classCount;
  const c = K > 0 ? (tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), K).toFloat()) as tf.Tensor2D) : undefined;
  const bench: UNetBench = {
    trainer,
    x,
    labels,
    train: (lr?: number) => void trainer.trainStep(x, labels, lr),
    infer: () => tf.tidy(() => void trainer.net.apply({ x, t, c }, false).dataSync()),
    dispose: () => {
      tf.dispose([x, ...(t ? [t] : []), ...(c ? [c] : [])]);
      trainer.dispose();
    },
  };
  bench.train(); // the first step builds cached tensors (schedule tables)
  return bench;
}
