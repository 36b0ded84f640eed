/**
 * Flow matching (lib/schedulers/flowMatching.ts, lib/algorithms/flowSampling.ts, the trainer's flow
 * objective, reflow): the path and its velocity against float64, the Euler sampler against the exact
 * velocity field of Gaussian data, CFG on the velocity at γ = 0 and 1, training steps that lower the
 * loss, and no tensor left behind.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import {
  eulerStep,
  eulerTimes,
  flowInterpolate,
  flowTimeInputs,
  flowVelocityTarget,
  FLOW_CONVENTION,
} from '../../lib/schedulers/flowMatching';
import { classGuidedVelocity, eulerSample, sampleFlowTime, timeVelocity, type VelocityField } from '../../lib/algorithms/flowSampling';
import { UNet } from '../../lib/models/unet';
import { Trainer, trainingLoss } from '../../lib/training/trainer';
import { presetConfig } from '../../lib/training/presets';
import { loadReflowPairs, makeReflowPairs, saveReflowPairs } from '../../lib/training/reflow';
import { parseTrainConfig } from '../../lib/weights/headers';
import { modelNameOf } from '../../lib/models/registry';
import { fakeData, mulberry32 } from '../helpers';

const before = async () => initEngine({ quiet: true });

function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

test('the path x_t = (1−t)·noise + t·data and its velocity data − noise equal float64, per-sample t', async () => {
  await before();
  assert.deepEqual(FLOW_CONVENTION, { noiseAt: 0, dataAt: 1 });
  const B = 3,
    n = B * 28 * 28;
  const noise = randomArray(n, 1, 2),
    data = randomArray(n, 2);
  const t = [0, 0.3, 1];
  const [xt, u] = tf.tidy(() => {
    const z = tf.tensor4d(noise, [B, 28, 28, 1]),
      x = tf.tensor4d(data, [B, 28, 28, 1]);
    return [flowInterpolate(z, x, t).dataSync(), flowVelocityTarget(z, x).dataSync()];
  });
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const ti = t[Math.floor(i / 784)];
    worst = Math.max(worst, Math.abs(xt[i] - ((1 - ti) * noise[i] + ti * data[i])), Math.abs(u[i] - (data[i] - noise[i])));
  }
  assert.ok(worst < 1e-6, `max error ${worst}`);
  // The ends: t = 0 is the noise itself, t = 1 the data.
  for (let i = 0; i < 784; i++) assert.equal(xt[i], noise[i]);
  for (let i = 2 * 784; i < 3 * 784; i++) assert.ok(Math.abs(xt[i] - data[i]) < 1e-7);
  assert.deepEqual(eulerTimes(4), [0, 0.25, 0.5, 0.75, 1]);
  assert.throws(() => eulerTimes(0), /positive integer/);
  assert.deepEqual([...tf.tidy(() => flowTimeInputs([0.25, 0.5], 2).dataSync())], [0.25, 0.5]);
});

/**
 * For data x₁ ~ N(μ, s²) (each pixel) and noise x₀ ~ N(0, 1), the marginal velocity is
 * E[x₁ − x₀ | x_t] = μ + (t s² − (1 − t)) / ((1 − t)² + t² s²) · (x_t − tμ) (Gaussian conditioning).
 */
function gaussianField(mu: number, s: number): VelocityField {
  return (x, t) =>
    tf.tidy(() => {
      const k = (t * s * s - (1 - t)) / ((1 - t) ** 2 + t * t * s * s);
      return tf.add(mu, tf.mul(k, tf.sub(x, t * mu))) as tf.Tensor4D;
    });
}

test('Euler on the exact Gaussian velocity field reproduces the data mean and variance; one step lands on the mean', async () => {
  await before();
  const mu = 0.3,
    s = 0.5;
  const start = tf.memory().numTensors;
  const res = eulerSample(gaussianField(mu, s), { count: 64, seed: 7, steps: 200 });
  const v = Array.from(res.images.dataSync());
  const N = v.length;
  const mean = v.reduce((a, b) => a + b, 0) / N;
  const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / N;
  // Sampling error of the mean: s/√N ≈ 0.0018; of the variance: s²·√(2/N) ≈ 0.0016.
  assert.ok(Math.abs(mean - mu) < 0.01, `mean ${mean} vs ${mu}`);
  assert.ok(Math.abs(variance - s * s) < 0.01, `variance ${variance} vs ${s * s}`);
  res.images.dispose();
  // One step from t = 0: x + v(x, 0) = x + μ − x = μ exactly, whatever the noise.
  const one = eulerSample(gaussianField(mu, s), { count: 2, seed: 8, steps: 1 });
  for (const p of one.images.dataSync()) assert.ok(Math.abs(p - mu) < 1e-6, `one step gives ${p}`);
  one.images.dispose();
  assert.equal(tf.memory().numTensors, start, 'the sampler leaves no tensor behind');
});

