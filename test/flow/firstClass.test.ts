/**
 * Flow models first-class (issue 30): the flow scheduler's grid (h = 0.02: 50 updates from 0, 25
 * from 0.5, four from 0.93 ending exactly at 1), Euler on a constant field landing on the analytic
 * endpoint, every anagram view undone exactly by its inverse, the two guidance conventions, and
 * Part A's algorithms (SDEdit, inpainting, an anagram with each view, a hybrid) run through the same
 * library functions on the shipped flow-matching class model and the shipped MNIST DDPM class model,
 * with SDEdit and the anagram's estimate checked against a hand-written float64 reference.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import * as A from '../../lib/algorithms';
import { eulerTimes, FlowMatchEulerScheduler, flowTimesteps } from '../../lib/schedulers/flowMatching';
import { DDPMScheduler, courseConfig } from '../../lib/schedulers/ddpm';
import { ddpmSchedule } from '../../lib/schedulers/schedule';
import { velocityFunctionDenoiser, type Denoiser } from '../../lib/models/denoiser';
import { loadMnistDenoiser } from '../../lib/models/registry';
import { shippedWeightsPath } from '../../lib/weights/shipped';
import { Rng } from '../../lib/tensor/random';
import { mulberry32, randArray } from '../helpers';

const before = async () => initEngine({ quiet: true });

test('flow grid: h = 0.02 takes 50 updates from 0 and 25 from 0.5; from 0.93 four, the last shortened to end exactly at 1', async () => {
  await before();
  const from0 = flowTimesteps(0.02, 0);
  assert.equal(from0.length - 1, 50);
  assert.equal(from0[0], 0);
  assert.equal(from0[50], 1);
  assert.equal(flowTimesteps(0.02, 0.5).length - 1, 25);
  const late = flowTimesteps(0.02, 0.93);
  assert.equal(late.length - 1, 4);
  assert.equal(late[4], 1);
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(late[i + 1] - late[i] - 0.02) < 1e-12, `step ${i} is ${late[i + 1] - late[i]}`);
  assert.ok(Math.abs(late[4] - late[3] - 0.01) < 1e-12, 'the last step is the remaining 0.01');
  // h = 1/n from 0 is the old equal-step grid exactly (same PNGs).
  assert.deepEqual(flowTimesteps(1 / 32), eulerTimes(32));
  const s = new FlowMatchEulerScheduler();
  assert.deepEqual(s.timesteps(), from0);
  assert.throws(() => flowTimesteps(0, 0), /step h/);
  assert.throws(() => flowTimesteps(0.02, 1), /start time/);
  assert.throws(() => s.checkTimesteps([0.5, 0.4, 1], 0, 'f'), /increase strictly/);
  assert.throws(
    () => s.step(tf.zeros([1, 2, 2, 1]) as tf.Tensor4D, { eps: tf.zeros([1, 2, 2, 1]) as tf.Tensor4D }, 0.5, 0.4),
    /must be larger/,
  );
});

test('Euler on a constant velocity field lands on the analytic endpoint x + (1 − t₀)·c, from 0 and from 0.93', async () => {
  await before();
  const c = 0.75;
  const den = velocityFunctionDenoiser('constant field', [4, 4, 1], (x) => tf.fill(x.shape, c) as tf.Tensor4D);
  const cond = den.encodePrompt('');
  for (const start of [0, 0.5, 0.93]) {
    const ts = flowTimesteps(0.02, start);
    const x0 = tf.tensor4d(randArray(mulberry32(3), 16), [1, 4, 4, 1]);
    const before0 = tf.memory().numTensors;
    const seen: number[] = [];
    const out = A.denoiseLoop(
      den,
      x0,
      0,
      (x, t) => den.predict(x, t, cond),
      {
        rng: new Rng(1),
        timesteps: ts,
        onStep: ({ x }) => seen.push(tf.tidy(() => tf.all(tf.isFinite(x)).dataSync()[0])),
      },
      'test',
    );
    const got = out.dataSync();
    const start0 = x0.dataSync();
    for (let i = 0; i < 16; i++) assert.ok(Math.abs(got[i] - (start0[i] + (1 - start) * c)) < 1e-5, `start ${start}, pixel ${i}`);
    assert.equal(seen.length, ts.length - 1);
    assert.ok(
      seen.every((f) => f === 1),
      'every Euler state is finite',
    );
    out.dispose();
    assert.equal(tf.memory().numTensors, before0, 'the loop leaves no tensor behind');
    x0.dispose();
  }
});

test('each anagram view followed by its inverse is the identity, exactly; the views are the ones the papers use', async () => {
  await before();
  const x = tf.tensor4d(randArray(mulberry32(9), 2 * 6 * 6 * 3), [2, 6, 6, 3]);
  for (const v of Object.values(A.VIEWS)) {
    const back = tf.tidy(() => v.inverse(v.view(x)));
    assert.deepEqual([...back.dataSync()], [...x.dataSync()], v.name);
    back.dispose();
  }
  // The 180° rotation is the flip of both axes, and the 90° rotation applied twice.
  const r = tf.tidy(() => [A.rotate180(x).dataSync(), A.rotate90(A.rotate90(x)).dataSync()]);
  assert.deepEqual([...r[0]], [...r[1]]);
  // A 2×2 picture turned a quarter counter-clockwise: [[a,b],[c,d]] → [[b,d],[a,c]].
  const q = tf.tidy(() => A.rotate90(tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1])).dataSync());
  assert.deepEqual([...q], [2, 4, 1, 3]);
  assert.throws(() => A.viewByName('skew'), /unknown anagram view "skew": use one of flip, rot180, rot90, transpose, negate/);
  assert.throws(() => A.rotate90(tf.zeros([1, 2, 3, 1]) as tf.Tensor4D), /square/);
  x.dispose();
});

test('the two guidance conventions: γ = w + 1; w = 0 gives the conditional velocity', async () => {
  await before();
  assert.equal(A.flowGuidanceScale(7), 8);
  assert.equal(A.flowGuidanceScale(0), 1);
  const [u, c] = [tf.tensor4d([0, 1], [1, 1, 2, 1]), tf.tensor4d([2, -1], [1, 1, 2, 1])];
  const at = (w: number) => [...tf.tidy(() => A.cfgNoise(u, c, A.flowGuidanceScale(w)).dataSync())];
  assert.deepEqual(at(0), [2, -1]);
  // The course's v_c + w (v_c − v_u) at w = 7: [2 + 7·2, −1 + 7·(−2)].
  assert.deepEqual(at(7), [16, -15]);
  assert.throws(() => A.flowGuidanceScale(NaN), /finite/);
});

/** The shipped class models of both families, loaded once. */
function models(): Array<{ family: string; den: Denoiser; editGrid: number[]; sampleGrid: number[] }> {
  const flow = loadMnistDenoiser(shippedWeightsPath('flow-class'));
  const ddpm = loadMnistDenoiser(shippedWeightsPath('class'));
  return [
    { family: 'flow', den: flow, editGrid: flowTimesteps(0.1, 0.5), sampleGrid: flowTimesteps(0.125) },
    // A short strided DDPM grid from index 20 of 30 (a light edit) and 8 steps from noise.
    { family: 'ddpm', den: ddpm, editGrid: A.stridedTimesteps(300, { stride: 40 }), sampleGrid: A.stridedTimesteps(300, { stride: 40 }) },
  ];
}

