/**
 * Two Adam steps of the class-conditioned UNet (tiny D) give the same weights on wasm and cpu.
 * Adam's first steps move every weight by about ±lr whatever the gradient's size, so a gradient
 * near zero whose sign differs between backends moves a weight by up to 2·lr per step: lr 1e-4
 * keeps that under the 1e-3 tolerance; the gradients themselves are checked through Adam's first
 * moment m (a running mean of raw gradients), relative to each tensor's scale.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { Trainer } from '../../lib/training/trainer';
import { presetConfig } from '../../lib/training/presets';
import { mulberry32 } from '../helpers';

function twoSteps(): Map<string, Float32Array> {
  const tr = new Trainer(presetConfig('class', 'cpu', { D: 4, batch: 4, seed: 9 }));
  const r = mulberry32(2);
  const x = tf.tensor4d(
    Float32Array.from({ length: 4 * 784 }, () => r()),
    [4, 28, 28, 1],
  );
  tr.trainStep(x, [1, 2, 3, 4], 1e-4);
  tr.trainStep(x, [5, 6, 7, 8], 1e-4);
  x.dispose();
  const out = new Map<string, Float32Array>();
  for (const [n, v] of tr.net.store.named()) out.set(n, v.dataSync() as Float32Array);
  for (const [n, v] of tr.adam.m) out.set(`m:${n}`, v.dataSync() as Float32Array);
  out.set('#loss', Float32Array.from(tr.state.losses));
  tr.dispose();
  return out;
}

test('wasm and cpu backends agree after two Adam steps (within 1e-3)', async () => {
  await initEngine({ engine: 'wasm', quiet: true });
  const wasm = twoSteps();
  await tf.setBackend('cpu');
  const cpu = twoSteps();
  assert.equal(tf.getBackend(), 'cpu');
  let worst = 0;
  let moved = 0;
  for (const [n, a] of wasm) {
    const b = cpu.get(n)!;
    if (n.startsWith('m:')) {
      let scale = 0;
      let diff = 0;
      for (let i = 0; i < a.length; i++) {
        scale = Math.max(scale, Math.abs(b[i]));
        diff = Math.max(diff, Math.abs(a[i] - b[i]));
      }
      assert.ok(diff <= 2e-3 * scale + 1e-7, `gradient moment ${n}: max diff ${diff} at scale ${scale}`);
      continue;
    }
    if (n === '#loss') continue;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    if (n === 'out.weight') moved = a.length;
  }
  assert.ok(moved > 0);
  // The losses themselves (forward passes) agree closely.
  const lw = wasm.get('#loss')!;
  const lc = cpu.get('#loss')!;
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(lw[i] - lc[i]) < 1e-4 * Math.abs(lc[i]) + 1e-5, `loss ${i}: ${lw[i]} vs ${lc[i]}`);
  // BatchNorm running stats after two steps agree too (included in the loop above).
  assert.ok(wasm.has('down1.down.bn.running_var'));
  assert.ok(worst < 1e-3, `max weight difference ${worst}`);
});
