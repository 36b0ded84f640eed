/**
 * bf16 convolutions (DIFFUSION_PRECISION / initEngine's precision / --precision): on a CPU with
 * AVX512-BF16 or AMX, the forward pass, the input gradient and the filter gradient equal a float64
 * convolution of the bf16-rounded inputs to fp32 accumulation error (so the addon rounds the inputs
 * and accumulates in fp32, as PyTorch's autocast does), and differ from fp32 by bf16's rounding
 * only; a training step's loss stays within 2% of fp32's. Without bf16 in the CPU, or without the
 * addon, asking for bf16 gives one line and fp32.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { describeEngine, initEngine } from '../../lib/engine';
import { cpuHasBf16, nativeStatus, setNativePrecision } from '../../lib/engine/native';
import { withLevers } from '../../lib/engine/levers';
import { Trainer } from '../../lib/training/trainer';
import { presetConfig } from '../../lib/training/presets';
import { mulberry32 } from '../helpers';

const flags = (() => {
  try {
    return /^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  } catch {
    return '';
  }
})();
const skip = !nativeStatus().addon ? 'the oneDNN addon is not built' : !cpuHasBf16(flags) ? 'this CPU has no bf16 instructions' : false;

/** x rounded to bf16 (nearest even), as a float. */
function bf16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] = ((u[0]! + 0x7fff + ((u[0]! >>> 16) & 1)) >>> 16) << 16;
  return f[0]!;
}

test('cpuHasBf16 reads AVX512-BF16 or AMX-BF16 from the CPU flags', () => {
  assert.equal(cpuHasBf16('fpu sse avx512f avx512_bf16 avx512vl'), true);
  assert.equal(cpuHasBf16('fpu amx_bf16 amx_tile'), true);
  assert.equal(cpuHasBf16('fpu sse avx2 avx512f avx512_bf16x'), false);
  assert.equal(cpuHasBf16(''), false);
});

test('bf16 asked for without bf16 in the CPU: one line, and fp32 runs', async () => {
  await initEngine({ engine: 'wasm', quiet: true });
  const r = setNativePrecision('bf16', 'fpu sse avx2');
  assert.equal(r.precision, 'fp32');
  assert.ok(r.why && !r.why.includes('\n') && /running fp32/.test(r.why), String(r.why));
  if (nativeStatus().addon) assert.equal(nativeStatus().addon!.precision(), 0);
  await assert.rejects(initEngine({ precision: 'fp16' as never }), /precision "fp16" is not fp32 or bf16/);
});

test('bf16 convolutions: fp32 accumulation of bf16-rounded inputs (forward, input and filter gradients)', { skip }, async () => {
  const info = await initEngine({ engine: 'wasm', quiet: true, precision: 'bf16' });
  try {
    assert.equal(info.precision, 'bf16');
    assert.match(describeEngine(info), /bf16 convolutions/);
    const r = mulberry32(3);
    const [N, H, W, Ci, Co, K] = [2, 9, 9, 16, 24, 3];
    const xs = Float32Array.from({ length: N * H * W * Ci }, () => 2 * r() - 1);
    const ws = Float32Array.from({ length: K * K * Ci * Co }, () => (2 * r() - 1) * 0.3);
    const gs = Float32Array.from({ length: N * H * W * Co }, () => 2 * r() - 1);
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor4d(xs, [N, H, W, Ci]);
        const w = tf.tensor4d(ws, [K, K, Ci, Co]);
        const g = tf.tensor4d(gs, [N, H, W, Co]);
        const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), g));
        const [dx, dw] = tf.grads(f)([x, w]);
        return [tf.conv2d(x, w, 1, 'same'), dx!, dw!].map((t) => t.dataSync().slice() as Float32Array);
      });
    const [y, dx, dw] = run();
    // float64 references from the bf16-rounded inputs (pad 1 each side: 'same' for k = 3).
    const xb = xs.map(bf16);
    const wb = ws.map(bf16);
    const gb = gs.map(bf16);
    const at = (n: number, h: number, w: number, c: number, C: number) => ((n * H + h) * W + w) * C + c;
    const yRef = new Float64Array(y!.length);
    const dxRef = new Float64Array(dx!.length);
    const dwRef = new Float64Array(dw!.length);
    for (let n = 0; n < N; n++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++)
          for (let kh = 0; kh < K; kh++)
            for (let kw = 0; kw < K; kw++) {
              const [ih, iw] = [h + kh - 1, w + kw - 1];
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              for (let ci = 0; ci < Ci; ci++)
                for (let co = 0; co < Co; co++) {
                  const wi = ((kh * K + kw) * Ci + ci) * Co + co;
                  yRef[at(n, h, w, co, Co)] += xb[at(n, ih, iw, ci, Ci)]! * wb[wi]!;
                  dxRef[at(n, ih, iw, ci, Ci)] += gb[at(n, h, w, co, Co)]! * wb[wi]!;
                  dwRef[wi] += xb[at(n, ih, iw, ci, Ci)]! * gb[at(n, h, w, co, Co)]!;
                }
            }
    const worst = (got: Float32Array, ref: Float64Array) => {
      const scale = Math.max(...Array.from(ref, Math.abs));
      return Math.max(...Array.from(got, (v, i) => Math.abs(v - ref[i]!))) / scale;
    };
    for (const [name, got, ref] of [
      ['forward', y!, yRef],
      ['input gradient', dx!, dxRef],
      ['filter gradient', dw!, dwRef],
    ] as const)
      assert.ok(worst(got, ref) < 2e-6, `${name}: ${worst(got, ref)} from the bf16-input reference`);
    // And bf16 differs from fp32 (its rounding is there), by about bf16's precision.
    await initEngine({ quiet: true, precision: 'fp32' });
    const [y32] = run();
    const d = worst(y!, Float64Array.from(y32!));
    assert.ok(d > 1e-5 && d < 2e-2, `bf16 vs fp32 forward: ${d}`);
  } finally {
    await initEngine({ quiet: true, precision: 'fp32' });
  }
});

