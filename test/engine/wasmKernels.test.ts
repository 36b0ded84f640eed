/**
 * The supplied wasm kernels against the pure-JS cpu backend, over many shapes, strides and paddings.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { DEFAULT_LEVERS, levers, withLevers } from '../../lib/engine/levers';
import { maxRelErr, mulberry32, randArray } from '../helpers';

type Case = { n: number; h: number; w: number; cin: number; cout: number; k: number; s: number; pad: 'same' | 'valid' | number };

const cases: Case[] = [
  { n: 2, h: 8, w: 8, cin: 3, cout: 4, k: 3, s: 1, pad: 'same' },
  { n: 3, h: 9, w: 7, cin: 2, cout: 5, k: 3, s: 2, pad: 1 },
  { n: 2, h: 8, w: 8, cin: 4, cout: 3, k: 4, s: 2, pad: 'same' },
  { n: 1, h: 7, w: 7, cin: 3, cout: 2, k: 7, s: 7, pad: 'valid' },
  { n: 2, h: 10, w: 6, cin: 2, cout: 2, k: 5, s: 3, pad: 'valid' },
  { n: 2, h: 6, w: 6, cin: 5, cout: 4, k: 1, s: 1, pad: 0 },
  { n: 2, h: 11, w: 11, cin: 3, cout: 3, k: 3, s: 2, pad: 'same' },
  { n: 1, h: 5, w: 9, cin: 2, cout: 3, k: 2, s: 2, pad: 'valid' },
  { n: 2, h: 9, w: 9, cin: 3, cout: 2, k: 3, s: 2, pad: 'same' },
  { n: 2, h: 10, w: 8, cin: 2, cout: 3, k: 2, s: 3, pad: 'valid' },
  { n: 1, h: 12, w: 12, cin: 2, cout: 2, k: 5, s: 2, pad: 2 },
  { n: 2, h: 8, w: 8, cin: 3, cout: 4, k: 4, s: 2, pad: 1 },
];

/** conv2d forward/backward and conv2dTranspose forward on the current backend. */
function convGrads(c: Case, xa: Float32Array, wa: Float32Array, ta: Float32Array) {
  return tf.tidy(() => {
    const x = tf.tensor4d(xa, [c.n, c.h, c.w, c.cin]);
    const w = tf.tensor4d(wa, [c.k, c.k, c.cin, c.cout]);
    const f = (xx: tf.Tensor4D, ww: tf.Tensor4D) =>
      tf
        .conv2d(xx, ww, c.s, c.pad)
        .mul(tf.tensor(ta.subarray(0, tf.conv2d(xx, ww, c.s, c.pad).size)).reshape(tf.conv2d(xx, ww, c.s, c.pad).shape))
        .sum();
    const [dx, dw] = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => f(xx as tf.Tensor4D, ww as tf.Tensor4D))([x, w]);
    return [dx.dataSync().slice() as Float32Array, dw.dataSync().slice() as Float32Array];
  });
}

for (const [phases, exact] of [
  [true, true],
  [true, false],
  [false, false],
])
  test(`Conv2DBackpropFilter and Conv2DBackpropInput (${phases ? `${exact ? 'exact-size ' : ''}phase sub-convolutions, single-pixel GEMM` : 'zero insertion only'}) on wasm match the cpu backend`, () =>
    withLevers({ phases, exactPhases: exact, singlePixel: phases, native: false }, async () => {
      await initEngine({ engine: 'wasm', quiet: true });
      const rng = mulberry32(7);
      for (const c of cases) {
        const xa = randArray(rng, c.n * c.h * c.w * c.cin);
        const wa = randArray(rng, c.k * c.k * c.cin * c.cout);
        const ta = randArray(rng, c.n * c.h * c.w * c.cout * 4);
        await tf.setBackend('cpu');
        const [dxRef, dwRef] = convGrads(c, xa, wa, ta);
        await tf.setBackend('wasm');
        const [dx, dw] = convGrads(c, xa, wa, ta);
        assert.ok(maxRelErr(dx, dxRef) < 1e-5, `dx mismatch for ${JSON.stringify(c)}: ${maxRelErr(dx, dxRef)}`);
        assert.ok(maxRelErr(dw, dwRef) < 1e-5, `dW mismatch for ${JSON.stringify(c)}: ${maxRelErr(dw, dwRef)}`);
      }
    }));

