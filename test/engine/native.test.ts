/**
 * The oneDNN addon (native/, lib/engine/native.ts): each kernel against the pure-JS cpu backend
 * (its stock kernels, the addon's lever off) over many shapes, strides, paddings, dilations and
 * batch sizes, the Part B UNet's exact layers included; GELU and BatchNorm on tensors large enough
 * to split between threads; two Adam steps of the UNet with and without the addon; flat tensor
 * count, primitive cache and memory over 10,000 calls; the cache's bound; the addon's own argument
 * checks (issue 32's crashes among them; nativeFuzz.test.ts makes thousands more); and the
 * fallback (DIFFUSION_NATIVE=0, a bad value). When the addon is not built the tests skip, unless
 * DIFFUSION_REQUIRE_NATIVE=1 (CI), where they fail.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { describeEngine, initEngine } from '../../lib/engine';
import { withLevers } from '../../lib/engine/levers';
import { NATIVE_CONV_GELU, NATIVE_POINTWISE, nativeStatus, type NativeAddon } from '../../lib/engine/native';
import { batchNormGeluTrain, batchNormTrain, gelu } from '../../lib/tensor/fusedOps';
import { Trainer } from '../../lib/training/trainer';
import { presetConfig } from '../../lib/training/presets';
import { setting } from '../../lib/config';
import { maxRelErr as relErr, mulberry32, randArray as rand } from '../helpers';

const status = nativeStatus();
const required = setting('DIFFUSION_REQUIRE_NATIVE') === '1';
const why = 'why' in status ? status.why : '';
const skip = status.addon || required ? false : `the oneDNN addon is not built (${why})`;
const addon = (): NativeAddon => {
  assert.ok(status.addon, `the oneDNN addon must be built here (DIFFUSION_REQUIRE_NATIVE=1): ${why}`);
  return status.addon;
};

/** fn on wasm with the addon, and on the cpu backend's own kernels (the reference). */
async function onBoth<T>(fn: () => T): Promise<{ got: T; ref: T }> {
  await tf.setBackend('cpu');
  const ref = withLevers({ native: false }, fn);
  await tf.setBackend('wasm');
  const got = withLevers({ native: true }, fn);
  return { got, ref };
}

type ConvCase = {
  n: number;
  h: number;
  w: number;
  cin: number;
  cout: number;
  k: number;
  s: number;
  pad: 'same' | 'valid' | number;
  dil?: number;
};

