/**
 * The IDX reader on tiny hand-made files (good, gzipped, bad magic, truncated, mismatched counts)
 * and on the real MNIST files.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { loadIdxPair, loadMnist, mnistBatch, mnistDir, parseIdx } from '../../lib/data/mnist';
import { peakRssInChild, zerosGzipped } from '../helpers';

/** An IDX file of uint8: magic (type 0x08, ndims), big-endian dims, data. */
function idx(magic: number, dims: number[], data: number[]): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data)]);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mnist-test-'));
const N = 3, R = 2, C = 2;
const pixels = Array.from({ length: N * R * C }, (_, i) => (i * 20) % 256);
const labels = [7, 0, 9];
function write(name: string, buf: Buffer): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, buf);
  return p;
}
const goodImages = write('img', idx(2051, [N, R, C], pixels));
const goodLabels = write('lab', idx(2049, [N], labels));

test('reads a tiny IDX pair exactly (pixels / 255, labels, dims)', () => {
  const ds = loadIdxPair(goodImages, goodLabels);
  assert.equal(ds.count, N);
  assert.equal(ds.rows, R);
  assert.equal(ds.cols, C);
  assert.deepEqual(Array.from(ds.labels), labels);
  pixels.forEach((p, i) => assert.ok(Math.abs(ds.images[i] - p / 255) < 1e-7));
});

test('reads gzipped IDX files the same', () => {
  const gi = write('img.gz', zlib.gzipSync(idx(2051, [N, R, C], pixels)));
  const gl = write('lab.gz', zlib.gzipSync(idx(2049, [N], labels)));
  const a = loadIdxPair(gi, gl);
  const b = loadIdxPair(goodImages, goodLabels);
  assert.deepEqual(Array.from(a.images), Array.from(b.images));
  assert.deepEqual(Array.from(a.labels), Array.from(b.labels));
});

test('wrong magic number: clear one-line error', () => {
  assert.throws(() => loadIdxPair(goodLabels, goodLabels), (e: Error) => /magic number 2049.*expected 2051/.test(e.message) && !e.message.includes('\n'));
  assert.throws(() => parseIdx(Buffer.from([1, 2, 3, 4, 0, 0, 0, 0]), 2049, 'x'), /magic number/);
});

test('truncated files: clear one-line error', () => {
  const full = idx(2051, [N, R, C], pixels);
  const cut = write('cut', full.subarray(0, full.length - 1));
  assert.throws(() => loadIdxPair(cut, goodLabels), (e: Error) => /truncated/.test(e.message) && !e.message.includes('\n'));
  const hdr = write('hdr', full.subarray(0, 6));
  assert.throws(() => loadIdxPair(hdr, goodLabels), /truncated: header/);
  const tiny = write('tiny', Buffer.from([0, 0]));
  assert.throws(() => loadIdxPair(tiny, goodLabels), /truncated/);
});

test('image/label count mismatch: clear one-line error', () => {
  const twoLabels = write('lab2', idx(2049, [2], [1, 2]));
  assert.throws(() => loadIdxPair(goodImages, twoLabels), (e: Error) => /3 images but .* 2 labels/.test(e.message) && !e.message.includes('\n'));
});

test('data/mnist via MNIST_DIR is used, and an incomplete folder is refused', () => {
  const dir = path.join(tmp, 'mnist');
  fs.mkdirSync(dir);
  // loadMnist reads MNIST's 28×28 images only.
  const px28 = Array.from({ length: N * 784 }, (_, i) => (i * 7) % 256);
  write('mnist/train-images-idx3-ubyte.gz', zlib.gzipSync(idx(2051, [N, 28, 28], px28)));
  write('mnist/train-labels-idx1-ubyte', idx(2049, [N], labels));
  const old = process.env.MNIST_DIR;
  process.env.MNIST_DIR = dir;
  try {
    assert.throws(() => mnistDir(), /lacks some of the four IDX files/);
    write('mnist/t10k-images-idx3-ubyte', idx(2051, [1, 28, 28], px28.slice(0, 784)));
    write('mnist/t10k-labels-idx1-ubyte.gz', zlib.gzipSync(idx(2049, [1], [4])));
    assert.equal(mnistDir(), dir);
    const tr = loadMnist('train');
    assert.equal(tr.count, N);
    assert.deepEqual([tr.rows, tr.cols], [28, 28]);
    assert.deepEqual(Array.from(tr.labels), labels);
    assert.deepEqual(Array.from(loadMnist('test').labels), [4]);
  } finally {
    if (old === undefined) delete process.env.MNIST_DIR;
    else process.env.MNIST_DIR = old;
  }
});

test('a gzip bomb fails early, at the size its IDX header announces (bounded memory)', () => {
  // A valid header for 3×2×2 pixels, then 64 MB of zeros: about 64 kB gzipped.
  const bomb = write('bomb.gz', zlib.gzipSync(Buffer.concat([idx(2051, [N, R, C], pixels), Buffer.alloc(64 * 2 ** 20)]), { level: 9 }));
  assert.ok(fs.statSync(bomb).size < 200_000);
  const t0 = Date.now();
  assert.throws(
    () => loadIdxPair(bomb, goodLabels),
    (e: Error) => /bomb\.gz inflates to more than the 28 bytes its IDX header announces/.test(e.message) && !e.message.includes('\n'),
  );
  assert.ok(Date.now() - t0 < 2000, 'stopped early, not after inflating 64 MB');
  // A header that announces more than any MNIST file: refused before allocating it.
  const huge = write('huge.gz', zlib.gzipSync(idx(2051, [2 ** 22, 28, 28], [1, 2, 3])));
  assert.throws(() => loadIdxPair(huge, goodLabels), /huge\.gz: its IDX header announces 3288334352 bytes, more than the limit of \d+/);
  // A damaged gzip stream is still named as such.
  const gz = zlib.gzipSync(idx(2051, [N, R, C], pixels));
  const cut = write('cut.gz', gz.subarray(0, gz.length - 12));
  assert.throws(() => loadIdxPair(cut, goodLabels), /(damaged gzip file|truncated)/);
});

