/**
 * Part B training: loss falls on a fixed batch, checkpoints round-trip exactly, resume continues
 * the same loss history, tensor count stays flat, and NaN / corrupt / wrong-shape inputs give clear
 * errors while the last good checkpoint survives.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { Trainer } from '../../lib/training/trainer';
import { type TrainConfig } from '../../lib/weights/runConfig';
import { presetConfig } from '../../lib/training/presets';
import { loadUNetWeights } from '../../lib/models/unetWeights';
import { parseCheckpointHeader } from '../../lib/weights/headers';
import { loadTensorFile } from '../../lib/weights/tensorFile';
import { sampleClass } from '../../lib/algorithms/ddpmSampling';
import { fakeData } from '../helpers';

// EMA off: these tests compare weights files with the live parameters (test/partb/ema.test.ts covers the EMA copy).
function tiny(model: TrainConfig['model'], o: Partial<TrainConfig> = {}): TrainConfig {
  return presetConfig(model, 'cpu', { D: 2, batch: 4, epochs: 2, imagesPerEpoch: 8, seed: 3, T: 300, lr: 1e-2, emaDecay: 0, ...o });
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'partb-'));

test('a few steps on a fixed batch lower the loss (each model, tiny D)', async () => {
  await initEngine({ quiet: true });
  const data = fakeData(8);
  for (const model of ['denoiser', 'time', 'class'] as const) {
    const tr = new Trainer(tiny(model, { D: 4 }));
    const x = tf.tensor4d(data.images.subarray(0, 8 * 784), [8, 28, 28, 1]);
    const first: number[] = [];
    const last: number[] = [];
    // The DDPM losses are noisy (fresh t and ε each step): compare means of the first and last 5.
    for (let i = 0; i < 25; i++) {
      const l = tr.trainStep(x, data.labels.subarray(0, 8), 1e-2);
      if (i < 5) first.push(l);
      if (i >= 20) last.push(l);
    }
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    assert.ok(mean(last) < 0.8 * mean(first), `${model}: loss ${mean(first)} → ${mean(last)}`);
    x.dispose();
    tr.dispose();
  }
});

test('checkpoint round trip is exact; resume continues the same loss history', async () => {
  await initEngine({ quiet: true });
  const data = fakeData(12);
  const dir = tmp();
  // Uninterrupted: 2 epochs of 2 steps.
  const a = new Trainer(tiny('class'));
  await a.run(data);
  // Interrupted after 3 steps (mid-epoch), then resumed from the checkpoint.
  const b = new Trainer(tiny('class'));
  await b.run(data, { outDir: dir, checkpointEvery: 1, maxSteps: 3 });
  const ck = path.join(dir, 'last.ckpt');
  const stored = loadTensorFile(ck);
  for (const [name, v] of b.net.store.named()) assert.deepEqual(stored.tensors.get(`model/${name}`)!.data, v.dataSync(), name);
  for (const [name, v] of b.adam.m) assert.deepEqual(stored.tensors.get(`adam_m/${name}`)!.data, v.dataSync(), name);
  assert.equal(parseCheckpointHeader(stored.meta, ck).adamStep, 3);
  b.dispose();
  const c = Trainer.resume(ck);
  assert.equal(c.state.step, 3);
  assert.equal(c.state.losses.length, 3);
  for (const [name, v] of c.net.store.named()) assert.deepEqual(v.dataSync(), stored.tensors.get(`model/${name}`)!.data, name);
  await c.run(data, { outDir: dir });
  assert.equal(c.state.step, 4);
  assert.equal(c.state.epoch, 2);
  assert.equal(c.state.losses.length, a.state.losses.length);
  for (let i = 0; i < a.state.losses.length; i++)
    assert.ok(Math.abs(c.state.losses[i] - a.state.losses[i]) < 1e-5, `step ${i}: ${c.state.losses[i]} vs ${a.state.losses[i]}`);
  // Per-epoch weights files load into an eval-mode UNet with the same values.
  const { net, meta } = loadUNetWeights(path.join(dir, 'epoch-2.weights'));
  assert.equal(meta.kind === 'partb-weights' && meta.epoch, 2);
  for (const [name, v] of c.net.store.named()) assert.deepEqual(net.store.named().get(name)!.dataSync(), v.dataSync(), name);
  net.dispose();
  a.dispose();
  c.dispose();
});

test('tensor count stays flat over training and sampling steps', async () => {
  await initEngine({ quiet: true });
  const data = fakeData(8);
  const tr = new Trainer(tiny('class', { epochs: 6 }));
  await tr.run(data, { untilEpoch: 1 });
  const before = tf.memory().numTensors;
  await tr.run(data, { untilEpoch: 3 });
  assert.equal(tf.memory().numTensors, before, 'training leaked tensors');
  const s0 = tf.memory().numTensors;
  const res = sampleClass(tr.net, [1, 2], { seed: 1, guidance: 5, frameEvery: 100 });
  res.images.dispose();
  res.frames.forEach((f) => f.dispose());
  assert.equal(tf.memory().numTensors, s0, 'sampling leaked tensors');
  tr.dispose();
});

test('NaN loss, wrong image shape and corrupt checkpoints give clear errors; the last checkpoint survives', async () => {
  await initEngine({ quiet: true });
  const dir = tmp();
  const good = fakeData(8);
  const tr = new Trainer(tiny('time', { epochs: 3 }));
  await tr.run(good, { outDir: dir, untilEpoch: 1 });
  const ck = path.join(dir, 'last.ckpt');
  const bytes = fs.readFileSync(ck);
  const snapshot = () => [...tr.net.store.named().values(), ...tr.adam.m.values()].map((v) => v.dataSync().slice());
  const w0 = snapshot();
  const nanBatch = tf.tensor4d(
    Float32Array.from(good.images.subarray(0, 4 * 784), (v, i) => (i === 100 ? NaN : v)),
    [4, 28, 28, 1],
  );
  assert.throws(() => tr.trainStep(nanBatch), /loss became NaN at step 3 \(epoch 2\).*weights were not updated/);
  nanBatch.dispose();
  assert.deepEqual(snapshot(), w0, 'weights, BN stats or Adam state changed by a NaN step');
  assert.equal(tr.state.losses.length, 2);
  const bad = fakeData(8);
  bad.images[5] = NaN;
  await assert.rejects(tr.run(bad, { outDir: dir }), /loss became NaN at step \d+ \(epoch 2\).*last checkpoint is intact/);
  assert.deepEqual(fs.readFileSync(ck), bytes, 'checkpoint changed');
  assert.equal(Trainer.resume(ck).state.epoch, 1);
  assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')).length, 0);
  // Wrong image shape.
  const x = tf.zeros([2, 32, 32, 1]) as tf.Tensor4D;
  assert.throws(() => tr.trainStep(x), /shape \[B,28,28,1\].*got \[2,32,32,1\]/);
  x.dispose();
  await assert.rejects(tr.run({ images: new Float32Array(100), labels: new Uint8Array(1), count: 1 }), /28×28/);
  // Corrupt (flipped byte) and truncated checkpoints.
  const flipped = Buffer.from(bytes);
  flipped[flipped.length - 10] ^= 0xff;
  fs.writeFileSync(path.join(dir, 'flipped.ckpt'), flipped);
  assert.throws(() => Trainer.resume(path.join(dir, 'flipped.ckpt')), /not a valid checkpoint.*checksum mismatch/);
  fs.writeFileSync(path.join(dir, 'short.ckpt'), bytes.subarray(0, bytes.length - 100));
  assert.throws(() => Trainer.resume(path.join(dir, 'short.ckpt')), /not a valid checkpoint.*truncated/);
  fs.writeFileSync(path.join(dir, 'junk.ckpt'), 'hello');
  assert.throws(() => Trainer.resume(path.join(dir, 'junk.ckpt')), /wrong magic/);
  tr.dispose();
});

test('learning-rate schedule: ExponentialLR 0.1^(1/epochs) per epoch for DDPMs, constant for the denoiser', () => {
  const t = new Trainer(tiny('time', { epochs: 4, lr: 1e-3 }));
  assert.ok(Math.abs(t.lrAt(0) - 1e-3) < 1e-15);
  assert.ok(Math.abs(t.lrAt(4) - 1e-4) < 1e-15);
  assert.ok(Math.abs(t.lrAt(1) / t.lrAt(0) - Math.pow(0.1, 1 / 4)) < 1e-12);
  t.dispose();
  const d = new Trainer(presetConfig('denoiser', 'reference', { D: 2 }));
  assert.equal(d.lrAt(3), 1e-4);
  assert.deepEqual([d.config.D, d.config.batch, d.config.epochs], [2, 256, 5]);
  d.dispose();
  // A linear warm-up over the run's first 4 steps: (k + 1)/4 of the epoch's rate at step k, then the schedule.
  const w = new Trainer(tiny('time', { epochs: 4, lr: 1e-3, warmupSteps: 4 }));
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((k) => w.lrAt(0, k)),
    [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3],
  );
  assert.ok(Math.abs(w.lrAt(2, 100) - 1e-3 * Math.pow(0.1, 2 / 4)) < 1e-15);
  w.dispose();
  assert.throws(() => new Trainer(tiny('time', { warmupSteps: 1.5 })), /warm-up steps must be a whole number/);
});

test('a non-finite value (a BatchNorm running stat) is never written: the previous checkpoint and weights stay byte-identical', async () => {
  await initEngine({ quiet: true });
  const dir = tmp();
  const data = fakeData(8);
  const tr = new Trainer(tiny('time', { epochs: 3 }));
  await tr.run(data, { outDir: dir, untilEpoch: 1 });
  const ck = path.join(dir, 'last.ckpt');
  const w1 = path.join(dir, 'epoch-1.weights');
  const before = { ck: fs.readFileSync(ck), w1: fs.readFileSync(w1) };
  // The loss stays finite (training uses the batch statistics), but the running variance is NaN.
  const [bn, v] = [...tr.net.store.buffers].find(([k]) => /var/i.test(k)) ?? [...tr.net.store.buffers][0];
  tf.tidy(() => v.assign(tf.fill(v.shape, NaN)));
  const msg = new RegExp(
    `refusing to write .*last\\.ckpt: tensor model/${bn.replace(/[.[\]]/g, '\\$&')} holds NaN \\(index 0\\) after step 2 \\(epoch 1\\); the previous last\\.ckpt is kept — training diverged: lower the learning rate`,
  );
  await assert.rejects(tr.saveCheckpoint(ck), msg);
  await assert.rejects(tr.saveWeights(w1), /refusing to write .*epoch-1\.weights: tensor .* holds NaN/);
  // Through run(): the epoch-2 snapshot is refused first, and last.ckpt is not replaced.
  await assert.rejects(
    tr.run(data, { outDir: dir }),
    /refusing to write .*epoch-2\.weights: tensor .* holds NaN \(index 0\) after step 4 \(epoch 2\)/,
  );
  assert.deepEqual(fs.readFileSync(ck), before.ck, 'last.ckpt changed');
  assert.deepEqual(fs.readFileSync(w1), before.w1, 'epoch-1.weights changed');
  assert.ok(!fs.existsSync(path.join(dir, 'epoch-2.weights')));
  assert.deepEqual(
    fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')),
    [],
  );
  tr.dispose();
});

test('at an epoch end the snapshot is written before last.ckpt; stale *.tmp files of killed writes are removed on start', async () => {
  await initEngine({ quiet: true });
  const dir = tmp();
  const data = fakeData(8);
  // Orphans of a killed writer (a pid that does not run), and files that are not ours.
  const orphan = path.join(dir, 'last.ckpt.999999999.k3j2h1.tmp');
  const keep = [path.join(dir, 'notes.tmp'), path.join(dir, `last.ckpt.${process.pid}.abc.tmp`)];
  fs.writeFileSync(orphan, 'partial');
  for (const f of keep) fs.writeFileSync(f, 'x');
  const tr = new Trainer(tiny('time'));
  const order: string[] = [];
  const ckpt = tr.saveCheckpoint.bind(tr);
  const weights = tr.saveWeights.bind(tr);
  tr.saveCheckpoint = (f) => (order.push(path.basename(f)), ckpt(f));
  tr.saveWeights = (f, e, o) => (order.push(path.basename(f)), weights(f, e, o));
  await tr.run(data, { outDir: dir, untilEpoch: 1 });
  assert.deepEqual(order, ['epoch-1.weights', 'last.ckpt']);
  assert.ok(!fs.existsSync(orphan), 'orphan tmp removed');
  for (const f of keep) assert.ok(fs.existsSync(f), `${path.basename(f)} kept`);
  tr.dispose();
});
