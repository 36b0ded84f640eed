/**
 * showAnagrams / showHybrids without a browser: they never dispose their inputs and leave no
 * tensor behind (terminal and notebook paths), the grid's right-hand tile really is the vertical
 * flip, the figure is registered with one native-size PNG per tile and its prompts, the notebook
 * gets the grid and then the interactive widget, and showGif now writes its first frame as poster.
 * (The interaction itself is tested in Chromium by test/report/illusions.test.ts.)
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { initEngine } from '../../lib/engine';
import { showAnagrams, showHybrids, showGif, gridLayout, readManifest } from '../../lib/display';
import { anagramTileHtml } from '../../lib/display/illusions';
import { VIEWS } from '../../lib/image/views';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'illusions-test-'));

/** Runs f with FIGURES_DIR/FIGURES_NOTEBOOK set and console.log captured. */
async function registering<T>(dir: string, notebook: string, f: () => Promise<T>): Promise<{ result: T; logs: string[] }> {
  process.env.FIGURES_DIR = dir;
  process.env.FIGURES_NOTEBOOK = notebook;
  const logs: string[] = [];
  const origLog = console.log;
  console.log = (...a: unknown[]) => logs.push(a.join(' '));
  try {
    return { result: await f(), logs };
  } finally {
    console.log = origLog;
    delete process.env.FIGURES_DIR;
    delete process.env.FIGURES_NOTEBOOK;
  }
}

async function rgbAt(png: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * info.channels;
  return Array.from(data.subarray(i, i + 3));
}