const CONV_CASES: ConvCase[] = [
  { n: 2, h: 8, w: 8, cin: 3, cout: 4, k: 3, s: 1, pad: 'same' },
  { n: 3, h: 9, w: 7, cin: 2, cout: 5, k: 3, s: 2, pad: 1 },
  { n: 2, h: 8, w: 8, cin: 4, cout: 3, k: 4, s: 2, pad: 'same' },
  { n: 1, h: 7, w: 7, cin: 3, cout: 2, k: 7, s: 7, pad: 'valid' },
  { n: 2, h: 10, w: 6, cin: 2, cout: 2, k: 5, s: 3, pad: 'valid' },
  { n: 5, h: 6, w: 6, cin: 5, cout: 4, k: 1, s: 1, pad: 0 },
  { n: 2, h: 11, w: 11, cin: 3, cout: 3, k: 3, s: 2, pad: 'same' },
  { n: 1, h: 5, w: 9, cin: 2, cout: 3, k: 2, s: 2, pad: 'valid' },
  { n: 2, h: 12, w: 12, cin: 3, cout: 4, k: 3, s: 1, pad: 'same', dil: 2 },
  { n: 1, h: 13, w: 10, cin: 2, cout: 3, k: 3, s: 1, pad: 'valid', dil: 3 },
  { n: 2, h: 12, w: 12, cin: 2, cout: 2, k: 5, s: 2, pad: 2 },
  { n: 7, h: 4, w: 4, cin: 9, cout: 17, k: 3, s: 1, pad: 1 },
  // A 1×1 strided convolution whose dW oneDNN 2.6.3 gets wrong (heap corruption): dW falls back.
  { n: 1, h: 6, w: 6, cin: 3, cout: 1, k: 1, s: 2, pad: 'valid' },
  // One output channel: the addon's direct kernels (not oneDNN), strides, pads and dilations included.
  { n: 3, h: 9, w: 7, cin: 5, cout: 1, k: 3, s: 1, pad: 1 },
  { n: 2, h: 10, w: 11, cin: 3, cout: 1, k: 4, s: 2, pad: 'same' },
  { n: 2, h: 9, w: 9, cin: 17, cout: 1, k: 3, s: 3, pad: 'valid' },
  { n: 2, h: 12, w: 10, cin: 4, cout: 1, k: 3, s: 1, pad: 'same', dil: 2 },
  // …and the channel counts whose kernels hold 16·C channels in registers (C = 1, 2, 4, 8).
  { n: 2, h: 8, w: 8, cin: 16, cout: 1, k: 3, s: 1, pad: 1 },
  { n: 1, h: 7, w: 9, cin: 32, cout: 1, k: 4, s: 2, pad: 'same' },
  { n: 2, h: 6, w: 6, cin: 64, cout: 1, k: 3, s: 1, pad: 1 },
  { n: 1, h: 5, w: 5, cin: 128, cout: 1, k: 2, s: 1, pad: 'valid' },
  // The Part B UNet's layers (D = 8, batch 4): ConvBlock, DownConv, the 7×7 bottleneck, the last layer.
  { n: 4, h: 28, w: 28, cin: 8, cout: 1, k: 3, s: 1, pad: 1 },
  { n: 4, h: 28, w: 28, cin: 1, cout: 8, k: 3, s: 1, pad: 1 },
  { n: 4, h: 28, w: 28, cin: 16, cout: 8, k: 3, s: 1, pad: 1 },
  { n: 4, h: 28, w: 28, cin: 8, cout: 8, k: 3, s: 2, pad: 1 },
  { n: 4, h: 7, w: 7, cin: 16, cout: 16, k: 3, s: 1, pad: 1 },
];

test('the engine line names oneDNN, and the addon serves the wasm backend', { skip }, async () => {
  const info = await initEngine({ engine: 'wasm', quiet: true });
  assert.match(info.native ?? '', /^oneDNN \d+\.\d+\.\d+$/, `engine info: ${JSON.stringify(info)}`);
  assert.match(describeEngine(info), /^engine: wasm \+ oneDNN \d+\.\d+\.\d+ \(backend wasm, \d+ threads?(, wasm kernels on 1)?\)$/);
  assert.equal(addon().threads(), info.threads, 'oneDNN runs on as many threads as the wasm engine');
  for (const name of Object.values(NATIVE_POINTWISE)) assert.ok(tf.getKernel(name, 'wasm'), `${name} registered on wasm`);
});

test(
  'conv2d forward, dx and dW (oneDNN) match the cpu backend over shapes, strides, paddings, dilations and batch sizes',
  { skip },
  async () => {
    await initEngine({ engine: 'wasm', quiet: true });
    const rng = mulberry32(21);
    const cachedBefore = addon().cachedPrimitives();
    for (const c of CONV_CASES) {
      const dil = c.dil ?? 1;
      const xa = rand(rng, c.n * c.h * c.w * c.cin);
      const wa = rand(rng, c.k * c.k * c.cin * c.cout);
      const f = () =>
        tf.tidy(() => {
          const x = tf.tensor4d(xa, [c.n, c.h, c.w, c.cin]);
          const w = tf.tensor4d(wa, [c.k, c.k, c.cin, c.cout]);
          const y = tf.conv2d(x, w, c.s, c.pad, 'NHWC', dil);
          // A fixed random weighting of y as the loss, so dx and dW see every output.
          const t = tf.tensor(rand(mulberry32(y.size), y.size), y.shape);
          const out = [y.dataSync().slice() as Float32Array];
          if (dil === 1) {
            const [dx, dw] = tf.grads((xx: tf.Tensor, ww: tf.Tensor) =>
              tf
                .conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.s, c.pad)
                .mul(t)
                .sum(),
            )([x, w]);
            out.push(dx.dataSync().slice() as Float32Array, dw.dataSync().slice() as Float32Array);
          }
          return out;
        });
      const { got, ref } = await onBoth(f);
      for (let i = 0; i < ref.length; i++)
        assert.ok(relErr(got[i], ref[i]) < 1e-5, `${['y', 'dx', 'dW'][i]} of ${JSON.stringify(c)}: ${relErr(got[i], ref[i])}`);
    }
    assert.ok(addon().cachedPrimitives() > cachedBefore, 'the convolutions ran in oneDNN (new cached primitives)');
  },
);

