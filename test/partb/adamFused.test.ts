/**
 * The one-pass Adam kernels (lever fusedAdam: the JS kernel, and the addon's float32 one where it is
 * loaded) against a float64 plain-TypeScript Adam (PyTorch semantics) and against the composite
 * (13-kernel) update, over three steps, on wasm and cpu.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { Adam } from '../../lib/training/adam';
import { withLevers } from '../../lib/engine/levers';
import { NATIVE_POINTWISE } from '../../lib/engine/native';
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
    for (const native of addon ? [false, true] : [false]) {
      const kernel = native ? NATIVE_POINTWISE.adam : 'FusedAdam';
      const prof = await tf.profile(() => void withLevers({ fusedAdam: true, native }, () => run3(p0, grads)));
      assert.ok(
        prof.kernels.some((k) => k.name === kernel),
        `${kernel} ran: ${[...new Set(prof.kernels.map((k) => k.name))].join(', ')}`,
      );
      const fusedOut = withLevers({ fusedAdam: true, native }, () => run3(p0, grads));
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
