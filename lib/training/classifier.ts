/**
 * Training of the judge classifier (lib/models/classifier.ts): cross-entropy, Adam 1e-3 halved
 * every epoch, batch 128, a seeded shuffle per epoch.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../tensor/random';
import type { MnistSet } from '../data/mnist';
import type { Classifier } from '../models/classifier';
import { Adam } from './adam';

/** Trains `net` in place; onStep gets (step, totalSteps, loss). Returns the loss history. */
export function trainClassifier(
  net: Classifier,
  data: MnistSet,
  opts: {
    epochs?: number;
    startEpoch?: number;
    batch?: number;
    lr?: number;
    seed?: number;
    onStep?: (i: number, n: number, loss: number) => void;
  } = {},
): number[] {
  const epochs = opts.epochs ?? 3;
  const batch = opts.batch ?? 128;
  const rng = new Rng(opts.seed ?? 0);
  const adam = new Adam(net.store.params);
  const names = [...net.store.params.keys()];
  const vars = names.map((n) => net.store.params.get(n)!);
  const losses: number[] = [];
  const spe = Math.ceil(data.count / batch);
  for (let e = 0; e < epochs; e++) {
    const perm = rng.shuffle(Int32Array.from({ length: data.count }, (_, i) => i)) as Int32Array;
    // Continuing from saved weights: replay the earlier epochs' shuffles only (fresh Adam state).
    if (e < (opts.startEpoch ?? 0)) continue;
    const lr = (opts.lr ?? 1e-3) * 0.5 ** e;
    for (let s = 0; s < spe; s++) {
      const B = Math.min(batch, data.count - s * batch);
      const buf = new Float32Array(B * 784);
      const oh = new Float32Array(B * 10);
      for (let i = 0; i < B; i++) {
        const j = perm[s * batch + i];
        buf.set(data.images.subarray(j * 784, (j + 1) * 784), i * 784);
        oh[i * 10 + data.labels[j]] = 1;
      }
      const x = tf.tensor4d(buf, [B, 28, 28, 1]);
      const y = tf.tensor2d(oh, [B, 10]);
      const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, net.logits(x, true)) as tf.Scalar, vars);
      const loss = value.dataSync()[0];
      value.dispose();
      if (!Number.isFinite(loss)) throw new Error(`classifier loss became ${loss}; lower the learning rate`);
      const byName = new Map<string, tf.Tensor>();
      names.forEach((n, i) => byName.set(n, grads[vars[i].name]));
      adam.update(net.store.params, byName, lr);
      net.store.commitBatchNorm();
      for (const g of byName.values()) g.dispose();
      x.dispose();
      y.dispose();
      losses.push(loss);
      opts.onStep?.((e - (opts.startEpoch ?? 0)) * spe + s + 1, (epochs - (opts.startEpoch ?? 0)) * spe, loss);
    }
  }
  adam.dispose();
  return losses;
}