test(
  'fused conv2d with bias and linear/relu (oneDNN, or the direct kernels) matches the cpu backend; other activations fall back',
  { skip },
  async () => {
    await initEngine({ engine: 'wasm', quiet: true });
    const rng = mulberry32(5);
    for (const activation of ['linear', 'relu', 'elu'] as const) {
      // The first eight cases, and those of the direct kernels (one output channel).
      for (const c of CONV_CASES.filter((k, i) => i < 8 || k.cout === 1)) {
        const xa = rand(rng, c.n * c.h * c.w * c.cin);
        const wa = rand(rng, c.k * c.k * c.cin * c.cout);
        const ba = rand(rng, c.cout);
        const f = () =>
          tf.tidy(
            () =>
              tf.fused
                .conv2d({
                  x: tf.tensor4d(xa, [c.n, c.h, c.w, c.cin]),
                  filter: tf.tensor4d(wa, [c.k, c.k, c.cin, c.cout]),
                  strides: c.s,
                  pad: c.pad,
                  bias: tf.tensor1d(ba),
                  activation,
                })
                .dataSync()
                .slice() as Float32Array,
          );
        const { got, ref } = await onBoth(f);
        assert.ok(relErr(got, ref) < 1e-5, `${activation} ${JSON.stringify(c)}: ${relErr(got, ref)}`);
      }
    }
  },
);

test('conv2dTranspose (oneDNN backward data) matches the cpu backend, the UNet up-convolutions included', { skip }, async () => {
  await initEngine({ engine: 'wasm', quiet: true });
  const rng = mulberry32(13);
  const cases = [
    { n: 2, h: 7, cin: 4, cout: 3, k: 4, s: 2, pad: 1 as const, out: 14 },
    { n: 4, h: 14, cin: 16, cout: 8, k: 4, s: 2, pad: 1 as const, out: 28 }, // UpConv, D = 8
    { n: 4, h: 1, cin: 16, cout: 16, k: 7, s: 7, pad: 'valid' as const, out: 7 }, // Unflatten
    { n: 3, h: 1, cin: 5, cout: 6, k: 3, s: 2, pad: 'valid' as const, out: 3 },
    { n: 2, h: 4, cin: 3, cout: 5, k: 3, s: 2, pad: 'same' as const, out: 8 },
    { n: 1, h: 5, cin: 2, cout: 3, k: 3, s: 2, pad: 'valid' as const, out: 11 },
  ];
  for (const c of cases) {
    const xa = rand(rng, c.n * c.h * c.h * c.cin);
    const wa = rand(rng, c.k * c.k * c.cout * c.cin);
    const f = () =>
      tf.tidy(() => {
        const x = tf.tensor4d(xa, [c.n, c.h, c.h, c.cin]);
        const w = tf.tensor4d(wa, [c.k, c.k, c.cout, c.cin]);
        const fwd = (xx: tf.Tensor, ww: tf.Tensor) =>
          tf.conv2dTranspose(xx as tf.Tensor4D, ww as tf.Tensor4D, [c.n, c.out, c.out, c.cout], c.s, c.pad);
        const y = fwd(x, w);
        const t = tf.tensor(rand(mulberry32(y.size), y.size), y.shape);
        const [dx, dw] = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => fwd(xx, ww).mul(t).sum())([x, w]);
        return [y, dx, dw].map((v) => v.dataSync().slice() as Float32Array);
      });
    const { got, ref } = await onBoth(f);
    for (let i = 0; i < 3; i++)
      assert.ok(relErr(got[i], ref[i]) < 1e-5, `${['y', 'dx', 'dW'][i]} of ${JSON.stringify(c)}: ${relErr(got[i], ref[i])}`);
  }
});

