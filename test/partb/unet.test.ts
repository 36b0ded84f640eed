/** Part B UNet: block shapes, the three UNets, injection points, errors, GELU and BatchNorm. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { Rng } from '../../lib/tensor/random';
import {
  ParamStore,
  UNet,
  batchNorm,
  concat,
  convBlock,
  convOp,
  downBlock,
  downConv,
  fcBlock,
  flatten,
  gelu,
  unflatten,
  upBlock,
  upConv,
} from '../../lib/models/unet';
import { mulberry32 } from '../helpers';
import { unetConfigOf } from '../../lib/models/unetWeights';
import { parseTrainConfig } from '../../lib/weights/headers';

const D = 4;

function rand(shape: number[], seed: number): tf.Tensor {
  const r = mulberry32(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => r() * 2 - 1),
    shape,
  );
}

test('every Figure 2 op has the shape of the spec table', async () => {
  await initEngine({ quiet: true });
  const s = new ParamStore(new Rng(1));
  tf.tidy(() => {
    const x = rand([2, 28, 28, 3], 1) as tf.Tensor4D;
    assert.deepEqual(convOp(s, 'a', x, 5).shape, [2, 28, 28, 5]);
    assert.deepEqual(downConv(s, 'b', x, 5).shape, [2, 14, 14, 5]);
    assert.deepEqual(upConv(s, 'c', x, 5).shape, [2, 56, 56, 5]);
    const x7 = rand([2, 7, 7, 6], 2) as tf.Tensor4D;
    assert.deepEqual(flatten(x7).shape, [2, 1, 1, 6]);
    assert.deepEqual(unflatten(s, 'd', flatten(x7), 6).shape, [2, 7, 7, 6]);
    assert.deepEqual(concat(x7, x7).shape, [2, 7, 7, 12]);
    assert.deepEqual(convBlock(s, 'e', x, 5).shape, [2, 28, 28, 5]);
    assert.deepEqual(downBlock(s, 'f', x, 5).shape, [2, 14, 14, 5]);
    assert.deepEqual(upBlock(s, 'g', x7, 5).shape, [2, 14, 14, 5]);
    assert.deepEqual(fcBlock(s, 'h', rand([2, 1], 3) as tf.Tensor2D, 8).shape, [2, 8]);
    assert.throws(() => flatten(x), /7×7/);
  });
  // FCBlock = Linear + GELU + Linear: 4 tensors; Conv = conv(w,b) + BN(w,b) + 2 running stats.
  assert.equal([...s.params.keys()].filter((k) => k.startsWith('h.')).length, 4);
  assert.deepEqual([...s.named().keys()].filter((k) => k.startsWith('a.')).sort(), [
    'a.bn.bias',
    'a.bn.running_mean',
    'a.bn.running_var',
    'a.bn.weight',
    'a.conv.bias',
    'a.conv.weight',
  ]);
  s.dispose();
});

test('Flatten is AvgPool(7) + GELU and Flatten→Unflatten matches PyTorch sizes', async () => {
  await initEngine({ quiet: true });
  const x = rand([1, 7, 7, 2], 4) as tf.Tensor4D;
  const xs = x.dataSync();
  const f = flatten(x).dataSync();
  for (let c = 0; c < 2; c++) {
    let m = 0;
    for (let i = 0; i < 49; i++) m += xs[i * 2 + c];
    m /= 49;
    const ref = 0.5 * m * (1 + erf64(m / Math.SQRT2));
    assert.ok(Math.abs(f[c] - ref) < 1e-6, `channel ${c}: ${f[c]} vs ${ref}`);
  }
  x.dispose();
});

/** float64 erf (Abramowitz–Stegun 7.1.26 is too coarse; use a series/continued fraction). */
function erf64(x: number): number {
  // Maclaurin series, accurate for |x| < 3 in float64.
  let sum = x;
  let term = x;
  for (let n = 1; n < 80; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

test('GELU is the exact erf form', async () => {
  await initEngine({ quiet: true });
  const xs = [-3, -1.5, -0.3, 0, 0.2, 1, 2.5];
  const y = tf.tidy(() => gelu(tf.tensor1d(xs)).dataSync());
  xs.forEach((x, i) => assert.ok(Math.abs(y[i] - 0.5 * x * (1 + erf64(x / Math.SQRT2))) < 2e-6, `gelu(${x})`));
});

test('BatchNorm: batch statistics in training (momentum 0.1, unbiased running var), running stats in eval', async () => {
  await initEngine({ quiet: true });
  const s = new ParamStore(new Rng(0));
  const data = [1, 2, 3, 6]; // one channel, 4 values: mean 3, biased var 3.5, unbiased 14/3
  const x = tf.tensor4d(data, [1, 2, 2, 1]);
  s.training = true;
  const y = tf.tidy(() => batchNorm(s, 'bn', x).dataSync());
  data.forEach((v, i) => assert.ok(Math.abs(y[i] - (v - 3) / Math.sqrt(3.5 + 1e-5)) < 1e-5));
  s.commitBatchNorm();
  assert.ok(Math.abs(s.buffers.get('bn.running_mean')!.dataSync()[0] - 0.3) < 1e-6);
  assert.ok(Math.abs(s.buffers.get('bn.running_var')!.dataSync()[0] - (0.9 + 0.1 * (14 / 3))) < 1e-6);
  s.training = false;
  const z = tf.tidy(() => batchNorm(s, 'bn', x).dataSync());
  const rv = 0.9 + 0.1 * (14 / 3);
  data.forEach((v, i) => assert.ok(Math.abs(z[i] - (v - 0.3) / Math.sqrt(rv + 1e-5)) < 1e-5));
  x.dispose();
  s.dispose();
});

test('the three UNets map [B,28,28,1] to [B,28,28,1] and have the spec layers', async () => {
  await initEngine({ quiet: true });
  for (const kind of ['denoiser', 'time', 'class'] as const) {
    const net = new UNet({ kind, D }, 3);
    const out = tf.tidy(
      () =>
        net.apply({
          x: rand([3, 28, 28, 1], 5) as tf.Tensor4D,
          t: kind === 'denoiser' ? undefined : (tf.fill([3, 1], 0.5) as tf.Tensor2D),
          c: kind === 'class' ? (tf.oneHot([1, 2, 3], 10).toFloat() as tf.Tensor2D) : undefined,
        }).shape,
    );
    assert.deepEqual(out, [3, 28, 28, 1]);
    const names = [...net.store.params.keys()];
    assert.equal(
      names.some((n) => n.startsWith('fc1_t.')),
      kind !== 'denoiser',
    );
    assert.equal(
      names.some((n) => n.startsWith('fc2_c.')),
      kind === 'class',
    );
    // unflatten is a ConvTranspose k7 with 2D→2D channels; the output conv is a plain conv D→1.
    assert.deepEqual(net.store.params.get('unflatten.conv.weight')!.shape, [7, 7, 2 * D, 2 * D]);
    assert.deepEqual(net.store.params.get('out.weight')!.shape, [3, 3, D, 1]);
    assert.equal(net.store.params.has('out.bn.weight'), false);
    net.dispose();
  }
});

test('changing t or c changes the output; the zero class vector is a valid (unconditional) input', async () => {
  await initEngine({ quiet: true });
  const net = new UNet({ kind: 'class', D }, 7);
  tf.tidy(() => {
    const x = rand([2, 28, 28, 1], 9) as tf.Tensor4D;
    const c = tf.oneHot([3, 3], 10).toFloat() as tf.Tensor2D;
    // Training-mode BatchNorm (batch statistics) so that the fresh network's small activations
    // are normalized; the queued running-stat updates are dropped.
    const run = (t: number, cc: tf.Tensor2D) => {
      const y = net.apply({ x, t: tf.fill([2, 1], t) as tf.Tensor2D, c: cc }, true);
      net.store.discardPending();
      return y;
    };
    const base = run(0.5, c);
    const dt = tf.max(tf.abs(tf.sub(base, run(0.9, c)))).dataSync()[0];
    const dc = tf.max(tf.abs(tf.sub(base, run(0.5, tf.oneHot([7, 7], 10).toFloat() as tf.Tensor2D)))).dataSync()[0];
    const zero = run(0.5, tf.zeros([2, 10]) as tf.Tensor2D);
    const dz = tf.max(tf.abs(tf.sub(base, zero))).dataSync()[0];
    assert.ok(dt > 1e-4, `t had no effect (${dt})`);
    assert.ok(dc > 1e-4, `c had no effect (${dc})`);
    assert.ok(dz > 1e-4 && tf.all(tf.isFinite(zero)).dataSync()[0] === 1);
    // Same inputs, same outputs (eval mode is deterministic).
    assert.equal(tf.max(tf.abs(tf.sub(base, run(0.5, c)))).dataSync()[0], 0);
  });
  net.dispose();
  const tnet = new UNet({ kind: 'time', D }, 7);
  tf.tidy(() => {
    const x = rand([1, 28, 28, 1], 9) as tf.Tensor4D;
    const a = tnet.apply({ x, t: tf.fill([1, 1], 0.1) as tf.Tensor2D });
    const b = tnet.apply({ x, t: tf.fill([1, 1], 0.7) as tf.Tensor2D });
    assert.ok(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] > 1e-5);
  });
  tnet.dispose();
});

test('wrong image, time or class shapes give one-line errors', async () => {
  await initEngine({ quiet: true });
  const net = new UNet({ kind: 'class', D: 2 });
  tf.tidy(() => {
    assert.throws(
      () =>
        net.apply({ x: tf.zeros([1, 32, 32, 1]) as tf.Tensor4D, t: tf.zeros([1, 1]) as tf.Tensor2D, c: tf.zeros([1, 10]) as tf.Tensor2D }),
      /\[B,28,28,1\].*got \[1,32,32,1\]/,
    );
    assert.throws(
      () =>
        net.apply({ x: tf.zeros([1, 28, 28, 3]) as tf.Tensor4D, t: tf.zeros([1, 1]) as tf.Tensor2D, c: tf.zeros([1, 10]) as tf.Tensor2D }),
      /grayscale/,
    );
    assert.throws(
      () => net.apply({ x: tf.zeros([2, 28, 28, 1]) as tf.Tensor4D, t: tf.zeros([2, 1]) as tf.Tensor2D }),
      /needs c of shape \[2,10\]/,
    );
    assert.throws(() => net.apply({ x: tf.zeros([2, 28, 28, 1]) as tf.Tensor4D, c: tf.zeros([2, 10]) as tf.Tensor2D }), /needs t of shape/);
  });
  assert.throws(() => new UNet({ kind: 'class', D: 0 }), /positive integer/);
  net.dispose();
});

test('time conditioning variants: multiplicative with t1 = t2 = 1 and additive with t1 = t2 = 0 are both the bare network; with real t they differ; the header carries the variant', async () => {
  await initEngine({ quiet: true });
  const add = new UNet({ kind: 'time', D: 4 }, 3);
  const mul = new UNet({ kind: 'time', D: 4, timeConditioning: 'multiplicative' }, 3);
  assert.equal(add.config.timeConditioning, 'additive');
  // Same seed, same parameters: the variant changes the forward pass only.
  for (const [name, v] of add.store.params)
    assert.deepEqual(Array.from(v.dataSync()), Array.from(mul.store.params.get(name)!.dataSync()), name);
  const x = tf.tensor4d(
    Float32Array.from({ length: 2 * 784 }, (_, i) => Math.sin(i)),
    [2, 28, 28, 1],
  );
  const t = tf.tensor2d([0.3, 0.8], [2, 1]);
  const out = (net: UNet) => tf.tidy(() => Array.from(net.apply({ x, t }, false).dataSync()));
  const withReal = [out(add), out(mul)];
  assert.ok(
    withReal[0].some((v, i) => Math.abs(v - withReal[1][i]) > 1e-4),
    'with a real t the variants differ',
  );
  // Make both time blocks constant: the last linear layer's weight 0 and bias c (t1 = t2 = c).
  const setTimeOutput = (net: UNet, c: number) => {
    for (const block of ['fc1_t', 'fc2_t']) {
      const w = net.store.params.get(`${block}.fc2.weight`)!;
      const b = net.store.params.get(`${block}.fc2.bias`)!;
      w.assign(tf.zerosLike(w));
      b.assign(tf.fill(b.shape, c));
    }
  };
  setTimeOutput(add, 0);
  setTimeOutput(mul, 1);
  const [a, m] = [out(add), out(mul)];
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - m[i]));
  // × 1 and + 0 are exact in float32: the same numbers.
  assert.ok(worst < 1e-7, `unflatten + 0, up1 + 0 against unflatten · 1, up1 · 1: max difference ${worst}`);
  // And multiplying by 3 is not adding 0: the injection points are live (a small effect at
  // initialization, where the skip connections dominate, but far above float32 rounding).
  setTimeOutput(mul, 3);
  const m3 = out(mul);
  const moved = Math.max(...m3.map((v, i) => Math.abs(v - a[i])));
  assert.ok(moved > 1e-5, `unflatten · 3, up1 · 3 moved the output by only ${moved}`);
  assert.deepEqual(unetConfigOf({ model: 'time', D: 4, timeConditioning: 'multiplicative' }), {
    kind: 'time',
    D: 4,
    timeConditioning: 'multiplicative',
  });
  assert.deepEqual(unetConfigOf({ model: 'time', D: 4 }), { kind: 'time', D: 4 });
  assert.throws(
    () => parseTrainConfig({ model: 'time', D: 4, T: 300, timeConditioning: 'sideways' }, 'x.weights'),
    /timeConditioning "sideways"/,
  );
  assert.throws(() => new UNet({ kind: 'time', D: 4, timeConditioning: 'sideways' as 'additive' }), /unknown time conditioning "sideways"/);
  tf.dispose([x, t]);
  add.dispose();
  mul.dispose();
});