test('eulerSample: the same seed gives the same images; frames run from the noise to the result', async () => {
  await before();
  const net = new UNet({ kind: 'time', D: 4 }, 3);
  const start = tf.memory().numTensors;
  const a = sampleFlowTime(net, { count: 2, seed: 5, steps: 4, frameEvery: 2 });
  const b = sampleFlowTime(net, { count: 2, seed: 5, steps: 4 });
  assert.deepEqual([...a.images.dataSync()], [...b.images.dataSync()]);
  assert.deepEqual(a.frameTimes, [0, 0.5, 1]);
  assert.deepEqual([...a.frames[2].dataSync()], [...a.images.dataSync()]);
  // The first step by hand: x₁ = x₀ + ¼·v(x₀, 0).
  const manual = tf.tidy(() => {
    const x0 = a.frames[0];
    const v = net.apply({ x: x0, t: tf.fill([2, 1], 0) as tf.Tensor2D }, false);
    const x1 = eulerStep(x0, v, 0.25);
    const v1 = net.apply({ x: x1, t: tf.fill([2, 1], 0.25) as tf.Tensor2D }, false);
    return eulerStep(x1, v1, 0.25).dataSync();
  });
  const got = a.frames[1].dataSync();
  for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - manual[i]) < 1e-5);
  [a.images, b.images, ...a.frames].forEach((t) => t.dispose());
  assert.equal(tf.memory().numTensors, start);
  net.dispose();
});