test('showAnagrams and showHybrids: inputs untouched, no tensor left, grid flipped along H, tiles registered', async () => {
  await initEngine({ engine: 'cpu', quiet: true });
  // Upright: top half white, bottom half black (8×8 gray), so the flip is visible in the grid.
  const half = tf.tensor4d(
    Array.from({ length: 64 }, (_, i) => (i < 32 ? 1 : 0)),
    [1, 8, 8, 1],
  );
  const rgb = tf.randomUniform([1, 12, 10, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
  const far = tf.randomUniform([1, 12, 10, 3], 0, 1, 'float32', 8) as tf.Tensor4D;
  const inputs = [half, rgb, far];
  const values = inputs.map((t) => Array.from(t.dataSync()));
  const before = tf.memory().numTensors;
  const dir = path.join(tmp, 'figs');
  const { logs } = await registering(dir, 'nbA', async () => {
    await showAnagrams(
      [
        { upright: half, uprightPrompt: 'a handwritten 6', flippedPrompt: 'a handwritten 9' },
        { upright: rgb, uprightPrompt: 'an oil painting of people around a campfire', flippedPrompt: 'an oil painting of an old man' },
      ],
      { id: 'anagrams', title: 'Anagrams', caption: 'two anagrams' },
    );
    await showHybrids(
      [
        { image: rgb, far, farPrompt: 'a skull', nearPrompt: 'a waterfall' },
        { image: rgb, far, farPrompt: 'a 1', nearPrompt: 'a 7' },
      ],
      { id: 'hybrids', title: 'Hybrids' },
    );
    await showHybrids([{ image: half, farPrompt: 'far', nearPrompt: 'near' }], { id: 'hybrid-nofar', title: 'No far' });
  });
  assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
  inputs.forEach((t, k) => {
    assert.equal(t.isDisposed, false, `input ${k} disposed`);
    assert.deepEqual(Array.from(t.dataSync()), values[k], `input ${k} changed`);
  });
  assert.equal(logs.length, 3, logs.join('\n'));
  assert.match(logs[0], /^\[anagrams anagrams\] Anagrams \(2 tiles\) -> .*nbA\/anagrams\.png$/);

  const recs = readManifest(path.join(dir, 'nbA', 'manifest.jsonl'));
  assert.deepEqual(
    recs.map((r) => [r.id, r.kind]),
    [
      ['anagrams', 'anagram'],
      ['hybrids', 'hybrid'],
      ['hybrid-nofar', 'hybrid'],
    ],
  );
  const [an, hy, hn] = recs;
  assert.equal(an.caption, 'two anagrams');
  assert.deepEqual(
    an.anagrams!.map((t) => [t.png, t.width, t.height, t.uprightPrompt, t.flippedPrompt]),
    [
      ['nbA/anagrams.anagram-0.png', 8, 8, 'a handwritten 6', 'a handwritten 9'],
      ['nbA/anagrams.anagram-1.png', 10, 12, 'an oil painting of people around a campfire', 'an oil painting of an old man'],
    ],
  );
  assert.deepEqual(
    hy.hybrids!.map((t) => [t.png, t.width, t.height, t.farPrompt, t.nearPrompt]),
    [
      ['nbA/hybrids.hybrid-0.png', 10, 12, 'a skull', 'a waterfall'],
      ['nbA/hybrids.hybrid-1.png', 10, 12, 'a 1', 'a 7'],
    ],
  );
  // Tile PNGs at native size, upright (not flipped): the anagram tile's top row is white.
  const tile0 = fs.readFileSync(path.join(dir, an.anagrams![0].png));
  const meta0 = await sharp(tile0).metadata();
  assert.deepEqual([meta0.width, meta0.height], [8, 8]);
  assert.deepEqual(await rgbAt(tile0, 3, 0), [255, 255, 255]);
  assert.deepEqual(await rgbAt(tile0, 3, 7), [0, 0, 0]);
  const meta1 = await sharp(fs.readFileSync(path.join(dir, hy.hybrids![1].png))).metadata();
  assert.deepEqual([meta1.width, meta1.height, meta1.channels], [10, 12, 3]);

  // The grid: row 0 is upright | flipped of the half-white anagram; the flipped tile is white at the bottom.
  const grid = fs.readFileSync(path.join(dir, an.png));
  const L = gridLayout(4, 12, 10, { cols: 2, captions: true, title: 'Anagrams' });
  const s = L.tileW / 10; // tiles are scaled to the largest image; the 8×8 one sits centred
  const left = (col: number) => L.x0 + col * (L.cellW + 6) + Math.floor((L.tileW - Math.round(8 * s)) / 2);
  const top = L.y0 + Math.floor((L.tileH - Math.round(8 * s)) / 2);
  const q = Math.round(2 * s); // a quarter of the 8 px image, in grid pixels
  assert.deepEqual(await rgbAt(grid, left(0) + q, top + q), [255, 255, 255], 'upright: white on top');
  assert.deepEqual(await rgbAt(grid, left(0) + q, top + 3 * q), [0, 0, 0], 'upright: black below');
  assert.deepEqual(await rgbAt(grid, left(1) + q, top + q), [0, 0, 0], 'flipped: black on top');
  assert.deepEqual(await rgbAt(grid, left(1) + q, top + 3 * q), [255, 255, 255], 'flipped: white below');
  // Hybrids with far: 4 tiles in 2 columns; without: one tile.
  const gh = await sharp(fs.readFileSync(path.join(dir, hy.png))).metadata();
  assert.equal(gh.width, gridLayout(4, 12, 10, { cols: 2, captions: true, title: 'Hybrids' }).width);
  const gn = await sharp(fs.readFileSync(path.join(dir, hn.png))).metadata();
  assert.equal(gn.width, gridLayout(1, 8, 8, { cols: 1, captions: true, title: 'No far' }).width);

  // Bad calls fail with one line and leak nothing.
  const batch = tf.zeros([2, 4, 4, 1]) as tf.Tensor4D;
  const n0 = tf.memory().numTensors;
  await assert.rejects(showAnagrams([], { id: 'x', title: 't' }), /no items/);
  await assert.rejects(
    showAnagrams([{ upright: batch, uprightPrompt: 'a', flippedPrompt: 'b' }], { id: 'x', title: 't' }),
    /must be one image \[1,H,W,C\], got shape \[2,4,4,1\]/,
  );
  await assert.rejects(
    showHybrids(
      [
        { image: rgb, far, farPrompt: 'a', nearPrompt: 'b' },
        { image: rgb, farPrompt: 'a', nearPrompt: 'b' },
      ],
      { id: 'x', title: 't' },
    ),
    /1 of 2 items have a far image/,
  );
  await assert.rejects(
    showHybrids([{ image: rgb, farPrompt: 'a', nearPrompt: 'b' }], { id: '../x', title: 't' }),
    /not usable as a file name/,
  );
  assert.equal(tf.memory().numTensors, n0, 'failed calls leave no tensor');
  assert.equal(batch.isDisposed, false);
  tf.dispose([batch, ...inputs]);
});

test('notebook path: the grid, then the widget (tiles with data: URLs, style, script), then the caption; no tensor left', async () => {
  const sent: Array<Record<string, string>> = [];
  const fakePath = path.join(tmp, 'node_modules', 'tslab', 'dist', 'jupyter.js');
  const fake = { lastWriteDisplayData: (content: { data: Record<string, string> }) => sent.push(content.data) };
  require.cache[fakePath] = { exports: fake, id: fakePath, filename: fakePath, loaded: true } as unknown as NodeJS.Module;
  const x = tf.randomUniform([1, 16, 16, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
  const lo = tf.randomUniform([1, 16, 16, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
  const before = tf.memory().numTensors;
  try {
    await showAnagrams([{ upright: x, uprightPrompt: 'up <b>', flippedPrompt: 'down & out' }], { id: 'nb-an', title: 'A', caption: 'cap' });
    await showHybrids([{ image: x, far: lo, farPrompt: 'F', nearPrompt: 'N' }], { id: 'nb-hy', title: 'H' });
  } finally {
    delete require.cache[fakePath];
  }
  assert.equal(tf.memory().numTensors, before);
  assert.equal(x.isDisposed || lo.isDisposed, false);
  assert.equal(sent.length, 5, JSON.stringify(sent.map((s) => Object.keys(s))));
  assert.ok(sent[0]['image/png'].startsWith('iVBOR'), 'grid first');
  const html = sent[1]['text/html'];
  assert.match(html, /class="dn-tile dn-toggle dn-anagram"/);
  assert.match(html, /<img src="data:image\/png;base64,iVBOR/);
  assert.ok(html.includes('data-on="↓ flipped: down &amp; out"') && html.includes('up &lt;b&gt;'), 'prompts escaped');
  assert.ok(html.includes('<style>') && html.includes('<script>') && html.includes('document.currentScript'));
  assert.equal(sent[2]['text/markdown'], '*cap*');
  assert.ok(sent[3]['image/png'] && /dn-zoom/.test(sent[4]['text/html']) && /type="range"/.test(sent[4]['text/html']));
  tf.dispose([x, lo]);
});

test('showGif writes the first frame as poster (the report shows it until hovered)', async () => {
  const dir = path.join(tmp, 'gif');
  const black = tf.zeros([1, 8, 8, 1]) as tf.Tensor4D;
  const white = tf.ones([1, 8, 8, 1]) as tf.Tensor4D;
  await registering(dir, 'nbG', () => showGif([black, white], { id: 'anim', title: 'Anim', scale: 4 }));
  tf.dispose([black, white]);
  const [r] = readManifest(path.join(dir, 'nbG', 'manifest.jsonl'));
  assert.equal(r.poster, 'nbG/anim.poster.png');
  assert.equal(r.gif, 'nbG/anim.gif');
  const poster = fs.readFileSync(path.join(dir, r.poster!));
  const last = fs.readFileSync(path.join(dir, r.png));
  const L = gridLayout(1, 8, 8, { scale: 4, title: 'Anim' });
  assert.deepEqual(await rgbAt(poster, L.x0 + 16, L.y0 + 16), [0, 0, 0], 'poster = first frame');
  assert.deepEqual(await rgbAt(last, L.x0 + 16, L.y0 + 16), [255, 255, 255], 'png = last frame');
});

test('showAnagrams with another view: the grid shows that view, the manifest and the tile carry it, the caption names it', async () => {
  await initEngine({ engine: 'cpu', quiet: true });
  // Left column white, the rest black (4×4): a quarter turn counter-clockwise puts the white on the bottom row.
  const img = tf.tensor4d(
    Array.from({ length: 16 }, (_, i) => (i % 4 === 0 ? 1 : 0)),
    [1, 4, 4, 1],
  );
  const before = tf.memory().numTensors;
  const dir = path.join(tmp, 'figs-views');
  await registering(dir, 'nbV', () =>
    showAnagrams([{ upright: img, uprightPrompt: 'a handwritten 1', flippedPrompt: 'a handwritten 7' }], {
      id: 'rot90',
      title: 'Rot 90',
      view: VIEWS.rot90,
      scale: 8,
    }),
  );
  assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
  const [rec] = readManifest(path.join(dir, 'nbV', 'manifest.jsonl'));
  assert.equal(rec.anagrams![0].view, 'rot90');
  const html = anagramTileHtml({ src: 'x.png', width: 4, height: 4, uprightPrompt: 'a 1', flippedPrompt: 'a 7', view: 'rot90' });
  assert.match(html, /class="dn-tile dn-toggle dn-anagram dn-rot90"/);
  assert.match(html, /data-on="↺ rotated 90°: a 7"/);
  // The flip stays as before: no view class, "flipped" caption.
  const flip = anagramTileHtml({ src: 'x.png', width: 4, height: 4, uprightPrompt: 'a 6', flippedPrompt: 'a 9' });
  assert.match(flip, /class="dn-tile dn-toggle dn-anagram"/);
  assert.match(flip, /data-on="↓ flipped: a 9"/);
  // The grid's second tile is the rotated image: its bottom-left pixel is white, its top-left black.
  const gridPng = fs.readFileSync(path.join(dir, 'nbV', 'rot90.png'));
  const L = gridLayout(2, 4, 4, { cols: 2, captions: true, title: 'Rot 90', scale: 8 });
  const x1 = L.x0 + L.cellW + 6; // the second tile (6 px between tiles)
  assert.deepEqual(await rgbAt(gridPng, x1 + 4, L.y0 + 28), [255, 255, 255], 'the rotated tile: white on the bottom row');
  assert.deepEqual(await rgbAt(gridPng, x1 + 4, L.y0 + 4), [0, 0, 0], 'the rotated tile: black at the top left');
  assert.deepEqual(await rgbAt(gridPng, L.x0 + 4, L.y0 + 12), [255, 255, 255], 'upright: white left column');
  img.dispose();
});
