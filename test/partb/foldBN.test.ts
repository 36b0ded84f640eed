/**
 * Eval-mode BatchNorm folded into the convolutions (lever foldBatchNorm) gives the same outputs as the
 * unfolded network (convolution, then BN with the running statistics), for all three UNets, with
 * non-trivial BN parameters and running statistics; training mode is unaffected by the switch.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { withLevers } from '../../lib/engine/levers';
import { UNet, type UNetKind } from '../../lib/models/unet';
import { mulberry32 } from '../helpers';

/** Sets every BN weight/bias/running stat to seeded random values (running_var in [0.2, 2.2)). */
function randomizeBN(net: UNet, seed: number): void {
  const r = mulberry32(seed);
  for (const [name, v] of net.store.named()) {
    if (!/\.bn\./.test(name)) continue;
    const vals = Float32Array.from({ length: v.size }, () =>
      name.endsWith('running_var') ? 0.2 + 2 * r() : name.endsWith('.weight') ? 0.5 + r() : r() - 0.5,
    );
    const t = tf.tensor(vals, v.shape);
    v.assign(t);
    t.dispose();
  }
}

function outputs(net: UNet, training: boolean): Float32Array {
  const B = 3;
  const r = mulberry32(4);
  return tf.tidy(() => {
    const x = tf.tensor4d(
      Float32Array.from({ length: B * 784 }, () => r()),
      [B, 28, 28, 1],
    );
    const t = tf.tensor2d([0.1, 0.5, 0.9], [B, 1]);
    const c = tf.oneHot(tf.tensor1d([1, 4, 7], 'int32'), 10).toFloat() as tf.Tensor2D;
    const kind = net.config.kind;
    const y = net.apply({ x, t: kind === 'denoiser' ? undefined : t, c: kind === 'class' ? c : undefined }, training);
    net.store.discardPending();
    return y.dataSync().slice() as Float32Array;
  });
}

for (const engine of ['wasm', 'cpu'] as const) {
  test(`folded eval BatchNorm matches the unfolded network within 1e-5 (${engine})`, async () => {
    await initEngine({ engine, quiet: true });
    for (const kind of ['denoiser', 'time', 'class'] as UNetKind[]) {
      const net = new UNet({ kind, D: 6 }, 3);
      randomizeBN(net, 11);
      const before = tf.memory().numTensors;
      const [ref, refTrain] = withLevers({ foldBatchNorm: false }, () => [outputs(net, false), outputs(net, true)]);
      const [got, gotTrain] = withLevers({ foldBatchNorm: true }, () => [outputs(net, false), outputs(net, true)]);
      assert.equal(tf.memory().numTensors, before);
      let scale = 0;
      let diff = 0;
      for (let i = 0; i < ref.length; i++) {
        scale = Math.max(scale, Math.abs(ref[i]));
        diff = Math.max(diff, Math.abs(got[i] - ref[i]));
      }
      assert.ok(scale > 1e-3, 'outputs are not trivially zero');
      assert.ok(diff <= 1e-5 * Math.max(1, scale), `${kind}: folded vs unfolded max diff ${diff} at scale ${scale}`);
      assert.deepEqual(Array.from(gotTrain), Array.from(refTrain), `${kind}: training mode must not depend on foldBatchNorm`);
      // The eval output really uses the running statistics (differs from training mode's batch stats).
      assert.ok(Math.abs(got[0] - gotTrain[0]) + Math.abs(got[100] - gotTrain[100]) > 1e-6);
      net.dispose();
    }
  });
}

test('folded eval follows every weight change: the folded weights are recomputed per forward pass', async () => {
  await initEngine({ engine: 'wasm', quiet: true });
  const net = new UNet({ kind: 'class', D: 6 }, 5);
  randomizeBN(net, 12);
  const first = outputs(net, false);
  // Change a convolution weight and BatchNorm statistics directly (as Adam and weight loading do).
  const w = net.store.params.get('down1.down.conv.weight')!;
  tf.tidy(() => w.assign(tf.mul(w, 1.5)));
  randomizeBN(net, 13);
  const folded = withLevers({ foldBatchNorm: true }, () => outputs(net, false));
  const unfolded = withLevers({ foldBatchNorm: false }, () => outputs(net, false));
  let diff = 0;
  let moved = 0;
  for (let i = 0; i < folded.length; i++) {
    diff = Math.max(diff, Math.abs(folded[i] - unfolded[i]));
    moved = Math.max(moved, Math.abs(folded[i] - first[i]));
  }
  assert.ok(moved > 1e-4, 'the output changed with the weights');
  assert.ok(diff <= 1e-5, `folded vs unfolded after the change: ${diff}`);
  net.dispose();
});

test('the folding is cached across eval passes, refolded after any assign, and freed with the model', async () => {
  await initEngine({ engine: 'wasm', quiet: true });
  const start = tf.memory().numTensors;
  const net = new UNet({ kind: 'time', D: 6 }, 7);
  randomizeBN(net, 14);
  const first = net.store.currentFolding();
  assert.equal(net.store.currentFolding(), first, 'no weight changed: the same folding');
  const held = tf.memory().numTensors;
  withLevers({ foldBatchNorm: true }, () => [outputs(net, false), outputs(net, false)]);
  assert.equal(tf.memory().numTensors, held, 'eval passes with an unchanged folding allocate nothing that stays');
  assert.equal(net.store.currentFolding(), first);
  // Only a running statistic changes (as a training step's commitBatchNorm does): refold, free the old one.
  const mean = net.store.buffers.get('up1.up.bn.running_mean')!;
  tf.tidy(() => mean.assign(tf.add(mean, 0.25)));
  const second = net.store.currentFolding();
  assert.notEqual(second, first);
  assert.ok(
    [...first.convs.values()].every((c) => c.weight.isDisposed && c.bias.isDisposed),
    'the stale folding is freed',
  );
  assert.equal(tf.memory().numTensors, held);
  const folded = withLevers({ foldBatchNorm: true }, () => outputs(net, false));
  const unfolded = withLevers({ foldBatchNorm: false }, () => outputs(net, false));
  for (let i = 0; i < folded.length; i++) assert.ok(Math.abs(folded[i] - unfolded[i]) <= 1e-5, `output ${i} after the statistic changed`);
  net.dispose();
  assert.ok(
    [...second.convs.values()].every((c) => c.weight.isDisposed),
    'dispose frees the folding',
  );
  assert.equal(tf.memory().numTensors, start, 'nothing of the model is left');
});