for (const [phases, exact] of [
  [true, true],
  [true, false],
  [false, false],
])
  test(`conv2dTranspose forward (${phases ? `${exact ? 'exact-size ' : ''}phase sub-convolutions, single-pixel GEMM` : 'zero insertion only'}) on wasm matches the cpu backend`, () =>
    withLevers({ phases, exactPhases: exact, singlePixel: phases, native: false }, async () => {
      await initEngine({ engine: 'wasm', quiet: true });
      const rng = mulberry32(11);
      const shapes: Array<{
        n: number;
        h: number;
        cin: number;
        cout: number;
        k: number;
        s: number;
        pad: 'same' | 'valid' | number;
        out: number;
      }> = [
        { n: 2, h: 7, cin: 4, cout: 3, k: 4, s: 2, pad: 1, out: 14 },
        { n: 2, h: 1, cin: 4, cout: 3, k: 7, s: 7, pad: 'valid', out: 7 },
        { n: 3, h: 1, cin: 5, cout: 6, k: 3, s: 2, pad: 'valid', out: 3 },
        { n: 1, h: 5, cin: 2, cout: 2, k: 3, s: 1, pad: 'same', out: 5 },
        { n: 2, h: 4, cin: 3, cout: 5, k: 3, s: 2, pad: 'same', out: 8 },
        { n: 2, h: 14, cin: 6, cout: 4, k: 4, s: 2, pad: 1, out: 28 },
        { n: 2, h: 4, cin: 3, cout: 2, k: 5, s: 3, pad: 'same', out: 12 },
        { n: 1, h: 5, cin: 2, cout: 3, k: 3, s: 2, pad: 'valid', out: 11 },
        { n: 1, h: 3, cin: 2, cout: 3, k: 2, s: 3, pad: 'valid', out: 9 },
      ];
      for (const c of shapes) {
        const xa = randArray(rng, c.n * c.h * c.h * c.cin);
        const wa = randArray(rng, c.k * c.k * c.cout * c.cin);
        const f = () =>
          tf.tidy(
            () =>
              tf
                .conv2dTranspose(
                  tf.tensor4d(xa, [c.n, c.h, c.h, c.cin]),
                  tf.tensor4d(wa, [c.k, c.k, c.cout, c.cin]),
                  [c.n, c.out, c.out, c.cout],
                  c.s,
                  c.pad,
                )
                .dataSync()
                .slice() as Float32Array,
          );
        await tf.setBackend('cpu');
        const ref = f();
        await tf.setBackend('wasm');
        const got = f();
        assert.ok(maxRelErr(got, ref) < 1e-5, `conv2dTranspose mismatch for ${JSON.stringify(c)}`);
      }
    }));

test('Tile on wasm matches the cpu backend and broadcasting semantics', async () => {
  await initEngine({ engine: 'wasm', quiet: true });
  const rng = mulberry32(3);
  for (const [shape, reps] of [
    [
      [2, 3],
      [3, 2],
    ],
    [
      [1, 4, 1, 2],
      [5, 1, 3, 2],
    ],
    [[3], [4]],
  ] as Array<[number[], number[]]>) {
    const a = randArray(
      rng,
      shape.reduce((p, q) => p * q, 1),
    );
    const f = () => tf.tidy(() => tf.tile(tf.tensor(a, shape), reps).dataSync().slice() as Float32Array);
    await tf.setBackend('cpu');
    const ref = f();
    await tf.setBackend('wasm');
    const got = f();
    assert.deepEqual(Array.from(got), Array.from(ref));
  }
});