test(
  'GELU, its gradient, BatchNorm, BatchNorm+GELU and Concat in the addon match the JS kernels on tensors split between threads',
  { skip },
  async () => {
    await initEngine({ engine: 'wasm', quiet: true });
    const rng = mulberry32(17);
    const shape: [number, number, number, number] = [16, 28, 28, 32]; // 401,408 values
    const xa = rand(rng, 16 * 28 * 28 * 32).map((v) => v * 4 + 0.3);
    const wa = rand(rng, xa.length);
    const ga = rand(rng, 32).map((v) => v + 1.5);
    const ba = rand(rng, 32);
    const biasA = rand(rng, 32).map((v) => 3 * v);
    const f = () =>
      tf.tidy(() => {
        const x = tf.tensor4d(xa, shape);
        const w = tf.tensor4d(wa, shape);
        const g = tf.tensor1d(ga);
        const b = tf.tensor1d(ba);
        const loss = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) =>
          gelu(batchNormTrain(xx as tf.Tensor4D, gg as tf.Tensor1D, bb as tf.Tensor1D, 1e-5).y)
            .mul(w)
            .sum();
        const bn = batchNormTrain(x, g, b, 1e-5);
        const [dx, dg, db] = tf.grads(loss)([x, g, b]);
        const cat = tf.concat([x, w], 3);
        // GELU(BN(x + bias)) in one kernel and its gradient, against batchNormTrain then gelu.
        const bias = tf.tensor1d(biasA);
        const fusedLoss = (xx: tf.Tensor, cb: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) =>
          batchNormGeluTrain(xx as tf.Tensor4D, cb as tf.Tensor1D, gg as tf.Tensor1D, bb as tf.Tensor1D, 1e-5)
            .z.mul(w)
            .sum();
        const fused = batchNormGeluTrain(x, bias, g, b, 1e-5);
        const [fdx, fdbias, fdg, fdb] = tf.grads(fusedLoss)([x, bias, g, b]);
        return [gelu(x), bn.y, bn.mean, bn.variance, dx, dg, db, cat, fused.z, fused.mean, fused.variance, fdx, fdg, fdb, fdbias].map(
          (t) => t.dataSync().slice() as Float32Array,
        );
      });
    // Reference: the same library code with the addon's lever off (the JS passes and wasm kernels).
    await tf.setBackend('wasm');
    const ref = withLevers({ native: false }, f);
    const prof = await tf.profile(() => void withLevers({ native: true }, f));
    const ran = new Set(prof.kernels.map((k) => k.name));
    // (NativeAdam and NativeAdamMany: test/partb/adamFused.test.ts.)
    const adams: string[] = [NATIVE_POINTWISE.adam, NATIVE_POINTWISE.adamMany];
    for (const name of Object.values(NATIVE_POINTWISE)) if (!adams.includes(name)) assert.ok(ran.has(name), `${name} ran`);
    const got = withLevers({ native: true }, f);
    const names = ['gelu', 'bn y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta', 'concat'];
    names.push(...['z', 'mean', 'variance', 'dx', 'dgamma', 'dbeta'].map((n) => `fused ${n}`));
    for (let i = 0; i < names.length; i++) assert.ok(relErr(got[i], ref[i]) < 2e-5, `${names[i]}: ${relErr(got[i], ref[i])}`);
    // The bias before a BatchNorm has an exact gradient of zero: both give rounding noise only.
    const dbeta = Math.max(...got[13]!.map(Math.abs));
    for (const d of [got[14]!, ref[14]!])
      assert.ok(Math.max(...d.map(Math.abs)) < 1e-4 * dbeta, `bias gradient ${Math.max(...d.map(Math.abs))} vs dβ ${dbeta}`);
  },
);

