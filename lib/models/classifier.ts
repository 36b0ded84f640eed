/**
 * A small MNIST digit classifier that judges generated digits (not part of the spec; a project
 * tool). Architecture: [Conv3×3(1→16) BN ReLU, MaxPool2] → [Conv3×3(16→32) BN ReLU, MaxPool2] →
 * Linear(1568→128) ReLU → Linear(128→10). Input [B,28,28,1] in [0,1]; output logits [B,10].
 * Trained by lib/training/classifier.ts (Adam 1e-3 ×0.5 per epoch, batch 128, seeded shuffle; see its manifest for epochs).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ParamStore, batchNorm, conv2d, linear } from './unet';
import { Rng } from '../tensor/random';
import { loadTensorFile, saveTensorFile, type StoredTensor } from '../weights/tensorFile';
import { assignTensors } from './unetWeights';
import { parseClassifierHeader, type ClassifierHeader } from '../weights/headers';
import type { MnistSet } from '../data/mnist';

export class Classifier {
  readonly store: ParamStore;
  constructor(seed = 0) {
    this.store = new ParamStore(new Rng(seed));
    tf.tidy(() => this.logits(tf.zeros([1, 28, 28, 1]) as tf.Tensor4D, false));
  }

  /** Logits [B,10] of images [B,28,28,1]. */
  logits(x: tf.Tensor4D, training = false): tf.Tensor2D {
    return tf.tidy(() => linear(this.store, 'fc2', this.features(x, training), 10));
  }

  /**
   * The penultimate layer [B,128] (after fc1's ReLU) of images [B,28,28,1]: the features the
   * Fréchet distance judge (lib/evaluation/frechet.ts) compares, as FID uses Inception's pool layer.
   */
  features(x: tf.Tensor4D, training = false): tf.Tensor2D {
    if (x.rank !== 4 || x.shape[1] !== 28 || x.shape[2] !== 28 || x.shape[3] !== 1) {
      throw new Error(`classifier expects images [B,28,28,1], got [${x.shape.join(',')}]`);
    }
    const s = this.store;
    s.training = training;
    return tf.tidy(() => {
      let h = tf.relu(batchNorm(s, 'c1.bn', conv2d(s, 'c1.conv', x, 16, 3, 1, 1)));
      h = tf.maxPool(h, 2, 2, 'valid');
      h = tf.relu(batchNorm(s, 'c2.bn', conv2d(s, 'c2.conv', h, 32, 3, 1, 1)));
      h = tf.maxPool(h, 2, 2, 'valid');
      return tf.relu(linear(s, 'fc1', h.reshape([x.shape[0], 7 * 7 * 32]) as tf.Tensor2D, 128));
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

  save(file: string, meta: Record<string, unknown>): void {
    const t = new Map<string, StoredTensor>();
    for (const [n, v] of this.store.named()) t.set(n, { shape: v.shape, data: v.dataSync() as Float32Array });
    saveTensorFile(file, t, { kind: 'partb-classifier', ...meta });
  }

  static load(file: string): { net: Classifier; meta: ClassifierHeader } {
    const { meta: raw, tensors } = loadTensorFile(file);
    const meta = parseClassifierHeader(raw, file);
    const net = new Classifier();
    assignTensors(net.store.named(), tensors, '', file);
    return { net, meta };
  }

  dispose(): void {
    this.store.dispose();
  }
}
