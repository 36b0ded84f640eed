/**
 * The MNIST adapter (lib/models/mnistDenoiser.ts) on a freshly initialized tiny class UNet:
 * prompt parsing, the time/class inputs it feeds the UNet, batching, errors, and Part A
 * algorithms running on it with a flat tensor count.
 */
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { UNet } from '../../lib/models/unet';
import { mnistDenoiser, parseDigitPrompt, digitPrompt } from '../../lib/models/mnistDenoiser';
import * as A from '../../lib/algorithms';
import { Rng } from '../../lib/tensor/random';
import { maxAbsDiff } from './reference';
import { sampleClass } from '../../lib/algorithms/ddpmSampling';

before(async () => {
  await initEngine({ quiet: true });
});

test('digit prompts: "a handwritten 7", "7", "seven"; neutral and empty mean no class', () => {
  for (const p of ['a handwritten 7', '7', 'seven', ' Seven ', 'a 7', 'digit 7']) assert.equal(parseDigitPrompt(p), 7, p);
  assert.equal(parseDigitPrompt('an eight'), 8);
  assert.equal(parseDigitPrompt('0'), 0);
  for (const p of ['', 'a handwritten digit', 'a high quality photo']) assert.equal(parseDigitPrompt(p), -1, p);
  for (const p of ['eleven', '10', 'a photo of a dog']) assert.equal(parseDigitPrompt(p), undefined, p);
  assert.equal(digitPrompt(3), 'a handwritten 3');
});

