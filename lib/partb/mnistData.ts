/**
 * MNIST for Part B: the shared loader (lib/data/mnist.ts), cached per process. Images are
 * Float32Array N·784 in [0,1] (x is not shifted to [-1,1], SPEC §2.3), labels Uint8Array.
 */
import { loadMnist as loadShared, type MnistData } from '../data/mnist';

/** The subset of MnistData that Part B training and evaluation need. */
export type MnistSet = Pick<MnistData, 'images' | 'labels' | 'count'>;

const cache = new Map<string, MnistData>();

/** Loads the 'train' (60k) or 'test' (10k) split once per process. */
export function loadMnist(split: 'train' | 'test'): MnistData {
  let s = cache.get(split);
  if (!s) {
    s = loadShared(split);
    cache.set(split, s);
  }
  return s;
}
