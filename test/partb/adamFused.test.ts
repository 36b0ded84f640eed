/**
 * The one-pass Adam kernels (lever fusedAdam: the JS kernel, and the addon's float32 one where it is
 * loaded) against a float64 plain-TypeScript Adam (PyTorch semantics) and against the composite
 * (13-kernel) update, over three steps, on wasm and cpu; and the addon's multi-tensor update
 * (lever adamMany) against its per-parameter one on parameters of many sizes.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { Adam } from '../../lib/training/adam';
import { withLevers } from '../../lib/engine/levers';
import { NATIVE_POINTWISE, nativeStatus } from '../../lib/engine/native';
import { mulberry32 } from '../helpers';

const N = 257;
const LR = 1e-3;

/** Three Adam steps on one parameter with the given gradients; returns p, m, v. */
function run3(p0: number[], grads: number[][]): Float32Array[] {
  const p = tf.variable(tf.tensor1d(p0));
  const params = new Map([['w', p]]);
  const adam = new Adam(params);
  const before = tf.memory().numTensors;
  for (const g of grads) {
    const gt = tf.tensor1d(g);
    adam.update(params, new Map([['w', gt]]), LR);
    gt.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'no tensors leak');
  const out = [p, adam.m.get('w')!, adam.v.get('w')!].map((t) => t.dataSync().slice() as Float32Array);
  adam.dispose();
  p.dispose();
  return out;
}

/** float64 reference (PyTorch Adam: β1 0.9, β2 0.999, eps 1e-8, bias-corrected). */
function reference(p0: number[], grads: number[][]): number[][] {
  const p = p0.slice();
  const m = p0.map(() => 0);
  const v = p0.map(() => 0);
  grads.forEach((g, s) => {
    const t = s + 1;
    for (let i = 0; i < p.length; i++) {
      m[i] = 0.9 * m[i] + 0.1 * g[i];
      v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
      const mh = m[i] / (1 - 0.9 ** t);
      const vh = v[i] / (1 - 0.999 ** t);
      p[i] -= (LR * mh) / (Math.sqrt(vh) + 1e-8);
    }
  });
  return [p, m, v];
}

for (const engine of ['wasm', 'cpu'] as const) {
  test(`one-pass Adam matches float64 Adam and the composite update (${engine})`, async () => {
    await initEngine({ engine, quiet: true });
    const r = mulberry32(21);
    const p0 = Array.from({ length: N }, () => r() * 2 - 1);
    // Gradients of very different sizes, including exact zeros and sign flips.
    const grads = [0, 1, 2].map((s) => p0.map((_, i) => (i % 17 === 0 ? 0 : (r() - 0.5) * 10 ** ((i % 7) - 4 + s))));
    const ref = reference(p0, grads);
    const composite = withLevers({ fusedAdam: false }, () => run3(p0, grads));
    const addon = tf.getKernel(NATIVE_POINTWISE.adam, engine) !== undefined;
    const variants: Array<{ native: boolean; adamMany: boolean; kernel: string }> = [
      { native: false, adamMany: false, kernel: 'FusedAdam' },
    ];
    if (addon)
      variants.push(
        { native: true, adamMany: false, kernel: NATIVE_POINTWISE.adam },
        { native: true, adamMany: true, kernel: NATIVE_POINTWISE.adamMany },
      );
    for (const { native, adamMany, kernel } of variants) {
      const prof = await tf.profile(() => void withLevers({ fusedAdam: true, native, adamMany }, () => run3(p0, grads)));
      assert.ok(
        prof.kernels.some((k) => k.name === kernel),
        `${kernel} ran: ${[...new Set(prof.kernels.map((k) => k.name))].join(', ')}`,
      );
      const fusedOut = withLevers({ fusedAdam: true, native, adamMany }, () => run3(p0, grads));
      ['p', 'm', 'v'].forEach((name, j) => {
        for (let i = 0; i < N; i++) {
          const scale = Math.abs(ref[j][i]) + (name === 'p' ? 1e-3 * LR : 0);
          assert.ok(
            Math.abs(fusedOut[j][i] - ref[j][i]) <= 1e-6 * scale + 1e-12,
            `${kernel} ${name}[${i}]: ${fusedOut[j][i]} vs float64 ${ref[j][i]}`,
          );
          assert.ok(
            Math.abs(fusedOut[j][i] - composite[j][i]) <= 1e-5 * scale + 1e-12,
            `${kernel} ${name}[${i}]: ${fusedOut[j][i]} vs composite ${composite[j][i]}`,
          );
        }
      });
      // The parameters moved (by about lr per step where the gradient is non-zero).
      assert.ok(Math.abs(fusedOut[0][1] - p0[1]) > 1e-4);
    }
  });
}