test('CFG on the velocity: γ = 0 is the unconditional velocity, γ = 1 the conditional one, γ = 3 extrapolates', async () => {
  await before();
  const net = new UNet({ kind: 'class', D: 4 }, 11);
  // At initialisation the class barely moves the output (about 1e-6): scale its layers up so it does.
  for (const [name, p] of net.store.params)
    if (name.startsWith('fc1_c') || name.startsWith('fc2_c')) tf.tidy(() => p.assign(tf.mul(p, 30)));
  const labels = [2, 7];
  const start = tf.memory().numTensors;
  const x = tf.randomNormal([2, 28, 28, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
  const t = 0.4;
  const direct = (c: number[]) =>
    tf.tidy(() => net.apply({ x, t: tf.fill([2, 1], t) as tf.Tensor2D, c: tf.tensor2d(c, [2, 10]) }, false).dataSync());
  const onehot = Array.from({ length: 20 }, (_, i) => (labels[Math.floor(i / 10)] === i % 10 ? 1 : 0));
  const vc = direct(onehot),
    vu = direct(new Array(20).fill(0));
  const at = (g: number) => tf.tidy(() => classGuidedVelocity(net, labels, g)(x, t).dataSync());
  const [g0, g1, g3] = [at(0), at(1), at(3)];
  let worst = 0;
  for (let i = 0; i < vc.length; i++) {
    worst = Math.max(worst, Math.abs(g0[i] - vu[i]), Math.abs(g1[i] - vc[i]), Math.abs(g3[i] - (vu[i] + 3 * (vc[i] - vu[i]))));
  }
  assert.ok(worst < 1e-5, `max error ${worst}`);
  const effect = Math.max(...vc.map((v, i) => Math.abs(v - vu[i])));
  assert.ok(effect > 100 * worst, `the class changes the velocity by ${effect}, well above the error ${worst}`);
  x.dispose();
  assert.equal(tf.memory().numTensors, start);
  assert.throws(() => timeVelocity(net), /time-conditioned UNet/);
  net.dispose();
});

test('the flow loss is ‖v_θ(x_t, t) − (x₁ − x₀)‖² on x_t built in float64; steps on a fixed batch lower it', async () => {
  await before();
  const cfg = presetConfig('flow-class', 'cpu', { D: 8, seed: 4 });
  assert.equal(modelNameOf(cfg), 'flow-class');
  const tr = new Trainer(cfg);
  const B = 8;
  const data = fakeData(B, 3);
  const eps = randomArray(B * 784, 9, 1.5);
  const flowT = Float32Array.from([0, 0.1, 0.3, 0.5, 0.6, 0.8, 0.95, 0.99]);
  const classes = new Float32Array(B * 10);
  for (let i = 0; i < B; i++) if (i !== 3) classes[i * 10 + data.labels[i]] = 1; // sample 3 unconditional
  const x0 = tf.tensor4d(data.images, [B, 28, 28, 1]);
  const e = tf.tensor4d(eps, [B, 28, 28, 1]);
  const batch = { x0, eps: e, flowT, classes };
  // The reference: x_t and the target in float64, the network applied to x_t.
  const xt64 = new Float64Array(B * 784),
    u64 = new Float64Array(B * 784);
  for (let i = 0; i < xt64.length; i++) {
    const t = flowT[Math.floor(i / 784)];
    xt64[i] = (1 - t) * eps[i] + t * data.images[i];
    u64[i] = data.images[i] - eps[i];
  }
  const v = tf.tidy(() =>
    tr.net
      .apply(
        { x: tf.tensor4d(Float32Array.from(xt64), [B, 28, 28, 1]), t: tf.tensor2d(flowT, [B, 1]), c: tf.tensor2d(classes, [B, 10]) },
        true,
      )
      .dataSync(),
  );
  tr.net.store.discardPending();
  let ref = 0;
  for (let i = 0; i < v.length; i++) ref += (v[i] - u64[i]) ** 2;
  ref /= v.length;
  const loss = tf.tidy(() => trainingLoss(tr.net, batch, tr.schedule, cfg).dataSync()[0]);
  tr.net.store.discardPending();
  assert.ok(Math.abs(loss - ref) < 1e-4 * ref, `loss ${loss} vs float64 ${ref}`);
  const start = tf.memory().numTensors;
  const losses: number[] = [];
  for (let k = 0; k < 25; k++) losses.push(tr.stepOn(batch, 3e-3));
  assert.equal(tf.memory().numTensors, start, 'training steps leave no tensor behind');
  assert.ok(losses[24] < 0.6 * losses[0], `loss ${losses[0]} → ${losses[24]}`);
  x0.dispose();
  e.dispose();
  tr.dispose();
});

test('headers: flow needs a time input; old files without an objective are DDPMs', () => {
  assert.equal(modelNameOf({ model: 'time' }), 'time');
  assert.equal(modelNameOf({ model: 'time', objective: 'flow' }), 'flow-time');
  assert.throws(() => parseTrainConfig({ model: 'denoiser', objective: 'flow', D: 4, T: 300 }, 'x.weights'), /denoiser/);
  assert.throws(() => parseTrainConfig({ model: 'time', objective: 'score', D: 4, T: 300 }, 'x.weights'), /objective "score"/);
  assert.throws(
    () => new Trainer({ ...presetConfig('time', 'cpu'), model: 'denoiser', objective: 'flow' }),
    /no Part B model is a denoiser network with the flow objective/,
  );
});

test('reflow: the pairs are the model’s integration of their noise; they round-trip; a run on them resumes exactly', async () => {
  await before();
  const net = new UNet({ kind: 'time', D: 4 }, 6);
  const pairs = makeReflowPairs(net, { count: 5, steps: 3, seed: 2, chunk: 2 });
  const again = tf.tidy(() => {
    const noise = tf.tensor4d(pairs.noise, [5, 28, 28, 1]);
    const r = eulerSample(timeVelocity(net), { count: 5, seed: 0, steps: 3, noise });
    return r.images.dataSync();
  });
  let worst = 0;
  for (let i = 0; i < again.length; i++) worst = Math.max(worst, Math.abs(again[i] - pairs.images[i]));
  assert.ok(worst < 1e-5, `pairs differ from the integration by ${worst}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reflow-'));
  const file = path.join(dir, 'pairs.tensors');
  saveReflowPairs(file, pairs, { steps: 3 });
  const back = loadReflowPairs(file);
  assert.deepEqual([...back.noise], [...pairs.noise]);
  assert.deepEqual([...back.images], [...pairs.images]);
  assert.equal(back.count, 5);
  // Training on pairs: 2 epochs of 4 images straight vs 1 epoch, checkpoint, resume, 1 more.
  const wfile = path.join(dir, 'init.weights');
  const cfg = presetConfig('flow-time', 'cpu', { D: 4, batch: 2, epochs: 2, imagesPerEpoch: 4, reflowPairs: 'pairs.tensors' });
  const init = new Trainer(cfg);
  await init.saveWeights(wfile);
  init.dispose();
  const straight = new Trainer(cfg);
  straight.initFromWeights(wfile);
  await straight.run(back, { pairedNoise: back.noise });
  const first = new Trainer(cfg);
  first.initFromWeights(wfile);
  await first.run(back, { pairedNoise: back.noise, untilEpoch: 1, outDir: dir });
  first.dispose();
  const resumed = Trainer.resume(path.join(dir, 'last.ckpt'));
  await resumed.run(back, { pairedNoise: back.noise });
  assert.deepEqual(resumed.state.losses, straight.state.losses);
  assert.throws(() => loadReflowPairs(wfile), /not a reflow pairs file/);
  straight.dispose();
  resumed.dispose();
  net.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});