function digitImage(): tf.Tensor4D {
  // A plain "1": a bright vertical bar on black, in [0, 1].
  const a = new Float32Array(28 * 28);
  for (let y = 5; y < 23; y++) for (let x = 12; x < 16; x++) a[y * 28 + x] = 1;
  return tf.tensor4d(a, [1, 28, 28, 1]);
}

test('SDEdit, inpainting, an anagram with every view and a hybrid run through the same functions on the flow and the DDPM class model', async () => {
  await before();
  const im = digitImage();
  const mask = tf.tidy(() => tf.concat([tf.zeros([1, 14, 28, 1]), tf.ones([1, 14, 28, 1])], 1)) as tf.Tensor4D; // generate the lower half
  for (const { family, den, editGrid, sampleGrid } of models()) {
    const start = tf.memory().numTensors;
    const finite = (x: tf.Tensor4D, what: string) => {
      assert.deepEqual(x.shape, [1, 28, 28, 1], `${family} ${what}: shape`);
      assert.ok(tf.tidy(() => tf.all(tf.isFinite(x)).dataSync()[0]) === 1, `${family} ${what}: finite`);
    };
    const ed = A.sdedit(den, im, 1, { rng: new Rng(4), timesteps: editGrid, prompt: 'a handwritten 1', gamma: 5 });
    finite(ed, 'sdedit');
    // Inpainting keeps the upper half: exactly the original for flow (the path at t = 1 is the image),
    // the original noised to index 0 (√ᾱ₀ ≈ 0.99995, tiny noise) for DDPM.
    const inp = A.inpaint(den, im, mask, { rng: new Rng(5), timesteps: sampleGrid, prompt: 'a handwritten 7', gamma: 5 });
    finite(inp, 'inpaint');
    const keptErr = tf.tidy(
      () => tf.max(tf.abs(tf.sub(tf.slice(inp, [0, 0, 0, 0], [1, 14, 28, 1]), tf.slice(im, [0, 0, 0, 0], [1, 14, 28, 1])))).dataSync()[0],
    );
    if (family === 'flow') assert.equal(keptErr, 0, 'flow inpainting leaves the kept region exactly unchanged');
    else assert.ok(keptErr < 0.05, `DDPM inpainting keeps the region up to the last noise: ${keptErr}`);
    for (const view of Object.values(A.VIEWS)) {
      const ana = A.visualAnagrams(den, 'a handwritten 6', 'a handwritten 9', { rng: new Rng(6), timesteps: sampleGrid, gamma: 5, view });
      finite(ana, `anagram ${view.name}`);
      ana.dispose();
    }
    const hy = A.makeHybrids(den, 'a handwritten 0', 'a handwritten 1', { rng: new Rng(7), timesteps: sampleGrid, gamma: 5 });
    finite(hy, 'hybrid');
    for (const t of [ed, inp, hy]) t.dispose();
    assert.equal(tf.memory().numTensors, start, `${family}: no tensor left behind`);
    den.dispose?.();
  }
  im.dispose();
  mask.dispose();
});

