/**
 * The denoiser fed pure noise (SPEC-flow Part B §1.2.3): its loss is ‖D(ε) − x‖² computed another
 * way (float64 on the host), the registry and the headers know the model, and the shipped weights
 * show what the course asks students to explain: whatever the noise, the output is the mean
 * training digit (the MSE-optimal answer to an input that carries no information about x).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { UNet } from '../../lib/models/unet';
import { describeConfig, describeModel, modelNameOf } from '../../lib/models/registry';
import { TRAINING_OBJECTIVES } from '../../lib/training/objectives';
import { presetConfig } from '../../lib/training/presets';
import { trainingLoss } from '../../lib/training/trainer';
import { ddpmSchedule } from '../../lib/schedulers/schedule';
import { parseTrainConfig } from '../../lib/weights/headers';
import { loadUNetWeights } from '../../lib/models/unetWeights';
import { shippedWeightsPath } from '../../lib/weights/shipped';
import { loadMnist } from '../../lib/data/mnist';
import { meanImage, meanImageReport } from '../../lib/evaluation/quality';
import { mulberry32, randArray } from '../helpers';

test('the pure-noise loss is mean ‖D(ε) − x‖² (float64 on the host); the model is known by name and by header', async () => {
  await initEngine({ quiet: true });
  const d = describeModel('denoiser-pure-noise');
  assert.equal(d.network, 'denoiser');
  assert.equal(d.sampling, null);
  const cfg = presetConfig('denoiser-pure-noise', 'cpu');
  assert.equal(cfg.objective, 'pure-noise');
  assert.equal(modelNameOf(cfg), 'denoiser-pure-noise');
  assert.equal(describeConfig(cfg), d);
  assert.throws(() => parseTrainConfig({ model: 'time', objective: 'pure-noise', D: 4, T: 300 }, 'x.weights'), /only the denoiser/);
  const net = new UNet({ kind: 'denoiser', D: 4 }, 1);
  const x = tf.tensor4d(
    randArray(mulberry32(1), 2 * 784).map((v) => (v + 1) / 2),
    [2, 28, 28, 1],
  );
  const eps = tf.tensor4d(randArray(mulberry32(2), 2 * 784), [2, 28, 28, 1]);
  const got = tf.tidy(() => trainingLoss(net, { x0: x, eps }, ddpmSchedule(300), cfg).dataSync()[0]);
  net.store.discardPending();
  // The reference: the network's output for ε (training mode, as the loss runs it) and the mean in float64.
  const out = tf.tidy(() => net.apply({ x: eps }, true).dataSync());
  net.store.discardPending();
  const xs = x.dataSync();
  let sum = 0;
  for (let i = 0; i < xs.length; i++) sum += (out[i] - xs[i]) ** 2;
  assert.ok(Math.abs(got - sum / xs.length) < 1e-6 * Math.max(1, sum / xs.length), `${got} against ${sum / xs.length}`);
  // What the preview feeds the network: the noise itself, whatever σ.
  const fed = tf.tidy(() => TRAINING_OBJECTIVES['denoise-pure-noise'].denoiserInput!(x, eps, 0.5).dataSync());
  assert.deepEqual(Array.from(fed), Array.from(eps.dataSync()));
  assert.equal(TRAINING_OBJECTIVES['denoise-pure-noise'].denoiserInputLabel!(0.5), 'pure noise');
  tf.dispose([x, eps]);
  net.dispose();
});

test('the shipped pure-noise denoiser outputs the mean training digit for any noise', async () => {
  await initEngine({ quiet: true });
  const { net, meta } = loadUNetWeights(shippedWeightsPath('denoiser-pure-noise'));
  assert.equal(describeConfig(meta.config).name, 'denoiser-pure-noise');
  const train = loadMnist('train');
  const r = meanImageReport(net, train, loadMnist('test'), 500, 7);
  // The outputs sit on the mean (MSE under 1e-3 against 0.064 between real digits and that mean),
  // hardly vary with the noise, and do about as well on test digits as the mean itself.
  assert.ok(r.mseToMean < 1e-3, `MSE to the mean ${r.mseToMean}`);
  assert.ok(r.outputSpread < 1e-3, `spread ${r.outputSpread}`);
  assert.ok(r.meanToTest > 0.05 && r.meanToTest < 0.08, `the mean's MSE to test digits ${r.meanToTest}`);
  assert.ok(Math.abs(r.outputToTest - r.meanToTest) < 0.005, `${r.outputToTest} against ${r.meanToTest}`);
  // meanImage is the plain per-pixel average.
  const m = meanImage(train);
  let s = 0;
  for (let i = 0; i < train.count; i++) s += train.images[i * 784 + 400];
  assert.ok(Math.abs(m[400] - s / train.count) < 1e-6);
  net.dispose();
});
