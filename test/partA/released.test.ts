/**
 * A released model refuses to run (issue 32): the Part B UNet, the MNIST Denoisers (DDPM and flow,
 * also behind the notebook's counting proxy) and DeepFloyd IF (stage I and a stage-II view) each
 * throw one line after dispose() instead of computing with weights that are gone. Before, a
 * released UNet made fresh random weights on its next pass: the notebook's canvas figure after Run
 * All came out as pure noise, with no error.
 */
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { UNet } from '../../lib/models/unet';
import { mnistDenoiser, mnistFlowDenoiser } from '../../lib/models/mnistDenoiser';
import { loadIFFromDefaults } from '../../lib/models/if/load';
import { SectionTimer } from '../../lib/display';
import { writeTorchDict } from '../../lib/weights/torchPickle';
import { randArray, tinyStageI, tinyStageII, writeTinyModel } from '../if/tiny';

before(async () => {
  await initEngine({ quiet: true });
});

const RELEASED = /^.+: this model was released; run the cell that loads it again$/;

/** fn throws the released error, leaving the tensor count as it was. */
function throwsReleased(fn: () => unknown, what: string): void {
  const before = tf.memory().numTensors;
  assert.throws(fn, (e: Error) => RELEASED.test(e.message), what);
  assert.equal(tf.memory().numTensors, before, `${what}: no tensor left behind`);
}

test('a released UNet throws instead of running with new random weights', () => {
  const net = new UNet({ kind: 'time', D: 4 }, 1);
  const x = tf.zeros([2, 28, 28, 1]) as tf.Tensor4D;
  const t = tf.fill([2, 1], 0.5) as tf.Tensor2D;
  tf.dispose(net.apply({ x, t }));
  assert.equal(net.released, false);
  net.dispose();
  assert.equal(net.released, true);
  throwsReleased(() => net.apply({ x, t }), 'apply');
  throwsReleased(() => net.apply({ x, t }, true), 'a training pass');
  assert.equal(net.store.params.size, 0, 'no parameter was made again');
  net.dispose(); // twice is harmless
  tf.dispose([x, t]);
});

test('released MNIST Denoisers (DDPM and flow, and behind the notebook proxy) throw on every use', () => {
  const x = tf.zeros([1, 28, 28, 1]) as tf.Tensor4D;
  for (const make of [
    () => mnistDenoiser(new UNet({ kind: 'class', D: 4 }, 2)),
    () => mnistFlowDenoiser(new UNet({ kind: 'class', D: 4 }, 2)),
  ]) {
    // The notebook counts predict calls through a Proxy (SectionTimer.countCalls); released passes through.
    const den = new SectionTimer().countCalls(make(), ['predict', 'predictMany']);
    const t = den.prediction === 'velocity' ? 0.5 : 10;
    const seven = den.encodePrompt('7');
    tf.dispose(den.predict(x, t, seven).eps);
    assert.equal(den.released, false);
    den.dispose!();
    assert.equal(den.released, true, `${den.name}: released`);
    throwsReleased(() => den.predict(x, t, seven), `${den.name}: predict`);
    throwsReleased(() => den.predictMany!([{ xt: x, cond: seven }], t), `${den.name}: predictMany`);
    throwsReleased(() => den.encodePrompt('3'), `${den.name}: encodePrompt`);
    throwsReleased(() => den.encodeLabels([1]), `${den.name}: encodeLabels`);
  }
  // The UNet released under a live Denoiser: the Denoiser says so too.
  const net = new UNet({ kind: 'class', D: 4 }, 3);
  const den = mnistDenoiser(net);
  const three = den.encodePrompt('3');
  net.dispose();
  assert.equal(den.released, true);
  throwsReleased(() => den.predict(x, 10, three), 'predict over a released UNet');
  x.dispose();
});

test('a released DeepFloyd IF Denoiser and its stage-II view throw on every use', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'if-released-'));
  try {
    writeTinyModel(path.join(root, 'IF-I-L-v1.0'), tinyStageI, 1);
    writeTinyModel(path.join(root, 'IF-II-L-v1.0'), { ...tinyStageII, sample_size: 16 }, 2);
    const prompts = ['a high quality photo', ''];
    fs.writeFileSync(
      path.join(root, 'prompt_embeds_dict.pth'),
      writeTorchDict(
        Object.fromEntries(prompts.map((p, i) => [p, { shape: [1, 5, 16], data: Float32Array.from(randArray(80, 40 + i, 2)) }])),
      ),
    );
    const r = loadIFFromDefaults(root, { stage2: true });
    assert.ok('den' in r && r.stage2, 'missing' in r ? r.missing : 'stage II loaded');
    const { den, stage2 } = r;
    const x = tf.zeros([1, 8, 8, 3]) as tf.Tensor4D;
    const up = tf.zeros([1, 16, 16, 3]) as tf.Tensor4D;
    const x2 = tf.zeros([1, 16, 16, 3]) as tf.Tensor4D;
    const photo = den.encodePrompt('a high quality photo');
    const view = den.withImage(stage2, { image: up, noiseLevel: 20 });
    const p = den.predict(x, 10, photo);
    const p2 = view.predict(x2, 10, view.encodePrompt('a high quality photo'));
    tf.dispose([p.eps, p.variance, p2.eps, p2.variance]);
    den.dispose();
    assert.equal(den.released, true);
    assert.equal(view.released, true, 'the view shares the released prompt table');
    throwsReleased(() => den.predict(x, 10, photo), 'stage I predict');
    throwsReleased(() => den.encodePrompt(''), 'stage I encodePrompt');
    throwsReleased(() => den.encodePrompts(['', '']), 'stage I encodePrompts');
    throwsReleased(() => den.withImage(stage2, { image: up, noiseLevel: 20 }), 'stage I withImage');
    throwsReleased(() => view.predict(x2, 10, photo), 'the stage-II view predict');
    stage2.dispose();
    tf.dispose([x, up, x2]);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