test('zero-copy Identity and same-dtype Cast on wasm: values survive the source, memory is freed, gradients match cpu', () =>
  withLevers({ zeroCopy: true }, async () => {
    await initEngine({ engine: 'wasm', quiet: true });
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const ids0 = backend.numDataIds();
    const a = tf.tensor([1.5, -2, 3], [3]);
    const b = a.clone();
    const c = tf.cast(b, 'float32');
    const i = tf.cast(b, 'int32');
    a.dispose();
    b.dispose();
    assert.deepEqual(Array.from(c.dataSync()), [1.5, -2, 3]);
    assert.deepEqual(Array.from(i.dataSync()), [1, -2, 3]);
    assert.equal(i.dtype, 'int32');
    c.dispose();
    i.dispose();
    assert.equal(backend.numDataIds(), ids0);
    // Gradients whose saved tensors are the references (Multiply saves both inputs).
    const rng = mulberry32(5);
    const xa = randArray(rng, 24);
    const ya = randArray(rng, 24);
    const g = () =>
      tf.tidy(() => {
        const [dx, dy] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.mul(x, y), tf.exp(x))))([
          tf.tensor(xa, [4, 6]),
          tf.tensor(ya, [4, 6]),
        ]);
        return [...dx.dataSync(), ...dy.dataSync()];
      });
    const got = g();
    await tf.setBackend('cpu');
    const ref = g();
    await tf.setBackend('wasm');
    assert.ok(maxRelErr(Float32Array.from(got), Float32Array.from(ref)) < 1e-6);
    assert.equal(backend.numDataIds(), ids0);
  }));

test('Sum and Mean over leading axes (JS pass) and other axes (stock) on wasm match the cpu backend', () =>
  withLevers({ reduce: true }, async () => {
    await initEngine({ engine: 'wasm', quiet: true });
    const rng = mulberry32(13);
    const shape = [3, 5, 4, 6];
    const a = randArray(rng, 360);
    const axesList: Array<number | number[]> = [[0, 1, 2], [0], [0, 1, 2, 3], [2, 1, 0], [-4, -3], [1, 2], [3], [0, 2]];
    for (const axes of axesList) {
      for (const keepDims of [false, true]) {
        for (const op of ['sum', 'mean'] as const) {
          const f = () =>
            tf.tidy(() => {
              const y = tf[op](tf.tensor(a, shape), axes, keepDims);
              return { shape: y.shape, values: y.dataSync().slice() as Float32Array };
            });
          await tf.setBackend('cpu');
          const ref = f();
          await tf.setBackend('wasm');
          const got = f();
          const what = `${op} over ${JSON.stringify(axes)} keepDims=${keepDims}`;
          assert.deepEqual(got.shape, ref.shape, what);
          assert.ok(maxRelErr(got.values, ref.values) < 1e-6, what);
        }
      }
    }
    // int32 sums keep their dtype (stock kernel).
    const s = tf.sum(tf.tensor([1, 2, 3, 4], [2, 2], 'int32'), 0);
    assert.equal(s.dtype, 'int32');
    assert.deepEqual(Array.from(s.dataSync()), [4, 6]);
    s.dispose();
  }));

test('Concat and SplitV (JS copy loops) on wasm match the cpu backend on every axis', () =>
  withLevers({ copyLoops: true, native: false }, async () => {
    await initEngine({ engine: 'wasm', quiet: true });
    const rng = mulberry32(17);
    const shapes: number[][] = [
      [2, 3, 4, 5],
      [2, 3, 4, 300],
      [3, 7],
    ];
    for (const shape of shapes) {
      for (let axis = -1; axis < shape.length; axis++) {
        const ax = axis < 0 ? shape.length - 1 : axis;
        const s2 = shape.map((d, i) => (i === ax ? d + 2 : d));
        const a = randArray(
          rng,
          shape.reduce((p, q) => p * q, 1),
        );
        const b = randArray(
          rng,
          s2.reduce((p, q) => p * q, 1),
        );
        const f = () =>
          tf.tidy(() => {
            const c = tf.concat([tf.tensor(a, shape), tf.tensor(b, s2), tf.tensor(a, shape)], axis);
            const parts = tf.split(c, [shape[ax], s2[ax], shape[ax]], axis);
            const g = tf.grad((x: tf.Tensor) =>
              tf
                .concat([x, tf.tensor(b, s2)], axis)
                .square()
                .sum(),
            )(tf.tensor(a, shape));
            return [c, ...parts, g].map((t) => ({ shape: t.shape, v: Array.from(t.dataSync()) }));
          });
        await tf.setBackend('cpu');
        const ref = f();
        await tf.setBackend('wasm');
        const got = f();
        assert.deepEqual(got, ref, `shape ${shape} axis ${axis}`);
      }
    }
  }));

test('the tests above leave the levers as they found them (all on)', () => {
  assert.deepEqual(levers(), DEFAULT_LEVERS);
});