test(
  'eval UNet: conv + folded BatchNorm + GELU as one oneDNN primitive matches the separate kernels; it runs only without a gradient tape',
  { skip },
  async () => {
    await initEngine({ engine: 'wasm', quiet: true });
    const trainer = new Trainer(presetConfig('class', 'cpu', { D: 8, batch: 4, seed: 5 }));
    const x = tf.tidy(() => tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 6)) as tf.Tensor4D;
    trainer.trainStep(x, [1, 2, 3, 4], 1e-2); // running statistics and weights away from their initial values
    const c = tf.tidy(() => tf.oneHot(tf.tensor1d([1, 2, 3, 4], 'int32'), 10).toFloat()) as tf.Tensor2D;
    const t = tf.fill([4, 1], 0.3) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    const forward = () => tf.tidy(() => trainer.net.apply({ x, t, c }, false).dataSync().slice() as Float32Array);
    const prof = await tf.profile(() => void withLevers({ fusedConvGelu: true }, forward));
    const fusedCalls = prof.kernels.filter((k) => k.name === NATIVE_CONV_GELU).length;
    assert.ok(fusedCalls >= 10, `${NATIVE_CONV_GELU} ran ${fusedCalls} times`);
    const got = withLevers({ fusedConvGelu: true }, forward);
    const ref = withLevers({ fusedConvGelu: false }, forward);
    assert.ok(relErr(got, ref) < 1e-5, `fused vs separate: ${relErr(got, ref)}`);
    // Under a gradient tape the separate kernels run (the fused one has no gradient).
    const taped = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(() => tf.tidy(() => trainer.net.apply({ x, t, c }, false).sum() as tf.Scalar));
      tf.dispose([value, ...Object.values(grads)]);
    });
    assert.equal(taped.kernels.filter((k) => k.name === NATIVE_CONV_GELU).length, 0);
    assert.equal(tf.memory().numTensors, before, 'tensor count');
    tf.dispose([x, c, t]);
    trainer.dispose();
  },
);

test('two Adam steps of the Part B UNet agree within 1e-4 with and without the addon', { skip }, async () => {
  await initEngine({ engine: 'wasm', quiet: true });
  const x = tf.tidy(() => tf.randomUniform([8, 28, 28, 1], 0, 1, 'float32', 3)) as tf.Tensor4D;
  const labels = [0, 1, 2, 3, 4, 5, 6, 7];
  const run = (nat: boolean) =>
    withLevers({ native: nat }, () => {
      const trainer = new Trainer(presetConfig('class', 'cpu', { D: 8, batch: 8, seed: 4 }));
      const losses = [trainer.trainStep(x, labels, 1e-3), trainer.trainStep(x, labels, 1e-3)];
      const params = [...trainer.net.store.params].map(([name, v]) => [name, v.dataSync().slice() as Float32Array] as const);
      trainer.dispose();
      return { losses, params };
    });
  const before = tf.memory().numTensors;
  const on = run(true);
  const off = run(false);
  assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(on.losses[i] - off.losses[i]) < 1e-4, `loss ${i}: ${on.losses[i]} vs ${off.losses[i]}`);
  // A convolution's bias that a BatchNorm normalizes away (P.conv.bias beside P.bn) has an exact
  // gradient of zero: what either engine computes for it is rounding noise, and Adam's first steps
  // move it by ±lr whatever the noise's size. Those may differ by up to 2·lr; every other
  // parameter has a real gradient and must agree.
  const names = new Set(on.params.map(([n]) => n));
  const noiseOnly = (n: string) => n.endsWith('.conv.bias') && names.has(`${n.slice(0, -'.conv.bias'.length)}.bn.weight`);
  assert.ok(on.params.some(([n]) => noiseOnly(n)) && on.params.some(([n]) => !noiseOnly(n)));
  let worst = 0;
  let where = '';
  for (let i = 0; i < on.params.length; i++) {
    const [name, a] = on.params[i];
    const b = off.params[i][1];
    for (let j = 0; j < a.length; j++) {
      const d = Math.abs(a[j] - b[j]);
      if (noiseOnly(name)) assert.ok(d <= 2e-3 + 1e-7, `${name}: ${d}`);
      else if (d > worst) {
        worst = d;
        where = name;
      }
    }
  }
  assert.ok(worst < 1e-4, `largest parameter difference ${worst} in ${where}`);
  x.dispose();
});