for (const engine of ['wasm', 'cpu'] as const) {
  test(`multi-tensor Adam (adamMany) equals the per-parameter kernel bit for bit over many parameter sizes (${engine})`, async (t) => {
    await initEngine({ engine, quiet: true });
    if (tf.getKernel(NATIVE_POINTWISE.adamMany, engine) === undefined) return t.skip('the oneDNN addon is not loaded');
    // One value, a bias, a filter, and parameters that straddle the addon's split of the values
    // between threads (16,384 values a grain).
    const sizes = [1, 64, 3 * 3 * 16 * 32, 20000, 40000, 7];
    const steps = (adamMany: boolean) =>
      withLevers({ adamMany }, () => {
        const r = mulberry32(5); // the same parameters and gradients for both
        const params = new Map(
          sizes.map((n, k) => [`w${k}`, tf.variable(tf.tensor1d(Float32Array.from({ length: n }, () => r() * 2 - 1)))]),
        );
        const adam = new Adam(params);
        const before = tf.memory().numTensors;
        for (let s = 0; s < 3; s++) {
          const grads = new Map(
            [...params].map(([name, p]) => [name, tf.tensor1d(Float32Array.from({ length: p.size }, () => (r() - 0.5) * 10 ** (s - 2)))]),
          );
          adam.update(params, grads, LR);
          tf.dispose([...grads.values()]);
        }
        assert.equal(tf.memory().numTensors, before, 'no tensors leak');
        const out = [...params.keys()].flatMap((n) => [params.get(n)!, adam.m.get(n)!, adam.v.get(n)!].map((x) => x.dataSync().slice()));
        adam.dispose();
        params.forEach((p) => p.dispose());
        return out;
      });
    const many = steps(true);
    const one = steps(false);
    assert.equal(many.length, 3 * sizes.length);
    many.forEach((a, i) => assert.deepEqual(a, one[i], `array ${i}`));
  });
}

test('adamMany refuses bad arrays with one line', (t) => {
  const addon = nativeStatus().addon;
  if (!addon) return t.skip('the oneDNN addon is not built');
  const f = (n: number) => new Float32Array(n);
  const call =
    (arrays: unknown, ...h: unknown[]) =>
    () =>
      (addon.adamMany as (...a: unknown[]) => void)(arrays, ...(h.length ? h : [0.9, 0.999, 1e-8, 1e-3, 1]));
  assert.throws(call('x'), /^Error: diffusion_native\.adamMany: arrays must be an Array of Float32Arrays, got a string$/);
  assert.throws(call([f(2), f(2)]), /arrays must hold 7 Float32Arrays per parameter .*, got 2$/);
  assert.throws(call([f(2), f(2), f(2), f(3), f(2), f(2), f(2)]), /arrays\[3\] holds 3 values, its parameter's p 2$/);
  assert.throws(
    call([f(2), f(2), f(2), new Int32Array(2), f(2), f(2), f(2)]),
    /arrays\[3\] must be a Float32Array, got a Int32Array of 2$/,
  );
  assert.throws(call([], 0.9, 0.999, 1e-8, 'a', 1), /stepSize must be a number, got a string$/);
  const p = Float32Array.from([1, -1]);
  const out = [f(2), f(2), f(2)];
  addon.adamMany([p, Float32Array.from([0.5, -0.5]), f(2), f(2), ...out], 0.9, 0.999, 1e-8, 1e-3 / 0.1, Math.sqrt(0.001));
  // First step: m̂ = g, v̂ = g², so p moves by lr·sign(g).
  assert.ok(Math.abs(out[0]![0]! - (1 - 1e-3)) < 1e-6 && Math.abs(out[0]![1]! - (-1 + 1e-3)) < 1e-6, `${out[0]}`);
});