/** den.predict's output as float64 numbers. */
function pred(den: Denoiser, x: Float64Array, t: number, prompt: string): Float64Array {
  const out = tf.tidy(() => den.predict(tf.tensor4d(Float32Array.from(x), [1, 28, 28, 1]), t, den.encodePrompt(prompt)).eps);
  const a = Float64Array.from(out.dataSync());
  out.dispose();
  return a;
}

test('flow SDEdit equals its float64 hand loop: x = (1−t₀)ε + t₀x₁, then Euler on v_u + γ(v_c − v_u); the anagram estimate equals its definition', async () => {
  await before();
  const den = loadMnistDenoiser(shippedWeightsPath('flow-class'));
  const im = digitImage();
  const grid = flowTimesteps(0.1, 0.6);
  const gamma = 3;
  const got = A.sdedit(den, im, 0, { rng: new Rng(11), timesteps: grid, prompt: 'a handwritten 4', gamma });
  // The reference: the same ε (the first draw of Rng(11)), then the loop written out in float64.
  const eps = tf.tidy(() => new Rng(11).normal([1, 28, 28, 1]).dataSync());
  const x1 = im.dataSync();
  let x = Float64Array.from(x1, (v, i) => (1 - grid[0]) * eps[i] + grid[0] * v);
  for (let i = 0; i + 1 < grid.length; i++) {
    const vc = pred(den, x, grid[i], 'a handwritten 4');
    const vu = pred(den, x, grid[i], '');
    const h = grid[i + 1] - grid[i];
    x = x.map((xv, j) => xv + h * (vu[j] + gamma * (vc[j] - vu[j])));
  }
  const g = got.dataSync();
  let worst = 0;
  for (let j = 0; j < g.length; j++) worst = Math.max(worst, Math.abs(g[j] - x[j]));
  assert.ok(worst < 2e-3, `max difference ${worst}`);
  got.dispose();

  // The anagram's estimate with the 180° rotation: (CFG(x) + rot⁻¹(CFG(rot x)))/2.
  const xt = tf.tensor4d(randArray(mulberry32(12), 784), [1, 28, 28, 1]);
  const est = A.anagramEstimator(den, den.encodePrompt('6'), den.encodePrompt('9'), den.encodePrompt(''), gamma, A.VIEWS.rot180)(xt, 0.3);
  const xs = Float64Array.from(xt.dataSync());
  const rot = (a: Float64Array) => Float64Array.from(a, (_, k) => a[783 - k]); // 180° of a 28×28 image = reversed order
  const c1 = pred(den, xs, 0.3, '6'),
    u1 = pred(den, xs, 0.3, '');
  const c2 = pred(den, rot(xs), 0.3, '9'),
    u2 = pred(den, rot(xs), 0.3, '');
  const e2 = rot(Float64Array.from(c2, (v, j) => u2[j] + gamma * (v - u2[j])));
  const e = est.eps.dataSync();
  worst = 0;
  for (let j = 0; j < 784; j++) worst = Math.max(worst, Math.abs(e[j] - (u1[j] + gamma * (c1[j] - u1[j]) + e2[j]) / 2));
  assert.ok(worst < 1e-4, `anagram estimate: max difference ${worst}`);
  est.eps.dispose();
  xt.dispose();
  im.dispose();
  den.dispose?.();
});

test('a scheduler of the other family is refused in one line; the DDPM scheduler noises as Eq. A.2', async () => {
  await before();
  const den = velocityFunctionDenoiser('field', [2, 2, 1], (x) => tf.zerosLike(x));
  const ddpm = new DDPMScheduler(ddpmSchedule(300), courseConfig('fixed_small'));
  const x = tf.ones([1, 2, 2, 1]) as tf.Tensor4D;
  assert.throws(
    () => A.denoiseLoop(den, x, 0, (xt) => ({ eps: tf.zerosLike(xt) }), { rng: new Rng(1), scheduler: ddpm }, 'test'),
    /a ddpm scheduler cannot step field, a flow model/,
  );
  const ab = ddpmSchedule(300).alphasCumprod[100];
  const noisy = tf.tidy(() => ddpm.addNoise(x, tf.fill([1, 2, 2, 1], 2) as tf.Tensor4D, 100).dataSync());
  assert.ok(Math.abs(noisy[0] - (Math.sqrt(ab) + Math.sqrt(1 - ab) * 2)) < 1e-5);
  x.dispose();
});