test('10,000 convolutions and 30 training steps: tensor count, primitive cache and memory stay flat', { skip }, async () => {
  await initEngine({ engine: 'wasm', quiet: true });
  const x = tf.randomNormal([2, 8, 8, 4], 0, 1, 'float32', 1) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, 4, 4], 0, 1, 'float32', 2) as tf.Tensor4D;
  const step = () =>
    tf.tidy(() => {
      const [dx, dw] = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => gelu(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 1, 'same')).sum())([
        x,
        w,
      ]);
      return void [dx, dw];
    });
  for (let i = 0; i < 100; i++) step();
  const tensors = tf.memory().numTensors;
  const cached = addon().cachedPrimitives();
  global.gc?.();
  const rss = process.memoryUsage().rss;
  for (let i = 0; i < 3400; i++) step(); // 3 convolutions a step: forward, dx, dW
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(addon().cachedPrimitives(), cached, 'one cached primitive per shape, made once');
  const grown = (process.memoryUsage().rss - rss) / 2 ** 20;
  assert.ok(grown < 64, `process memory grew by ${grown.toFixed(1)} MiB over 10,200 convolutions`);
  tf.dispose([x, w]);

  const trainer = new Trainer(presetConfig('time', 'cpu', { D: 8, batch: 8, seed: 1 }));
  const batch = tf.tidy(() => tf.randomUniform([8, 28, 28, 1], 0, 1, 'float32', 9)) as tf.Tensor4D;
  trainer.trainStep(batch);
  const count = tf.memory().numTensors;
  for (let i = 0; i < 30; i++) trainer.trainStep(batch);
  assert.equal(tf.memory().numTensors, count, 'training steps leave the tensor count flat');
  trainer.dispose();
  batch.dispose();
});

test('the addon refuses arrays that do not match the geometry, with one line naming the argument', { skip }, () => {
  const a = addon();
  const geom = Int32Array.from([1, 4, 4, 2, 4, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1]);
  const x = new Float32Array(32);
  const w = new Float32Array(54);
  assert.throws(() => a.conv(0, x, w, null, new Float32Array(47), geom, 0), /array lengths do not match the geometry/);
  assert.throws(() => a.conv(0, x.subarray(1), w, null, new Float32Array(48), geom, 0), /array lengths do not match/);
  assert.throws(() => a.conv(0, x, w, new Float32Array(2), new Float32Array(48), geom, 0), /bias must have Cout elements/);
  assert.throws(
    () => a.conv(1, x, w, null, new Float32Array(48), Int32Array.from([...geom].map((v, i) => (i === 9 ? 0 : v))), 0),
    /positive/,
  );
  a.conv(0, x, w, null, new Float32Array(48), geom, 0); // the right lengths run
  assert.throws(
    () => a.gelu(x, new Float32Array(31)),
    /^Error: diffusion_native\.gelu: y \(argument 1\) must be a Float32Array of 32 values, got 31$/,
  );
  assert.throws(() => a.bnStats(x, 5, new Float32Array(5), new Float32Array(5)), /C must be a positive divisor/);
  assert.throws(() => a.copyChunks(x, 8, 4, new Float32Array(16), 4, 0, 8, 4), /run past an array/);
  // Issue 32's crashes, now one-line errors (test/engine/nativeFuzz.test.ts makes thousands more).
  const f16 = () => new Float32Array(16);
  const cases: Array<[() => unknown, RegExp]> = [
    [() => (a.setThreads as (...v: unknown[]) => void)(), /setThreads: expected 1 argument \(n\), got 0$/],
    [() => a.setThreads('x' as unknown as number), /setThreads: n must be a number, got a string$/],
    [() => a.conv('x' as unknown as 0, x, w, null, new Float32Array(48), geom, 0), /conv: op must be a number, got a string$/],
    [() => a.conv(NaN as 0, x, w, null, new Float32Array(48), geom, 0), /conv: op must be a whole number from 0 to 2, got NaN$/],
    [() => a.conv((2 ** 32) as 0, x, w, null, new Float32Array(48), geom, 0), /got 4294967296$/],
    [() => (a.gelu as (...v: unknown[]) => void)(), /gelu: expected 2 arguments \(x, y\), got 0$/],
    [() => (a.geluGrad as (...v: unknown[]) => void)(x, x), /geluGrad: expected 3 arguments/],
    [() => a.copyChunks(f16(), 1.9, 0, f16(), 1, 0, 1, 2), /srcStride must be a whole number from 0 to 9007199254740992, got 1\.9$/],
    [() => a.copyChunks(f16(), Infinity, 0, f16(), 1, 0, 1, 2), /got Infinity$/],
    [() => a.copyChunks(f16(), 2 ** 62 + 2 ** 40, 0, f16(), 4, 0, 4, 2), /srcStride must be a whole number/],
    [() => a.copyChunks(f16(), 2 ** 53, 0, f16(), 4, 0, 4, 2), /the copies would run past an array$/],
    [() => a.copyChunks(f16(), 0, 0, f16(), 0, 2 ** 53 - 4, 4, 1), /the copies would run past an array$/],
    [() => a.bnStats(new Float32Array(0), 8, new Float32Array(8), new Float32Array(8)), /bnStats: the tensor holds no rows/],
  ];
  for (const [call, message] of cases)
    assert.throws(call, (e: Error) => message.test(e.message) && !e.message.includes('\n'), String(call));
});

