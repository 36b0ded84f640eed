/**
 * Fused GELU and BatchNorm (forward and gradients) against float64 plain-TypeScript references,
 * on the wasm and cpu backends.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { DEFAULT_LEVERS, levers, withLevers } from '../../lib/engine/levers';
import { batchNormTrain, gelu } from '../../lib/tensor/fusedOps';
import { nativeStatus } from '../../lib/engine/native';
import { mulberry32 } from '../helpers';

/** erf by its Maclaurin series (float64), valid for |x| < 3 with many terms. */
function erfSeries(x: number): number {
  let sum = 0;
  let term = x;
  for (let n = 0; n < 120; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// The native addon's GELU and BatchNorm kernels (lib/engine/native.ts) when it is built, and the
// JS/composite paths with the addon's lever off.
const NATIVE = nativeStatus().addon ? [true, false] : [false];

for (const backend of ['wasm', 'cpu'] as const) {
  for (const [handGrad, nat] of [...NATIVE.map((n) => [true, n]), [false, false]] as Array<[boolean, boolean]>)
    test(`gelu and its gradient (${nat ? 'native addon' : handGrad ? 'hand-written' : 'autodiff'}) match float64 on ${backend}`, () =>
      withLevers({ geluGrad: handGrad, native: nat }, async () => {
        await initEngine({ engine: backend, quiet: true });
        const before = tf.memory().numTensors;
        const rng = mulberry32(5);
        const xs = Array.from({ length: 999 }, () => (rng() - 0.5) * 8);
        const w = Array.from({ length: 999 }, () => rng() - 0.5);
        const x = tf.tensor1d(xs);
        const wt = tf.tensor1d(w);
        const [y, dx] = tf.tidy(() => [gelu(x), tf.grad((v: tf.Tensor) => gelu(v).mul(wt).sum())(x)]);
        const phi = (v: number) => 0.5 * (1 + erfSeries(v / Math.SQRT2));
        const refY = xs.map((v) => v * phi(v));
        const refDx = xs.map((v, i) => w[i] * (phi(v) + (v * Math.exp((-v * v) / 2)) / Math.sqrt(2 * Math.PI)));
        assert.ok(maxAbs(y.dataSync(), refY) < 2e-6);
        assert.ok(maxAbs(dx.dataSync(), refDx) < 2e-6);
        tf.dispose([x, wt, y, dx]);
        assert.equal(tf.memory().numTensors, before);
      }));

  for (const [fast, nat] of [...NATIVE.map((n) => [true, n]), [false, false]] as Array<[boolean, boolean]>)
    test(`batchNormTrain forward and gradients (${nat ? 'native addon' : fast ? 'one-pass stats, coefficient gradient' : 'two-pass kernels'}) match float64 on ${backend}`, () =>
      withLevers({ bnFast: fast, native: nat }, async () => {
        await initEngine({ engine: backend, quiet: true });
        const rng = mulberry32(9);
        const [B, H, W, C] = [3, 4, 5, 6];
        const n = B * H * W;
        const xs = Array.from({ length: n * C }, () => rng() * 3 - 1);
        const gs = Array.from({ length: C }, () => rng() + 0.5);
        const bs = Array.from({ length: C }, () => rng() - 0.5);
        const ws = Array.from({ length: n * C }, () => rng() - 0.5); // loss = Σ w·y
        const eps = 1e-5;
        // float64 reference: y = γ x̂ + β; numerical gradient of Σ w·y by central differences.
        const forward = (xv: number[], gv: number[], bv: number[]) => {
          const out = new Float64Array(n * C);
          for (let k = 0; k < C; k++) {
            let m = 0;
            for (let i = 0; i < n; i++) m += xv[i * C + k];
            m /= n;
            let v = 0;
            for (let i = 0; i < n; i++) v += (xv[i * C + k] - m) ** 2;
            v /= n;
            for (let i = 0; i < n; i++) out[i * C + k] = (gv[k] * (xv[i * C + k] - m)) / Math.sqrt(v + eps) + bv[k];
          }
          return out;
        };
        const loss = (xv: number[], gv: number[], bv: number[]) => forward(xv, gv, bv).reduce((s, y, i) => s + y * ws[i], 0);
        const h = 1e-5;
        const numGrad = (which: 0 | 1 | 2) => {
          const base = [xs, gs, bs][which];
          return base.map((_, j) => {
            const p = base.slice();
            p[j] += h;
            const q = base.slice();
            q[j] -= h;
            const args = (arr: number[]) =>
              (which === 0 ? [arr, gs, bs] : which === 1 ? [xs, arr, bs] : [xs, gs, arr]) as [number[], number[], number[]];
            return (loss(...args(p)) - loss(...args(q))) / (2 * h);
          });
        };
        const x = tf.tensor4d(xs, [B, H, W, C]);
        const g = tf.tensor1d(gs);
        const b = tf.tensor1d(bs);
        const wt = tf.tensor4d(ws, [B, H, W, C]);
        const before = tf.memory().numTensors;
        const out = tf.tidy(() => {
          const r = batchNormTrain(x, g, b, eps);
          const grads = tf.grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) =>
            batchNormTrain(xx as tf.Tensor4D, gg as tf.Tensor1D, bb as tf.Tensor1D, eps)
              .y.mul(wt)
              .sum(),
          )([x, g, b]);
          return [r.y, r.mean, r.variance, ...grads];
        });
        assert.equal(tf.memory().numTensors, before + out.length, 'no tensors leak');
        const [y, mean, variance, dx, dg, db] = out.map((t) => Array.from(t.dataSync()));
        assert.ok(maxAbs(y, forward(xs, gs, bs)) < 1e-5);
        for (let k = 0; k < C; k++) {
          let m = 0;
          for (let i = 0; i < n; i++) m += xs[i * C + k];
          assert.ok(Math.abs(mean[k] - m / n) < 1e-6);
          let v = 0;
          for (let i = 0; i < n; i++) v += (xs[i * C + k] - m / n) ** 2;
          assert.ok(Math.abs(variance[k] - v / n) < 1e-6 * (v / n), `variance ${variance[k]} vs ${v / n}`);
        }
        // Statistics stay accurate with a mean far from zero (|mean| / std ≈ 1e3).
        const vOff = tf.tidy(() => {
          const r = batchNormTrain(tf.add(x, 1000) as tf.Tensor4D, g, b, eps);
          return r.variance.dataSync().slice();
        });
        for (let k = 0; k < C; k++)
          assert.ok(Math.abs(vOff[k] - variance[k]) < 2e-3 * variance[k], `offset variance ${vOff[k]} vs ${variance[k]}`);
        assert.ok(maxAbs(dx, numGrad(0)) < 1e-4, `dx ${maxAbs(dx, numGrad(0))}`);
        assert.ok(maxAbs(dg, numGrad(1)) < 1e-4);
        assert.ok(maxAbs(db, numGrad(2)) < 1e-4);
        tf.dispose([x, g, b, wt, ...out]);
      }));
}