test('a bf16 training step of the Part B UNet: the loss within 2% of fp32, tensor count flat', { skip }, async () => {
  await initEngine({ engine: 'wasm', quiet: true });
  const x = tf.tidy(() => tf.randomUniform([16, 28, 28, 1], 0, 1, 'float32', 8)) as tf.Tensor4D;
  const labels = Array.from({ length: 16 }, (_, i) => i % 10);
  const before = tf.memory().numTensors;
  const losses = async (precision: 'fp32' | 'bf16') => {
    await initEngine({ quiet: true, precision });
    const trainer = new Trainer(presetConfig('class', 'cpu', { D: 16, batch: 16, seed: 2 }));
    const out = [1, 2, 3].map(() => trainer.trainStep(x, labels, 1e-3));
    trainer.dispose();
    return out;
  };
  try {
    const bf = await losses('bf16');
    const fp = await losses('fp32');
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(bf[i]! - fp[i]!) < 0.02 * fp[i]!, `step ${i}: bf16 ${bf[i]} vs fp32 ${fp[i]}`);
    assert.equal(tf.memory().numTensors, before, 'tensor count');
  } finally {
    await initEngine({ quiet: true, precision: 'fp32' });
    x.dispose();
  }
});

test(
  'bf16 training keeps each activation bf16 copy for the filter gradient (lever keepBf16): the same steps bit for bit, every copy released',
  { skip },
  async () => {
    const addon = nativeStatus().addon!;
    const x = tf.tidy(() => tf.randomUniform([8, 28, 28, 1], 0, 1, 'float32', 9)) as tf.Tensor4D;
    const labels = Array.from({ length: 8 }, (_, i) => i % 10);
    const run = async (keepBf16: boolean) =>
      withLevers({ keepBf16 }, () => {
        const trainer = new Trainer(presetConfig('class', 'cpu', { D: 16, batch: 8, seed: 4 }));
        const losses = [1, 2].map(() => trainer.trainStep(x, labels, 1e-3));
        const weights = [...trainer.net.store.params.values()].map((v) => v.dataSync().slice());
        trainer.dispose();
        return { losses, weights };
      });
    try {
      await initEngine({ engine: 'wasm', quiet: true, precision: 'bf16' });
      assert.equal(addon.keptBf16(), 0);
      // Inside a recorded forward pass the conv inputs' copies are kept; after the gradients, none.
      const w = tf.tidy(() => tf.randomNormal([3, 3, 1, 8], 0, 0.3, 'float32', 1)) as tf.Tensor4D;
      let keptInForward = 0;
      const input = tf.add(x, 0); // its own memory: x's copy would live as long as x
      const g = tf.grads((xx: tf.Tensor) => {
        const y = tf.conv2d(xx as tf.Tensor4D, w, 1, 'same');
        keptInForward = addon.keptBf16();
        return tf.sum(tf.square(y));
      })([input]);
      assert.ok(keptInForward >= 1, `copies kept in the forward pass: ${keptInForward}`);
      tf.dispose([...g, input, w]);
      assert.equal(addon.keptBf16(), 0, 'copies left after the gradient');
      const before = tf.memory().numTensors;
      const kept = await run(true);
      assert.equal(addon.keptBf16(), 0, 'copies left after training');
      assert.equal(tf.memory().numTensors, before, 'tensor count');
      const plain = await run(false);
      assert.deepEqual(kept.losses, plain.losses);
      kept.weights.forEach((v, i) => assert.deepEqual(v, plain.weights[i], `parameter ${i}`));
    } finally {
      await initEngine({ quiet: true, precision: 'fp32' });
      x.dispose();
    }
  },
);

test(
  'the addon refuses bad keep ids and release ids with one line',
  { skip: nativeStatus().addon ? false : 'the oneDNN addon is not built' },
  () => {
    const addon = nativeStatus().addon!;
    const g = Int32Array.from([1, 3, 3, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]);
    const x = new Float32Array(9);
    const call =
      (...extra: unknown[]) =>
      () =>
        (addon.conv as (...a: unknown[]) => void)(0, x, new Float32Array(1), null, new Float32Array(9), g, 0, ...extra);
    assert.throws(call(-1, 0), /^Error: diffusion_native\.conv: keepA must be a whole number from 0 to /);
    assert.throws(call(1, 'b'), /^Error: diffusion_native\.conv: keepB must be a number, got a string$/);
    assert.throws(call(1), /expected 7 arguments .*, got 8$/);
    assert.throws(
      () => (addon.releaseBf16 as (v: unknown) => void)(0),
      /^Error: diffusion_native\.releaseBf16: id must be a whole number from 1 to /,
    );
    assert.throws(() => (addon.releaseBf16 as (v: unknown) => void)(NaN), /^Error: diffusion_native\.releaseBf16: id must be/);
    addon.releaseBf16(123456); // nothing kept under it: nothing to do
    call(0, 0)();
  },
);
