/**
 * The Part A notebook's model choice (notebooks/support/partAModel.ts): shipped MNIST class weights
 * when present, the untrained fallback otherwise (or a clear error when weights are required),
 * and settings whose prompts the chosen model accepts.
 */
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { UNet } from '../../lib/models/unet';
import { saveTensorFile, type StoredTensor } from '../../lib/weights/tensorFile';
import { findMnistClassWeights, partASettings, selectPartAModel } from '../../notebooks/support/partAModel';

before(async () => {
  await initEngine({ quiet: true });
});

function saveNet(file: string, kind: 'class' | 'time', seed: number): void {
  const net = new UNet({ kind, D: 4 }, seed);
  const tensors = new Map<string, StoredTensor>();
  for (const [name, v] of net.store.named()) tensors.set(name, { shape: v.shape, data: v.dataSync() as Float32Array });
  saveTensorFile(file, tensors, { kind: 'partb-weights', config: { model: kind, D: 4, T: 300 } });
  net.dispose();
}

test('picks the class-model weights file, else the untrained fallback, else a clear error', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'partA-weights-'));
  try {
    const none = await selectPartAModel({ noIF: true, weightsDir: dir });
    assert.equal(none.kind, 'untrained');
    assert.match(none.den.name, /UNTRAINED/);
    none.den.dispose!();
    await assert.rejects(
      selectPartAModel({ noIF: true, weightsDir: dir, allowUntrained: false }),
      /Part A needs a model: no Part B class weights/,
    );
    saveNet(path.join(dir, 'a-time.weights'), 'time', 1);
    assert.equal(findMnistClassWeights(dir), undefined, 'a time-only model is not a class model');
    saveNet(path.join(dir, 'z-model.weights'), 'class', 2);
    assert.equal(findMnistClassWeights(dir), path.join(dir, 'z-model.weights'));
    // the shipped name wins over other class models, and early checkpoints come last
    saveNet(path.join(dir, 'partb-class-early.weights'), 'class', 3);
    assert.equal(findMnistClassWeights(dir), path.join(dir, 'z-model.weights'));
    saveNet(path.join(dir, 'partb-class.weights'), 'class', 4);
    assert.equal(findMnistClassWeights(dir), path.join(dir, 'partb-class.weights'));
    fs.rmSync(path.join(dir, 'partb-class.weights'));
    fs.rmSync(path.join(dir, 'partb-class-early.weights'));
    const m = await selectPartAModel({ noIF: true, weightsDir: dir });
    assert.equal(m.kind, 'mnist');
    assert.match(m.why, /z-model\.weights/);
    // every prompt of the notebook's settings is one the model accepts
    const s = partASettings(m);
    for (const p of [...s.translations, ...s.cfgPrompts, ...s.anagrams.flat(), ...s.hybrids.flat(), m.den.neutralPrompt, m.den.emptyPrompt])
      m.den.encodePrompt(p);
    const x = tf.zeros([1, 28, 28, 1]) as tf.Tensor4D;
    const p = m.den.predict(x, 10, m.den.encodePrompt('7'));
    assert.deepEqual(p.eps.shape, [1, 28, 28, 1]);
    tf.dispose([x, p.eps]);
    m.den.dispose!();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
