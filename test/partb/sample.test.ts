/**
 * Part B sampling: the schedule against a float64 closed form, Alg. B.2 against a float64
 * plain-TS reference with an oracle noise predictor, CFG batching, and determinism.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { Rng } from '../../lib/tensor/random';
import { ddpmSchedule, linearSchedule } from '../../lib/schedulers/schedule';
import { ddpmSample, classGuidedEstimator, sampleClass } from '../../lib/algorithms/ddpmSampling';
import { functionDenoiser } from '../../lib/models/denoiser';
import { mnistDenoiser } from '../../lib/models/mnistDenoiser';
import { UNet } from '../../lib/models/unet';
import { mulberry32 } from '../helpers';

test('DDPM schedule: ᾱ against the float64 closed form of torch.linspace(1e-4, 0.02, 300)', () => {
  const s = ddpmSchedule();
  let prod = 1;
  for (let i = 0; i < 300; i++) {
    prod *= 1 - (1e-4 + (0.02 - 1e-4) * (i / 299));
    assert.ok(Math.abs(s.alphasCumprod[i] - prod) < 1e-12, `ᾱ[${i}]`);
  }
  assert.ok(Math.abs(s.alphasCumprod[0] - 0.9999) < 1e-12);
  assert.ok(Math.abs(s.alphasCumprod[149] - 0.46705) < 5e-6);
  assert.ok(Math.abs(s.alphasCumprod[299] - 0.048058) < 5e-7);
});

test('Alg. B.2 matches a float64 reference step by step (oracle predictor) and lands on the oracle image', async () => {
  await initEngine({ quiet: true });
  const T = 12;
  const sched = linearSchedule(1e-4, 0.2, T);
  const n = 2 * 28 * 28;
  const r = mulberry32(5);
  const target = Float64Array.from({ length: n }, () => r()); // the "clean image" the oracle knows
  const targetT = tf.tensor4d(Float32Array.from(target), [2, 28, 28, 1]);
  // Oracle ε̂(x_t, t) = (x_t − √ᾱ_t x*) / √(1 − ᾱ_t): the exact noise if x_0 = x*.
  const oracle = (xt: tf.Tensor4D, t: number) =>
    tf.tidy(
      () => tf.div(tf.sub(xt, tf.mul(targetT, Math.sqrt(sched.alphasCumprod[t]))), Math.sqrt(1 - sched.alphasCumprod[t])) as tf.Tensor4D,
    );
  const seed = 11;
  const den = functionDenoiser('point-mass oracle', sched, [28, 28, 1], oracle);
  const res = ddpmSample(den, (xt, t) => den.predict(xt, t, den.encodePrompt('')), { count: 2, seed });
  const got = res.images.dataSync();
  // Float64 reference with the same noise draws (replayed from the same Rng stream).
  const rng = new Rng(seed);
  const draw = () => {
    const t = rng.normal([2, 28, 28, 1]);
    const d = Float64Array.from(t.dataSync());
    t.dispose();
    return d;
  };
  let x = draw();
  for (let t = T - 1; t >= 0; t--) {
    const ab = sched.alphasCumprod[t];
    const abPrev = t > 0 ? sched.alphasCumprod[t - 1] : 1;
    const beta = sched.betas[t];
    const alpha = 1 - beta;
    const z = t > 0 ? draw() : new Float64Array(n);
    const next = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const eps = (x[i] - Math.sqrt(ab) * target[i]) / Math.sqrt(1 - ab);
      const x0 = (x[i] - Math.sqrt(1 - ab) * eps) / Math.sqrt(ab);
      next[i] =
        ((Math.sqrt(abPrev) * beta) / (1 - ab)) * x0 + ((Math.sqrt(alpha) * (1 - abPrev)) / (1 - ab)) * x[i] + Math.sqrt(beta) * z[i];
    }
    x = next;
  }
  let maxRef = 0;
  let maxTarget = 0;
  for (let i = 0; i < n; i++) {
    maxRef = Math.max(maxRef, Math.abs(got[i] - x[i]));
    maxTarget = Math.max(maxTarget, Math.abs(got[i] - target[i]));
  }
  assert.ok(maxRef < 1e-4, `vs float64 reference: ${maxRef}`);
  // With a perfect predictor the last step (z = 0, ᾱ_{-1} = 1) returns x* exactly.
  assert.ok(maxTarget < 1e-4, `vs oracle image: ${maxTarget}`);
  res.images.dispose();
  targetT.dispose();
});

test('CFG runs both branches in one batch: γ=1 is the conditional, γ=0 the unconditional prediction', async () => {
  await initEngine({ quiet: true });
  const net = new UNet({ kind: 'class', D: 2 }, 1);
  tf.tidy(() => {
    const x = tf.randomNormal([2, 28, 28, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
    const t = tf.fill([2, 1], 51 / 300) as tf.Tensor2D;
    const cond = net.apply({ x, t, c: tf.oneHot([4, 9], 10).toFloat() as tf.Tensor2D });
    const unc = net.apply({ x, t, c: tf.zeros([2, 10]) as tf.Tensor2D });
    const den = mnistDenoiser(net);
    const g1 = classGuidedEstimator(den, [4, 9], 1)(x, 50).eps;
    const g0 = classGuidedEstimator(den, [4, 9], 0)(x, 50).eps;
    const g5 = classGuidedEstimator(den, [4, 9], 5)(x, 50).eps;
    assert.ok(tf.max(tf.abs(tf.sub(g1, cond))).dataSync()[0] < 1e-5);
    assert.ok(tf.max(tf.abs(tf.sub(g0, unc))).dataSync()[0] < 1e-5);
    const ref = tf.add(unc, tf.mul(tf.sub(cond, unc), 5));
    assert.ok(tf.max(tf.abs(tf.sub(g5, ref))).dataSync()[0] < 1e-4);
  });
  assert.throws(() => classGuidedEstimator(mnistDenoiser(net), [10], 5), /digit 10/);
  net.dispose();
});

test('sampling is seeded: same seed, same images; another seed, other images; frames on request', async () => {
  await initEngine({ quiet: true });
  const net = new UNet({ kind: 'class', D: 2 }, 1);
  const a = sampleClass(net, [3, 3], { seed: 4, T: 30, frameEvery: 10 });
  const b = sampleClass(net, [3, 3], { seed: 4, T: 30 });
  const c = sampleClass(net, [3, 3], { seed: 5, T: 30 });
  assert.deepEqual(a.images.dataSync(), b.images.dataSync());
  assert.notDeepEqual(a.images.dataSync(), c.images.dataSync());
  assert.deepEqual(a.frameTimes, [30, 19, 9, -1]);
  assert.equal(b.frames.length, 0);
  assert.deepEqual(a.frames[3].dataSync(), a.images.dataSync());
  for (const r of [a, b, c]) {
    r.images.dispose();
    r.frames.forEach((f) => f.dispose());
  }
  net.dispose();
});
