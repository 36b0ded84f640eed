/**
 * Image I/O: PNG round trip, ranges, resize vs center-crop geometry, channel handling, errors,
 * atomic save.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { initEngine } from '../../lib/engine';
import { loadImage, savePng, tensorToPng, tensorToRaw } from '../../lib/image/io';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'image-io-test-'));

/** A W x H RGB test image: left half red, right half blue, one green pixel at (1,2). */
function pattern(h: number, w: number): Uint8Array {
  const d = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      if (x < w / 2) d[i] = 255;
      else d[i + 2] = 255;
    }
  d.set([0, 255, 0], (1 * w + 2) * 3);
  return d;
}

test('PNG round trip is exact for 8-bit values, in both ranges and with 1 or 3 channels', async () => {
  await initEngine({ engine: 'cpu', quiet: true });
  const before = tf.memory().numTensors;
  const raw = pattern(5, 8);
  const png = await sharp(Buffer.from(raw), { raw: { width: 8, height: 5, channels: 3 } })
    .png()
    .toBuffer();
  const t01 = await loadImage(png);
  assert.deepEqual(t01.shape, [1, 5, 8, 3]);
  const v = await t01.data();
  raw.forEach((b, i) => assert.ok(Math.abs(v[i] - b / 255) < 1e-6));
  const back = await tensorToPng(t01, '[0,1]');
  const { data } = await sharp(back).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual(Array.from(data), Array.from(raw));

  const tpm = await loadImage(png, { range: '[-1,1]' });
  const w = await tpm.data();
  raw.forEach((b, i) => assert.ok(Math.abs(w[i] - (b / 127.5 - 1)) < 1e-6));
  const back2 = await tensorToRaw(tpm, '[-1,1]');
  assert.deepEqual(Array.from(back2.data), Array.from(raw));

  const g = await loadImage(png, { channels: 1 });
  assert.deepEqual(g.shape, [1, 5, 8, 1]);
  const gv = await g.data();
  // One band in [0,1]; luma of pure red (~0.2-0.3) differs from pure blue (~0.07-0.1); rows repeat.
  assert.ok(gv.every((x) => x >= 0 && x <= 1));
  assert.equal(gv[0], gv[8]);
  assert.ok(gv[8] > gv[8 + 7], `red ${gv[8]} brighter than blue ${gv[15]}`);
  const g3 = g.squeeze([0]);
  const gpng = await tensorToPng(g3);
  g3.dispose();
  assert.equal((await sharp(gpng).metadata()).channels, 1);
  tf.dispose([t01, tpm, g]);
  assert.equal(tf.memory().numTensors, before);
});

test('fit resize ignores aspect; center-crop keeps the middle', async () => {
  // 20 wide x 10 high: left half red, right half blue.
  const raw = pattern(10, 20);
  const png = await sharp(Buffer.from(raw), { raw: { width: 20, height: 10, channels: 3 } })
    .png()
    .toBuffer();
  const r = await loadImage(png, { size: [10, 10], fit: 'resize' });
  assert.deepEqual(r.shape, [1, 10, 10, 3]);
  const rv = await r.data();
  // Squeezed horizontally: column 0 still red, column 9 still blue.
  assert.ok(rv[(5 * 10 + 0) * 3] > 0.9 && rv[(5 * 10 + 9) * 3 + 2] > 0.9);
  // center-crop of a 20x10 image to 4x4: scale to 8x4, keep columns 2..5 -> left two red, right two blue.
  const c = await loadImage(png, { size: [4, 4], fit: 'center-crop' });
  assert.deepEqual(c.shape, [1, 4, 4, 3]);
  const cv = await c.data();
  assert.ok(cv[(2 * 4 + 0) * 3] > 0.8, 'left column red');
  assert.ok(cv[(2 * 4 + 3) * 3 + 2] > 0.8, 'right column blue');
  // Tall image: crop keeps the middle rows.
  const tall = await loadImage(png, { size: [10, 5], fit: 'center-crop' });
  assert.deepEqual(tall.shape, [1, 10, 5, 3]);
  tf.dispose([r, c, tall]);
});

test('clear one-line errors: missing file, unreadable file, bad channels, bad tensors', async () => {
  await assert.rejects(loadImage(path.join(tmp, 'nope.png')), /no such file/);
  const junk = path.join(tmp, 'junk.png');
  fs.writeFileSync(junk, 'this is not an image');
  await assert.rejects(loadImage(junk), (e: Error) => /cannot read image/.test(e.message) && !e.message.includes('\n'));
  await assert.rejects(loadImage(junk, { channels: 2 as 1 }), /channels must be 1/);
  await assert.rejects(loadImage(junk, { size: [0, 3] }), /size must be/);
  const nchw = tf.zeros([1, 3, 8, 8]);
  await assert.rejects(tensorToPng(nchw), /channel count must be 1, 3 or 4.*NCHW/);
  const batch = tf.zeros([2, 8, 8, 3]);
  await assert.rejects(tensorToPng(batch), /batch of 2/);
  await assert.rejects(tensorToPng(tf.zeros([8, 8])), /expected \[1,H,W,C\]/);
  tf.dispose([nchw, batch]);
});

test('savePng writes atomically (no temp file left) and clips out-of-range values', async () => {
  const t = tf.tensor3d([-0.5, 0.5, 2, 0, 1, 0.25], [1, 2, 3]);
  const file = path.join(tmp, 'sub', 'out.png');
  await savePng(t, file, '[-1,1]');
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['out.png']);
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.width, 2);
  assert.equal(info.height, 1);
  // (x+1)/2*255, clipped: -0.5->64, 0.5->191, 2->255 | 0->128, 1->255, 0.25->159
  assert.deepEqual(Array.from(data), [64, 191, 255, 128, 255, 159]);
  t.dispose();
});

test('a NaN or infinite pixel is refused, not written as black; the previous file stays byte-identical', async () => {
  await initEngine({ engine: 'cpu', quiet: true });
  const file = path.join(tmp, 'keep.png');
  const good = tf.tensor3d([0, 0.5, 1, 0.25], [2, 2, 1]);
  await savePng(good, file);
  const before = fs.readFileSync(file);
  for (const bad of [NaN, Infinity, -Infinity]) {
    const t = tf.tensor3d([0, bad, 1, 0.25], [2, 2, 1]);
    await assert.rejects(
      savePng(t, file),
      (e: Error) =>
        new RegExp(
          `tensorToPng: the image has 1 non-finite value \\(${String(bad).replace('-', '\\-')} at index 1 of \\[2,2,1\\]\\); nothing was written`,
        ).test(e.message) && !e.message.includes('\n'),
    );
    await assert.rejects(tensorToRaw(t), /non-finite/);
    t.dispose();
  }
  assert.deepEqual(fs.readFileSync(file), before);
  assert.deepEqual(
    fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp')),
    [],
  );
  good.dispose();
});