test('gzip bombs, child process: reading stops at the IDX header\'s size (1 GiB bombs in 1 MB files; peak RSS ~110 and ~197 MB, bound 300 MB)', () => {
  // Without the bound a 23 MB gzip that inflates to 5 GiB took 4.4 GB. Node + the module alone is
  // ~55 MB; inflating adds up to ~55 MB of chunks (16 KB of input a push, ~16 MiB out of these bombs).
  const BOUND_MB = 300;
  const mnistJs = require.resolve('../../lib/data/mnist');
  const zeros = Buffer.alloc(1 << 20);
  assert.deepEqual(zlib.gunzipSync(zerosGzipped(2, Buffer.from([1, 2, 3]))), Buffer.concat([Buffer.from([1, 2, 3]), zeros, zeros]));
  const cases = [
    // A header for 3×2×2 pixels (28 bytes in all): peak measured ~110 MB.
    { name: 'bomb-tiny.gz', head: idx(2051, [N, R, C], pixels), want: 4 + 12 + N * R * C },
    // MNIST's own header, 60000×28×28 (47 MB): that much is allocated, not more; peak measured ~197 MB.
    { name: 'bomb-mnist.gz', head: idx(2051, [60000, 28, 28], []), want: 16 + 60000 * 784 },
  ];
  for (const c of cases) {
    const file = write(c.name, zerosGzipped(1024, c.head));
    assert.ok(fs.statSync(file).size < 1.5e6);
    const r = peakRssInChild(mnistJs, `m.loadIdxPair(${JSON.stringify(file)}, ${JSON.stringify(goodLabels)}); return null;`, { dir: tmp });
    const rss = `peak RSS ${r.maxRssMB.toFixed(0)} MB (node + module ${r.baseMB.toFixed(0)} MB)`;
    assert.equal(
      r.error ?? `(no error; ${rss})`,
      `MNIST file ${file} inflates to more than the ${c.want} bytes its IDX header announces; not a good MNIST file (replace it).`,
    );
    assert.ok(r.maxRssMB < BOUND_MB, `${c.name}: ${rss}, bound ${BOUND_MB} MB`);
  }
});

test('loadMnist refuses IDX images that are not 28×28, even with 784 pixels (14×56)', () => {
  const dir = path.join(tmp, 'mnist-14x56');
  fs.mkdirSync(dir);
  const px = Array.from({ length: 2 * 784 }, (_, i) => i % 256);
  for (const s of ['train', 't10k']) {
    write(`mnist-14x56/${s}-images-idx3-ubyte`, idx(2051, [2, 14, 56], px));
    write(`mnist-14x56/${s}-labels-idx1-ubyte`, idx(2049, [2], [1, 2]));
  }
  const old = process.env.MNIST_DIR;
  process.env.MNIST_DIR = dir;
  try {
    assert.throws(
      () => loadMnist('train'),
      (e: Error) =>
        /train-images-idx3-ubyte holds 14×56 images, expected 28×28; it is not MNIST/.test(e.message) && !e.message.includes('\n'),
    );
  } finally {
    if (old === undefined) delete process.env.MNIST_DIR;
    else process.env.MNIST_DIR = old;
  }
});

test('real MNIST: 60000 train / 10000 test, 28x28, sane label histograms', () => {
  const tr = loadMnist('train');
  const te = loadMnist('test');
  assert.equal(tr.count, 60000);
  assert.equal(te.count, 10000);
  assert.equal(tr.rows, 28);
  assert.equal(tr.cols, 28);
  assert.equal(tr.images.length, 60000 * 784);
  // Known class counts of the official files (digit 1 is the most frequent, 5 the rarest).
  const hist = (l: Uint8Array) => l.reduce((h, v) => (h[v]++, h), new Array(10).fill(0));
  assert.deepEqual(hist(tr.labels), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
  assert.deepEqual(hist(te.labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
  // The first test digit is a 7; pixel values in [0,1] with a black background.
  assert.equal(te.labels[0], 7);
  let mn = Infinity, mx = -Infinity, sum = 0;
  for (const v of te.images) { mn = Math.min(mn, v); mx = Math.max(mx, v); sum += v; }
  assert.equal(mn, 0);
  assert.equal(mx, 1);
  const mean = sum / te.images.length;
  assert.ok(mean > 0.1 && mean < 0.15, `mean pixel ${mean}`);
  assert.equal(loadMnist('train'), tr, 'second load comes from the cache');
  assert.equal(loadMnist('test', { limit: 5 }).count, 5);
});

test('mnistBatch: shapes, dtype, values match the arrays; no leaked tensors', async () => {
  await initEngine({ engine: 'cpu', quiet: true });
  const te = loadMnist('test');
  const before = tf.memory().numTensors;
  const { x, y } = mnistBatch(te, [3, 0, 9999]);
  assert.deepEqual(x.shape, [3, 28, 28, 1]);
  assert.equal(y.dtype, 'int32');
  assert.deepEqual(Array.from(await y.data()), [te.labels[3], 7, te.labels[9999]]);
  const xv = await x.data();
  for (let i = 0; i < 784; i++) assert.equal(xv[784 + i], te.images[i]);
  x.dispose();
  y.dispose();
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => mnistBatch(te, [10000]), /out of range/);
});
