/**
 * EMA of the weights (lib/training/ema.ts): a constant stays that constant, k updates equal a
 * float64 evaluation of the recursion, weights files hold the EMA copy, and an interrupted run
 * resumed from its checkpoint continues the EMA bit for bit.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { Ema, emaDecayAt } from '../../lib/training/ema';
import { Trainer } from '../../lib/training/trainer';
import { type TrainConfig } from '../../lib/weights/runConfig';
import { presetConfig } from '../../lib/training/presets';
import { loadTensorFile } from '../../lib/weights/tensorFile';
import type { MnistSet } from '../../lib/data/mnist';
import { mulberry32 } from '../helpers';

test('the warm-up decay is diffusers EMAModel’s: 0, 2/11, 3/12, … capped at the decay', () => {
  assert.equal(emaDecayAt(0.999, 0), 0);
  assert.equal(emaDecayAt(0.999, 1), 2 / 11);
  assert.equal(emaDecayAt(0.999, 2), 3 / 12);
  assert.equal(emaDecayAt(0.9, 1000), 0.9);
  assert.throws(() => new Ema(new Map(), 1), /EMA decay must be in \[0, 1\)/);
});

test('EMA of a constant parameter is that constant; k updates equal a float64 reference', async () => {
  await initEngine({ quiet: true });
  const r = mulberry32(5);
  const p = tf.variable(tf.tensor1d(Array.from({ length: 37 }, () => r() * 2 - 1)), true, 'ema-test-p');
  const c = tf.variable(tf.fill([3, 4], 0.3125), true, 'ema-test-c');
  const params = new Map([
    ['p', p],
    ['c', c],
  ]);
  const ema = new Ema(params, 0.95);
  const ref = Float64Array.from(p.dataSync()); // the shadow starts as a copy; the first update copies again
  const before = tf.memory().numTensors;
  for (let k = 0; k < 60; k++) {
    const next = Array.from({ length: 37 }, () => r() * 2 - 1);
    tf.tidy(() => p.assign(tf.tensor1d(next)));
    const d = emaDecayAt(0.95, k);
    for (let i = 0; i < 37; i++) ref[i] = d * ref[i] + (1 - d) * next[i];
    ema.update(params);
  }
  assert.equal(tf.memory().numTensors, before + 0, 'EMA updates leak no tensors');
  assert.deepEqual([...ema.shadow.get('c')!.dataSync()], new Array(12).fill(0.3125));
  const got = ema.shadow.get('p')!.dataSync();
  let worst = 0;
  for (let i = 0; i < 37; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]));
  assert.ok(worst < 1e-6, `max |float32 EMA − float64 reference| = ${worst}`);
  assert.equal(ema.updates, 60);
  ema.dispose();
  p.dispose();
  c.dispose();
});

function fakeData(n: number): MnistSet {
  const r = mulberry32(2);
  const images = Float32Array.from({ length: n * 784 }, () => r());
  return { images, labels: Uint8Array.from({ length: n }, (_, i) => i % 10), count: n };
}

const tiny = (o: Partial<TrainConfig> = {}): TrainConfig =>
  presetConfig('class', 'cpu', { D: 2, batch: 4, epochs: 2, imagesPerEpoch: 8, seed: 3, lr: 1e-2, emaDecay: 0.9, ...o });

test('weights files hold the EMA copy; resuming mid-run continues the EMA bit for bit', async () => {
  await initEngine({ quiet: true });
  const data = fakeData(12);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ema-'));
  const a = new Trainer(tiny());
  await a.run(data, { outDir: path.join(dir, 'a') });
  const b = new Trainer(tiny());
  await b.run(data, { outDir: path.join(dir, 'b'), checkpointEvery: 1, maxSteps: 3 });
  b.dispose();
  const c = Trainer.resume(path.join(dir, 'b', 'last.ckpt'));
  assert.equal(c.ema!.updates, 3);
  await c.run(data, { outDir: path.join(dir, 'b') });
  for (const [name, v] of a.ema!.shadow) assert.deepEqual(c.ema!.shadow.get(name)!.dataSync(), v.dataSync(), name);
  // The epoch's weights file: EMA parameters (not the live ones) and the live BatchNorm buffers.
  const w = loadTensorFile(path.join(dir, 'a', 'epoch-2.weights'));
  const live = loadTensorFile(path.join(dir, 'a', 'epoch-2-live.weights'));
  let differ = 0;
  for (const [name, v] of a.ema!.shadow) {
    assert.deepEqual(w.tensors.get(name)!.data, v.dataSync(), name);
    assert.deepEqual(live.tensors.get(name)!.data, a.net.store.params.get(name)!.dataSync(), name);
    if (
      a.net.store.params
        .get(name)!
        .dataSync()
        .some((x, i) => x !== v.dataSync()[i])
    )
      differ++;
  }
  assert.ok(differ > 0, 'after 4 steps the EMA differs from the live weights');
  for (const [name, v] of a.net.store.buffers) assert.deepEqual(w.tensors.get(name)!.data, v.dataSync(), name);
  a.dispose();
  c.dispose();
});