// An empty batch reached the addon's BatchNorm statistics with 0 rows (a segfault on cpu, an
// out-of-bounds read of the wasm heap on wasm): every engine and path now refuses it in one line.
for (const backend of ['wasm', 'cpu'] as const)
  for (const [nat, fast] of [...NATIVE.map((n) => [n, true]), [false, false]] as Array<[boolean, boolean]>)
    test(`an empty batch is refused in one line by batchNormTrain on ${backend} (${nat ? 'native addon' : fast ? 'fast kernels' : 'plain kernels'})`, () =>
      withLevers({ native: nat, bnFast: fast }, async () => {
        await initEngine({ engine: backend, quiet: true });
        const before = tf.memory().numTensors;
        for (const shape of [
          [0, 4, 4, 8],
          [2, 0, 4, 8],
          [2, 4, 0, 8],
        ] as Array<[number, number, number, number]>) {
          const x = tf.zeros(shape) as tf.Tensor4D;
          const g = tf.ones([8]) as tf.Tensor1D;
          const b = tf.zeros([8]) as tf.Tensor1D;
          assert.throws(
            () => batchNormTrain(x, g, b, 1e-5),
            (e: Error) =>
              e.message ===
              `batchNormTrain: x has shape [${shape.join(',')}], but training-mode BatchNorm needs [B,H,W,C] with at least one value per channel`,
          );
          // GELU of an empty tensor is an empty tensor (the addon's loop runs over nothing).
          const y = gelu(x);
          assert.deepEqual(y.shape, shape);
          tf.dispose([x, g, b, y]);
        }
        assert.equal(tf.memory().numTensors, before);
      }));

test('the tests above leave the levers as they found them (all on)', () => {
  assert.deepEqual(levers(), DEFAULT_LEVERS);
});
