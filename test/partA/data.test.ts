/**
 * Part A's shipped test images (data/partA/) and their loaders.
 */
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { loadMnist } from '../../lib/data/mnist';
import { makeOracleDenoiser } from '../../lib/models/oracle';
import { cosineSchedule, ddpmSchedule } from '../../lib/schedulers/schedule';
import { CAMPANILE_INDICES, loadMask, loadModelImage, partADataDir } from '../../notebooks/support/partAData';

before(async () => {
  await initEngine({ quiet: true });
});

const mnistLike = makeOracleDenoiser({
  schedule: ddpmSchedule(),
  imageSize: [28, 28],
  channels: 1,
  valueRange: [0, 1],
  classes: { neutral: { mu: 0, s: 1 }, '': { mu: 0, s: 1 } },
});
const ifLike = makeOracleDenoiser({
  schedule: cosineSchedule(),
  imageSize: [64, 64],
  channels: 3,
  valueRange: [-1, 1],
  classes: { neutral: { mu: 0, s: 1 }, '': { mu: 0, s: 1 } },
});

test('data/partA ships the digits, sketches, outside images and masks', () => {
  const files = fs.readdirSync(partADataDir());
  const test = loadMnist('test', { limit: 10 });
  for (const i of CAMPANILE_INDICES) assert.ok(files.includes(`digit-${test.labels[i]}-test${i}.png`), `digit ${i}`);
  for (const f of [
    'sketch-0.png',
    'sketch-3.png',
    'sketch-4.png',
    'outside-font-5.png',
    'outside-font-2.png',
    'mask-top.png',
    'mask-right.png',
    'mask-center.png',
  ]) {
    assert.ok(files.includes(f), f);
  }
  for (const f of files) assert.ok(fs.statSync(`${partADataDir()}/${f}`).size < 4096, `${f} is small`);
});

test('MNIST digits load for the MNIST model exactly as the test split stores them', async () => {
  const test = loadMnist('test', { limit: 10 });
  const i = CAMPANILE_INDICES[0];
  const x = await loadModelImage(mnistLike, `digit-${test.labels[i]}-test${i}.png`);
  assert.deepEqual(x.shape, [1, 28, 28, 1]);
  const want = test.images.subarray(i * 784, (i + 1) * 784);
  const got = x.dataSync();
  let d = 0;
  for (let p = 0; p < 784; p++) d = Math.max(d, Math.abs(got[p] - want[p]));
  assert.ok(d <= 1 / 255 + 1e-6, `max pixel difference ${d}`);
  x.dispose();
});

test('images load at another model size, channel count and range; masks are 0/1', async () => {
  const x = await loadModelImage(ifLike, 'sketch-4.png');
  assert.deepEqual(x.shape, [1, 64, 64, 3]);
  const v = x.dataSync();
  assert.ok(Math.min(...v) >= -1 && Math.max(...v) <= 1 && Math.min(...v) < -0.9 && Math.max(...v) > 0.5);
  const m = await loadMask(mnistLike, 'mask-top.png');
  assert.deepEqual(m.shape, [1, 28, 28, 1]);
  const mv: number[] = Array.from(m.dataSync() as Float32Array);
  assert.ok(mv.every((a) => a === 0 || a === 1));
  assert.equal(mv.filter((a) => a === 1).length, 12 * 28);
  assert.equal(mv[0], 1);
  assert.equal(mv[27 * 28], 0);
  await assert.rejects(loadModelImage(mnistLike, 'no-such-file.png'), /no such file/);
  tf.dispose([x, m]);
});
