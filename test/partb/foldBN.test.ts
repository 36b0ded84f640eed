/**
 * Eval-mode BatchNorm folded into the convolutions (FOLD_BN) gives the same outputs as the
 * unfolded network (convolution, then BN with the running statistics), for all three UNets, with
 * non-trivial BN parameters and running statistics; training mode is unaffected by the switch.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { FOLD_BN, UNet, type UNetKind } from '../../lib/partb/unet';
import { mulberry32 } from '../helpers';

/** Sets every BN weight/bias/running stat to seeded random values (running_var in [0.2, 2.2)). */
function randomizeBN(net: UNet, seed: number): void {
  const r = mulberry32(seed);
  for (const [name, v] of net.store.named()) {
    if (!/\.bn\./.test(name)) continue;
    const vals = Float32Array.from({ length: v.size }, () => (name.endsWith('running_var') ? 0.2 + 2 * r() : name.endsWith('.weight') ? 0.5 + r() : r() - 0.5));
    v.assign(tf.tensor(vals, v.shape));
  }
}

function outputs(net: UNet, training: boolean): Float32Array {
  const B = 3;
  const r = mulberry32(4);
  return tf.tidy(() => {
    const x = tf.tensor4d(Float32Array.from({ length: B * 784 }, () => r()), [B, 28, 28, 1]);
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
      FOLD_BN.enabled = false;
      const ref = outputs(net, false);
      const refTrain = outputs(net, true);
      FOLD_BN.enabled = true;
      const got = outputs(net, false);
      const gotTrain = outputs(net, true);
      assert.equal(tf.memory().numTensors, before);
      let scale = 0;
      let diff = 0;
      for (let i = 0; i < ref.length; i++) {
        scale = Math.max(scale, Math.abs(ref[i]));
        diff = Math.max(diff, Math.abs(got[i] - ref[i]));
      }
      assert.ok(scale > 1e-3, 'outputs are not trivially zero');
      assert.ok(diff <= 1e-5 * Math.max(1, scale), `${kind}: folded vs unfolded max diff ${diff} at scale ${scale}`);
      assert.deepEqual(Array.from(gotTrain), Array.from(refTrain), `${kind}: training mode must not depend on FOLD_BN`);
      // The eval output really uses the running statistics (differs from training mode's batch stats).
      assert.ok(Math.abs(got[0] - gotTrain[0]) + Math.abs(got[100] - gotTrain[100]) > 1e-6);
      net.dispose();
    }
  });
}
