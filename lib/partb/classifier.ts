/**
 * A small MNIST digit classifier that judges generated digits (not part of the spec; a project
 * tool). Architecture: [Conv3×3(1→16) BN ReLU, MaxPool2] → [Conv3×3(16→32) BN ReLU, MaxPool2] →
 * Linear(1568→128) ReLU → Linear(128→10). Input [B,28,28,1] in [0,1]; output logits [B,10].
 * Trained with Adam 1e-3 (×0.5 per epoch), batch 128, seeded shuffle (see its manifest for epochs).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ParamStore, batchNorm, conv2d, linear } from './unet';
import { Rng } from '../tensor/random';
import { Adam } from './adam';
import { loadTensorFile, saveTensorFile, type StoredTensor } from './tensorFile';
import { assignTensors } from './train';
import type { MnistSet } from './mnistData';

export class Classifier {
  readonly store: ParamStore;
  constructor(seed = 0) {
    this.store = new ParamStore(new Rng(seed));
    tf.tidy(() => this.logits(tf.zeros([1, 28, 28, 1]) as tf.Tensor4D, false));
  }

  /** Logits [B,10] of images [B,28,28,1]. */
  logits(x: tf.Tensor4D, training = false): tf.Tensor2D {
    if (x.rank !== 4 || x.shape[1] !== 28 || x.shape[2] !== 28 || x.shape[3] !== 1) {
      throw new Error(`classifier expects images [B,28,28,1], got [${x.shape.join(',')}]`);
    }
    const s = this.store;
    s.training = training;
    return tf.tidy(() => {
      let h = tf.relu(batchNorm(s, 'c1.bn', conv2d(s, "c1.conv", x, 16, 3, 1, 1)));
      h = tf.maxPool(h, 2, 2, 'valid');
      h = tf.relu(batchNorm(s, 'c2.bn', conv2d(s, "c2.conv", h, 32, 3, 1, 1)));
      h = tf.maxPool(h, 2, 2, 'valid');
      const f = tf.relu(linear(s, 'fc1', h.reshape([x.shape[0], 7 * 7 * 32]) as tf.Tensor2D, 128));
      return linear(s, 'fc2', f, 10);
    });
  }

  /** Class probabilities [B,10] (eval mode). */
  probs(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => tf.softmax(this.logits(x, false)));
  }

  /** Accuracy on a data set, in batches. */
  accuracy(data: MnistSet, batch = 500): number {
    let right = 0;
    for (let s = 0; s < data.count; s += batch) {
      const B = Math.min(batch, data.count - s);
      const pred = tf.tidy(() => this.logits(tf.tensor4d(data.images.subarray(s * 784, (s + B) * 784), [B, 28, 28, 1])).argMax(1)).dataSync();
      for (let i = 0; i < B; i++) if (pred[i] === data.labels[s + i]) right++;
    }
    return right / data.count;
  }

  /** Trains with cross-entropy; onStep gets (step, totalSteps, loss). Returns the loss history. */
  train(
    data: MnistSet,
    opts: { epochs?: number; startEpoch?: number; batch?: number; lr?: number; seed?: number; onStep?: (i: number, n: number, loss: number) => void } = {},
  ): number[] {
    const epochs = opts.epochs ?? 3;
    const batch = opts.batch ?? 128;
    const rng = new Rng(opts.seed ?? 0);
    const adam = new Adam(this.store.params);
    const names = [...this.store.params.keys()];
    const vars = names.map((n) => this.store.params.get(n)!);
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
        const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, this.logits(x, true)) as tf.Scalar, vars);
        const loss = value.dataSync()[0];
        value.dispose();
        if (!Number.isFinite(loss)) throw new Error(`classifier loss became ${loss}; lower the learning rate`);
        const byName = new Map<string, tf.Tensor>();
        names.forEach((n, i) => byName.set(n, grads[vars[i].name]));
        adam.update(this.store.params, byName, lr);
        this.store.commitBatchNorm();
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

  save(file: string, meta: Record<string, unknown>): void {
    const t = new Map<string, StoredTensor>();
    for (const [n, v] of this.store.named()) t.set(n, { shape: v.shape, data: v.dataSync() as Float32Array });
    saveTensorFile(file, t, { kind: 'partb-classifier', ...meta });
  }

  static load(file: string): { net: Classifier; meta: any } {
    const { meta, tensors } = loadTensorFile(file);
    if (meta?.kind !== 'partb-classifier') throw new Error(`${file} is not a Part B classifier weights file`);
    const net = new Classifier();
    assignTensors(net.store.named(), tensors, '', file);
    return { net, meta };
  }

  dispose(): void {
    this.store.dispose();
  }
}