test('predict feeds the UNet (t+1)/T and the class vector; batching and prompt aliases agree', () => {
  const net = new UNet({ kind: 'class', D: 4 }, 3);
  const den = mnistDenoiser(net);
  assert.equal(den.schedule.T, 300);
  assert.deepEqual([den.imageSize, den.channels, den.valueRange, den.learnedVariance], [[28, 28], 1, [0, 1], false]);
  const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
  const x1 = tf.randomUniform([1, 28, 28, 1], 0, 1, 'float32', 6) as tf.Tensor4D;
  const t = 123;
  const p = den.predict(x, t, den.encodePrompt('a handwritten 7'));
  const want = tf.tidy(() => {
    const c = tf.oneHot([7, 7], 10).toFloat() as tf.Tensor2D;
    return net.apply({ x, t: tf.fill([2, 1], (t + 1) / 300) as tf.Tensor2D, c }, false);
  });
  assert.ok(maxAbsDiff(p.eps.dataSync(), want.dataSync()) < 1e-6);
  for (const alias of ['7', 'seven']) {
    const q = den.predict(x, t, den.encodePrompt(alias));
    assert.ok(maxAbsDiff(q.eps.dataSync(), p.eps.dataSync()) < 1e-6, alias);
    q.eps.dispose();
  }
  const n = den.predict(x, t, den.encodePrompt(den.neutralPrompt));
  const e = den.predict(x, t, den.encodePrompt(den.emptyPrompt));
  const zero = tf.tidy(() =>
    net.apply({ x, t: tf.fill([2, 1], (t + 1) / 300) as tf.Tensor2D, c: tf.zeros([2, 10]) as tf.Tensor2D }, false),
  );
  assert.ok(maxAbsDiff(n.eps.dataSync(), zero.dataSync()) < 1e-6);
  assert.ok(maxAbsDiff(e.eps.dataSync(), zero.dataSync()) < 1e-6);
  // the inputs it feeds the UNet, recorded directly (a fresh UNet barely depends on c)
  const seen: Array<{ t: number[]; c: number[] }> = [];
  const orig = net.apply.bind(net);
  net.apply = (inp, training) => {
    seen.push({ t: Array.from(inp.t!.dataSync()), c: Array.from(inp.c!.dataSync()) });
    return orig(inp, training);
  };
  den.predict(x, 0, den.encodePrompt('nine')).eps.dispose();
  net.apply = orig;
  assert.deepEqual(seen[0].t, [Math.fround(1 / 300), Math.fround(1 / 300)]);
  assert.deepEqual(seen[0].c, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  const many = den.predictMany!(
    [
      { xt: x, cond: den.encodePrompt('3') },
      { xt: x1, cond: den.encodePrompt('') },
    ],
    t,
  );
  const one0 = den.predict(x, t, den.encodePrompt('3'));
  const one1 = den.predict(x1, t, den.encodePrompt(''));
  assert.ok(maxAbsDiff(many[0].eps.dataSync(), one0.eps.dataSync()) < 1e-5);
  assert.ok(maxAbsDiff(many[1].eps.dataSync(), one1.eps.dataSync()) < 1e-5);
  tf.dispose([x, x1, p.eps, want, n.eps, e.eps, zero, many[0].eps, many[1].eps, one0.eps, one1.eps]);
  den.dispose!();
});

test('clear errors: unknown prompt, wrong image shape, wrong UNet kind, bad timestep', () => {
  const net = new UNet({ kind: 'class', D: 4 }, 3);
  const den = mnistDenoiser(net);
  assert.throws(
    () => den.encodePrompt('a photo of a dog'),
    /no prompt "a photo of a dog": use one of "a handwritten 0", .*"a handwritten 9", "a handwritten digit", "" \(or just "7" \/ "seven"\)/,
  );
  const bad = tf.zeros([1, 32, 32, 1]) as tf.Tensor4D;
  assert.throws(() => den.predict(bad, 5, den.encodePrompt('1')), /\[1,32,32,1\] but MNIST .* needs \[B,28,28,1\]/);
  const ok = tf.zeros([1, 28, 28, 1]) as tf.Tensor4D;
  assert.throws(() => den.predict(ok, 300, den.encodePrompt('1')), /timestep 300 is outside 0\.\.299/);
  const timeNet = new UNet({ kind: 'time', D: 4 }, 3);
  // the time-conditioned UNet is a Denoiser too, but takes no digit prompts or labels
  const timeDen = mnistDenoiser(timeNet);
  assert.throws(() => timeDen.encodePrompt('7'), /no prompt "7": use one of "a handwritten digit", ""/);
  assert.throws(() => timeDen.encodeLabels([1]), /is not class-conditioned/);
  const denoiserNet = new UNet({ kind: 'denoiser', D: 2 }, 1);
  assert.throws(() => mnistDenoiser(denoiserNet), /needs a time- or class-conditioned UNet, got kind 'denoiser'/);
  denoiserNet.dispose();
  tf.dispose([bad, ok]);
  timeNet.dispose();
  den.dispose!();
});

test('Part A algorithms run on the MNIST adapter with a flat tensor count', () => {
  const den = mnistDenoiser(new UNet({ kind: 'class', D: 4 }, 4));
  const img = tf.randomUniform([1, 28, 28, 1], 0, 1, 'float32', 9) as tf.Tensor4D;
  const mask = tf.ones([1, 28, 28, 1]) as tf.Tensor4D;
  const timesteps = [290, 200, 100, 0];
  const runs: Array<() => tf.Tensor> = [
    () => A.oneStepDenoise(den, img, 150),
    () => A.sample(den, 2, { rng: new Rng(1), timesteps }),
    () => A.sampleCfg(den, 2, { rng: new Rng(1), timesteps, prompt: 'seven', gamma: 5 }),
    () => A.sdedit(den, img, 1, { rng: new Rng(1), timesteps }),
    () => A.inpaint(den, img, mask, { rng: new Rng(1), timesteps, prompt: '3' }),
    () => A.visualAnagrams(den, '6', '9', { rng: new Rng(1), timesteps }),
    () => A.makeHybrids(den, '0', '1', { rng: new Rng(1), timesteps }),
  ];
  for (const f of runs) f().dispose();
  const before = tf.memory().numTensors;
  for (const f of runs) {
    const r = f();
    assert.equal(r.shape.slice(1).join(','), '28,28,1');
    assert.ok(Array.from(r.dataSync()).every(Number.isFinite));
    r.dispose();
    assert.equal(tf.memory().numTensors, before);
  }
  tf.dispose([img, mask]);
  den.dispose!();
});

test("Part A's loop at stride 1 reproduces Part B's Alg. B.4 sampler (same UNet, noise, γ) up to its last z = 0 step", () => {
  const T = 50;
  const net = new UNet({ kind: 'class', D: 4 }, 11);
  const den = mnistDenoiser(net, { T });
  const ts = Array.from({ length: T }, (_, i) => T - 1 - i); // 49 … 0
  const mine = A.sampleCfg(den, 2, { rng: new Rng(5), prompt: '3', gamma: 5, timesteps: ts, varianceType: 'fixed_large' }); // Alg. B.2's √β_t z
  const theirs = sampleClass(net, [3, 3], { seed: 5, guidance: 5, T, frameEvery: 1 });
  const at0 = theirs.frameTimes.indexOf(0); // x at schedule index 0, before Alg. B.2's final noiseless step
  assert.ok(at0 > 0);
  const d = maxAbsDiff(mine.dataSync(), theirs.frames[at0].dataSync());
  assert.ok(d < 1e-4, `max difference ${d}`);
  tf.dispose([mine, theirs.images, ...theirs.frames]);
  den.dispose!();
});
