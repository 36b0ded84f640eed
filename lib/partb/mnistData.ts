/**
 * MNIST for Part B: the shared loader (lib/data/mnist.ts, which decodes each split once per
 * process). Images are Float32Array N·784 in [0,1] (x is not shifted to [-1,1], SPEC §2.3).
 */
import type { MnistData } from '../data/mnist';
export { loadMnist } from '../data/mnist';

/** The subset of MnistData that Part B training and evaluation need. */
export type MnistSet = Pick<MnistData, 'images' | 'labels' | 'count'>;
