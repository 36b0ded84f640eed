/**
 * The addon's element-wise Add/Sub/Multiply and its channel sums (lib/engine/kernels/binary.ts,
 * reduce.ts), on the wasm engine with the addon loaded: every broadcast layout they take gives
 * the same floats as the stock kernels (one IEEE operation per element), both argument orders;
 * the channel sums match a float64 sum to float32 rounding; layouts they do not take (a
 * middle-axis broadcast, int32) still give the stock results; tensor counts stay flat.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, withLevers } from '../../lib/engine';
import { nativeStatus } from '../../lib/engine/native';
import { binaryLayout } from '../../lib/engine/kernels/binary';
import { mulberry32 } from '../helpers';

function skipReason(): string | false {
  if (process.env.DIFFUSION_ENGINE && process.env.DIFFUSION_ENGINE !== 'wasm') return 'wasm engine only';
  const s = nativeStatus();
  return s.addon ? false : `the oneDNN addon is not loaded (${s.why})`;
}

function random(shape: number[], seed: number): tf.Tensor {
  const r = mulberry32(seed);
  return tf.tensor(
    Float32Array.from({ length: shape.reduce((p, q) => p * q, 1) }, () => 4 * r() - 2),
    shape,
  );
}

test('binaryLayout: the layouts the addon takes, and null for the rest', () => {
  assert.deepEqual(binaryLayout([8, 4, 4, 32], [32])?.kinds, [0, 2]);
  assert.deepEqual(binaryLayout([8, 1, 1, 32], [8, 4, 4, 32])?.kinds, [1, 0]);
  assert.deepEqual(binaryLayout([8, 4, 4, 32], [1])?.kinds, [0, 3]);
  assert.deepEqual(binaryLayout([8, 4, 4, 32], [8, 4, 4, 32])?.kinds, [0, 0]);
  const l = binaryLayout([8, 4, 5, 32], [1, 1, 1, 32]);
  assert.deepEqual([l?.outer, l?.inner, l?.c], [8, 20, 32]);
  assert.equal(binaryLayout([8, 4, 4, 32], [4, 1, 32]), null, 'a middle-axis broadcast');
  assert.equal(binaryLayout([8, 4, 1, 32], [8, 1, 4, 32]), null, 'both operands broadcast');
});

test('native Add/Sub/Multiply and channel sums give the stock kernels’ results', { skip: skipReason() }, async () => {
  await initEngine({ engine: 'wasm' });
  const before = tf.memory().numTensors;
  // Count the addon's calls, so that a silent fallback to the stock kernels fails the test.
  const addon = nativeStatus().addon!;
  const calls = { binary: 0, channelSum: 0 };
  const { binary, channelSum } = addon;
  addon.binary = (...args) => (calls.binary++, binary(...args));
  addon.channelSum = (...args) => (calls.channelSum++, channelSum(...args));
  const big = [16, 14, 14, 32];
  const cases: Array<[number[], number[]]> = [
    [big, big],
    [big, [32]],
    [big, [1, 1, 1, 32]],
    [big, [16, 1, 1, 32]],
    [big, []],
    [[16, 1, 1, 32], big],
    [[32], big],
    [[4096, 8], [8]],
    [big, [14, 1, 32]], // not taken: the stock kernel
  ];
  const ops = [tf.add, tf.sub, tf.mul] as const;
  cases.forEach(([sa, sb], i) => {
    const a = random(sa, 2 * i + 1);
    const b = random(sb, 2 * i + 2);
    for (const op of ops) {
      const fast = withLevers({ native: true }, () => op(a, b));
      const plain = withLevers({ native: false }, () => op(a, b));
      assert.deepEqual(fast.shape, plain.shape);
      assert.deepEqual(fast.dataSync(), plain.dataSync(), `${op.name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`);
      tf.dispose([fast, plain]);
    }
    tf.dispose([a, b]);
  });
  // Channel sums (bias gradients, [B,H,W,C] → [C]) and the mean over every axis (the loss), against float64.
  for (const [shape, axes] of [
    [big, [0, 1, 2]],
    [
      [64, 28, 28, 1],
      [0, 1, 2, 3],
    ],
    [[4096, 8], [0]],
  ] as Array<[number[], number[]]>) {
    const x = random(shape, 99);
    const xs = x.dataSync();
    const c = shape.slice(axes.length).reduce((p, q) => p * q, 1);
    const want = new Float64Array(c);
    for (let i = 0; i < xs.length; i++) want[i % c] += xs[i];
    for (const mean of [false, true]) {
      const got = withLevers({ native: true }, () => (mean ? tf.mean(x, axes) : tf.sum(x, axes)));
      const g = got.dataSync();
      const n = xs.length / c;
      for (let k = 0; k < c; k++) {
        const w = mean ? want[k] / n : want[k];
        assert.ok(
          Math.abs(g[k] - w) <= 1e-6 * Math.max(1, Math.abs(w)) * (mean ? 1 : Math.sqrt(n)),
          `${mean ? 'mean' : 'sum'} ${shape} channel ${k}: ${g[k]} vs ${w}`,
        );
      }
      got.dispose();
    }
    x.dispose();
  }
  // 8 layouts taken × 3 ops; 3 shapes × sum and mean.
  assert.deepEqual(calls, { binary: 24, channelSum: 6 });
  Object.assign(addon, { binary, channelSum });
  // int32 operands run the stock kernel.
  const ia = tf.range(0, 1 << 15, 1, 'int32');
  const isum = withLevers({ native: true }, () => tf.add(ia, ia));
  assert.equal(isum.dtype, 'int32');
  assert.equal(isum.dataSync()[12345], 24690);
  tf.dispose([ia, isum]);
  assert.equal(tf.memory().numTensors, before, 'tensor count');
});