test('the primitive cache is bounded: the least recently used go, and an evicted shape is made again', { skip }, () => {
  const a = addon();
  const cap = a.cacheCapacity();
  assert.ok(cap >= 64 && cap <= 4096, `capacity ${cap}`);
  a.clearCache();
  // A 1×1 convolution of one pixel with Cin = 1 and Cout = co: y = x·w, one primitive per co.
  const conv = (co: number) => {
    const w = Float32Array.from({ length: co }, (_, i) => i + 1);
    const y = new Float32Array(co);
    a.conv(0, Float32Array.of(2), w, null, y, Int32Array.from([1, 1, 1, 1, 1, 1, co, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]), 0);
    return y;
  };
  for (let co = 1; co <= cap + 40; co++) conv(co);
  assert.equal(a.cachedPrimitives(), cap, 'no more than the capacity');
  assert.deepEqual([...conv(1)], [2], 'the first shape, evicted, is made again and right');
  assert.equal(a.cachedPrimitives(), cap);
  a.clearCache();
  assert.equal(a.cachedPrimitives(), 0);
});

const ENGINE = path.resolve(__dirname, '..', '..', 'lib', 'engine', 'index.js');
function childEngine(env: Record<string, string>): { status: number | null; out: string } {
  const code = `const e = require(${JSON.stringify(ENGINE)}); e.initEngine({ engine: 'wasm' }).then(() => process.exit(0), (err) => { console.error('error: ' + err.message); process.exit(1); })`;
  const r = spawnSync(process.execPath, ['-e', code], {
    encoding: 'utf8',
    env: { ...process.env, DIFFUSION_ENGINE: '', ...env },
    timeout: 60_000,
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

test('DIFFUSION_NATIVE=0 keeps the wasm kernels and says why in one line; a bad value is an error before any engine starts', () => {
  const off = childEngine({ DIFFUSION_NATIVE: '0' });
  assert.equal(off.status, 0, off.out);
  assert.equal(
    off.out,
    'engine: wasm (backend wasm, 2 threads)\noneDNN convolutions off: turned off by DIFFUSION_NATIVE=0\n'.replace(
      '2 threads',
      /\(backend wasm, (\d+ threads?)/.exec(off.out)?.[1] ?? '',
    ),
  );
  const bad = childEngine({ DIFFUSION_NATIVE: 'yes' });
  assert.equal(bad.status, 1, bad.out);
  assert.equal(
    bad.out,
    'error: DIFFUSION_NATIVE="yes" is not 0 or 1: set 0 to turn the oneDNN kernels off, 1 or unset to use them when built\n',
  );
});
