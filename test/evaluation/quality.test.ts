/**
 * The sample-quality judge (lib/evaluation/quality.ts): the background level against hand-made
 * images, and, with the shipped classifier on real MNIST, that the calibration (the mean FD of
 * several disjoint draws of real digits) puts fresh real digits near ratio 1 while noisy digits
 * and a one-digit set score far worse.
 */
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { initEngine } from '../../lib/engine';
import { loadMnist, type MnistSet } from '../../lib/data/mnist';
import { Classifier } from '../../lib/models/classifier';
import { shippedWeightsPath } from '../../lib/weights/shipped';
import { backgroundLevel, blankMask, judgeImages, qualityReference } from '../../lib/evaluation/quality';
import { Rng } from '../../lib/tensor/random';
import { mulberry32 } from '../helpers';

before(async () => {
  await initEngine({ quiet: true });
});

test('backgroundLevel: the mean of the clipped values on blank pixels only', () => {
  const blank = new Uint8Array(784);
  blank[0] = 1;
  blank[5] = 1;
  const img = new Float32Array(2 * 784).fill(0.9); // ink everywhere else is ignored
  img[0] = 0.2;
  img[5] = -0.4; // clipped to 0
  img[784] = 1.7; // clipped to 1
  img[789] = 0.1;
  assert.ok(Math.abs(backgroundLevel(img, blank) - (0.2 + 0 + 1 + 0.1) / 4) < 1e-7);
});

test('blankMask: a pixel is blank when fewer than 1% of the digits have ink (> 0.1) there', () => {
  const count = 200;
  const images = new Float32Array(count * 784);
  for (let i = 0; i < 2; i++) images[i * 784 + 10] = 0.5; // 1% exactly: not blank
  images[3 * 784 + 11] = 0.5; // 0.5%: blank
  for (let i = 0; i < count; i++) images[i * 784 + 12] = 0.09; // faint everywhere: blank
  const mask = blankMask({ images, labels: new Uint8Array(count), count } as unknown as MnistSet);
  assert.deepEqual([mask[10], mask[11], mask[12], mask[13]], [0, 1, 1, 1]);
});

const clfFile = shippedWeightsPath('classifier');
test(
  'calibration: fresh real digits judge near ratio 1, noisy or one-digit sets far above',
  { skip: !fs.existsSync(clfFile) && `${clfFile} is missing` },
  () => {
    const clf = Classifier.load(clfFile).net;
    const train = loadMnist('train');
    const test = loadMnist('test');
    const n = 300;
    const ref = qualityReference(clf, train, test, n, 11, 6);
    assert.equal(ref.real.draws, 6);
    assert.ok(
      ref.real.fdMin <= ref.real.fd && ref.real.fd <= ref.real.fdMax,
      `mean ${ref.real.fd} outside [${ref.real.fdMin}, ${ref.real.fdMax}]`,
    );
    assert.ok(ref.real.fdMax > ref.real.fdMin, 'single draws differ');
    // Fresh random real digits (another seed's shuffle; a contiguous block of the training set is no
    // fair draw: its digits share writers, and judge far worse).
    const pick = (seed: number, filter?: (label: number) => boolean): Float32Array => {
      const order = Int32Array.from({ length: train.count }, (_, i) => i);
      new Rng(seed).shuffle(order);
      const out = new Float32Array(n * 784);
      let k = 0;
      for (let i = 0; i < train.count && k < n; i++) {
        const j = order[i];
        if (filter && !filter(train.labels[j])) continue;
        out.set(train.images.subarray(j * 784, (j + 1) * 784), k++ * 784);
      }
      return out;
    };
    const ratios = [101, 102, 103].map((seed) => judgeImages(clf, pick(seed), ref).fdRatio);
    const mean = ratios.reduce((a, b) => a + b, 0) / ratios.length;
    assert.ok(mean > 0.7 && mean < 1.4, `fresh real digits: mean FD ratio ${mean} (${ratios.map((r) => r.toFixed(2))})`);
    // Gaussian grain of σ = 0.15 on real digits: a worse FD and a background far above real digits'.
    const noisy = pick(104);
    const r = mulberry32(3);
    for (let i = 0; i < noisy.length; i++) {
      const g = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
      noisy[i] = Math.min(1, Math.max(0, noisy[i] + 0.15 * g));
    }
    const jn = judgeImages(clf, noisy, ref);
    assert.ok(jn.fdRatio > 3, `noisy digits: FD ratio ${jn.fdRatio}`);
    assert.ok(jn.backgroundRatio > 20, `noisy digits: background ratio ${jn.backgroundRatio}`);
    // Only ones: no diversity, all judged "1".
    const ones = judgeImages(
      clf,
      pick(105, (l) => l === 1),
      ref,
    );
    assert.ok(ones.fdRatio > 20, `ones only: FD ratio ${ones.fdRatio}`);
    assert.ok(ones.digitShares[1] > 0.95, `ones only: share judged 1 is ${ones.digitShares[1]}`);
    assert.throws(() => qualityReference(clf, train, test, 20_000, 0, 4), /4 disjoint draws of 20000 digits need 80000/);
  },
);
