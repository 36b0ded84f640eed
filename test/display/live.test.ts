/**
 * Live training displays (lib/display/live.ts) through a stand-in for tslab's kernel module: one
 * chart output created with a display_id and then replaced in place (throttled), one sample grid
 * replaced once per epoch, nothing sent in a terminal, no tensor made or disposed; the EMA
 * sampling copy; and the Part B notebook's retrain() end to end on a tiny config.
 */
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { initEngine } from '../../lib/engine';
import { liveTraining, movingAverage, windowMeans } from '../../lib/display';
import { withEmaWeights } from '../../lib/training/ema';
import { UNet } from '../../lib/models/unet';
import { Ema } from '../../lib/training/ema';
import { Trainer } from '../../lib/training/trainer';
import { type TrainConfig } from '../../lib/weights/runConfig';
import { presetConfig } from '../../lib/training/presets';
import { loadTensorFile } from '../../lib/weights/tensorFile';
import { retrain } from '../../notebooks/support/partB';
import { fakeData } from '../helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'live-test-'));

before(() => initEngine({ engine: 'cpu', quiet: true }));

interface Sent {
  data: Record<string, string>;
  id: string | undefined;
  update: boolean;
}

/** Runs fn with a fake tslab kernel module installed; returns every display message it sent. */
async function inFakeNotebook(fn: () => Promise<void>): Promise<Sent[]> {
  const sent: Sent[] = [];
  const fakePath = path.join(tmp, 'node_modules', 'tslab', 'dist', 'jupyter.js');
  const fake = {
    lastWriteDisplayData: (content: { data: Record<string, string>; transient: { display_id?: string } }, update: boolean) =>
      sent.push({ data: content.data, id: content.transient.display_id, update }),
  };
  require.cache[fakePath] = { exports: fake, id: fakePath, filename: fakePath, loaded: true } as unknown as NodeJS.Module;
  try {
    await fn();
  } finally {
    delete require.cache[fakePath];
  }
  return sent;
}

const ofKind = (sent: Sent[], kind: 'chart' | 'grid' | 'progress') =>
  sent.filter((s) => (kind === 'progress' ? s.id?.startsWith('progress-') : s.id?.includes(`-${kind}-`)));

/** Checks that msgs are one output: created once with a display_id, then only updates of that id. */
function assertOneDisplay(msgs: Sent[], what: string): void {
  assert.ok(msgs.length > 0, `${what}: nothing sent`);
  assert.ok(msgs[0].id, `${what}: created with a display_id`);
  assert.equal(msgs[0].update, false, `${what}: the first message creates the display`);
  assert.ok(
    msgs.slice(1).every((m) => m.update && m.id === msgs[0].id),
    `${what}: later messages are update_display_data with the same id`,
  );
}

const lossAt = (i: number) => 0.5 * Math.exp(-i / 60) + 0.02 * Math.sin(i);

test('movingAverage: running mean over the window, shorter at the start', () => {
  assert.deepEqual(movingAverage([1, 3, 5, 7], 2), [1, 2, 4, 6]);
  assert.deepEqual(movingAverage([2, 4], 10), [2, 3]);
  assert.deepEqual(movingAverage([], 5), []);
});

test('liveTraining: the chart is one display, created once and then updated in place every `every` steps', async () => {
  const n0 = tf.memory().numTensors;
  const sent = await inFakeNotebook(async () => {
    const live = liveTraining({ id: 'steps', title: 'Chart', every: 20 });
    assert.equal(live.inNotebook, true);
    for (let i = 1; i <= 200; i++) {
      live.step(i, lossAt(i));
      await live.idle();
    }
    await live.done();
    live.step(201, 1); // ignored after done
    await live.idle();
  });
  const chart = ofKind(sent, 'chart');
  assert.equal(sent.length, chart.length, 'only the chart (no progress line without total)');
  assertOneDisplay(chart, 'chart');
  // Drawn at step 1, 21, …, 181, and the last points at done(): 200 steps, 11 messages.
  assert.equal(chart.length, 11);
  assert.match(chart[0].data['text/plain'], /step 1,/);
  assert.match(chart[chart.length - 1].data['text/plain'], /step 200, loss [\d.]+, mean of the last 50 steps [\d.]+$/);
  const meta = await sharp(Buffer.from(chart[chart.length - 1].data['image/png'], 'base64')).metadata();
  assert.equal(meta.format, 'png');
  assert.equal(meta.width, 720);
  assert.equal(meta.height, 400);
  assert.equal(tf.memory().numTensors, n0, 'no tensor made');
});

test('liveTraining: by default the chart is redrawn at most every intervalMs', async () => {
  const sent = await inFakeNotebook(async () => {
    const live = liveTraining({ id: 'time', title: 'Chart', intervalMs: 60_000 });
    for (let i = 1; i <= 300; i++) {
      live.step(i, lossAt(i));
      await live.idle();
    }
    await live.done();
    await live.done(); // twice is harmless
  });
  const chart = ofKind(sent, 'chart');
  assertOneDisplay(chart, 'chart');
  assert.equal(chart.length, 2, 'the first point, then the final state');
});

test('liveTraining: the chart PNG follows the losses (same losses, same PNG; other losses, other PNG)', async () => {
  const run = (f: (i: number) => number) =>
    inFakeNotebook(async () => {
      const live = liveTraining({ id: 'png', title: 'Chart', every: 50 });
      for (let i = 1; i <= 100; i++) {
        live.step(i, f(i));
        await live.idle();
      }
      await live.done();
    }).then((s) => ofKind(s, 'chart').map((m) => m.data['image/png']));
  const a = await run(lossAt);
  const b = await run(lossAt);
  const c = await run((i) => (i > 60 ? 10 * lossAt(i) : lossAt(i)));
  assert.deepEqual(a, b, 'deterministic');
  assert.equal(a[0], c[0], 'same first points');
  assert.notEqual(a[a.length - 1], c[c.length - 1], 'different losses, different chart');
  assert.notEqual(a[0], a[a.length - 1], 'the chart changes as steps come in');
});

test('liveTraining: the sample grid is one display replaced once per epoch, titled with the epoch; tensors untouched', async () => {
  const imgs = tf.tidy(() => tf.linspace(0, 1, 4 * 784).reshape([4, 28, 28, 1])) as tf.Tensor4D;
  const n0 = tf.memory().numTensors;
  const sent = await inFakeNotebook(async () => {
    const live = liveTraining({ id: 'digits', title: 'Chart', total: 30, epochs: 3, gridTitle: 'Digits', every: 5 });
    for (let e = 1; e <= 3; e++) {
      for (let i = 1; i <= 10; i++) live.step((e - 1) * 10 + i, lossAt(i));
      await live.epoch(e, imgs, `cap ${e}`, { cols: 2, captions: ['a', 'b', 'c', 'd'] });
    }
    await live.epoch(4); // no images: no grid message
    await live.done();
  });
  assert.equal(tf.memory().numTensors, n0, 'no tensor made or disposed');
  assert.equal(imgs.isDisposed, false, 'the caller keeps its images');
  const grid = ofKind(sent, 'grid');
  assertOneDisplay(grid, 'grid');
  assert.equal(grid.length, 3, 'one grid message per epoch with images');
  grid.forEach((m, i) => assert.equal(m.data['text/plain'], `[live digits] Digits after epoch ${i + 1}/3 (cap ${i + 1})`));
  assert.notEqual(grid[0].data['image/png'], grid[1].data['image/png'], 'the drawn title changes with the epoch');
  // Each epoch brings the chart up to date before the grid: the chart message before grid k shows step 10k.
  grid.forEach((g, k) => {
    const before = sent.slice(0, sent.indexOf(g));
    const lastChart = ofKind(before, 'chart').pop()!;
    assert.match(lastChart.data['text/plain'], new RegExp(`step ${10 * (k + 1)}/30,`));
  });
  assertOneDisplay(ofKind(sent, 'chart'), 'chart');
  const prog = ofKind(sent, 'progress');
  assertOneDisplay(prog, 'progress line');
  assert.match(prog[prog.length - 1].data['text/plain'], /30\/30 100%/);
  assert.equal(new Set(sent.map((s) => s.id)).size, 3, 'three outputs in all');
  imgs.dispose();
});

test('liveTraining in a terminal: the progress line on stderr, no display message, nothing on stdout', async () => {
  const imgs = tf.zeros([2, 28, 28, 1]) as tf.Tensor4D;
  const err: string[] = [];
  const out: string[] = [];
  const origErr = process.stderr.write.bind(process.stderr);
  const origOut = process.stdout.write.bind(process.stdout);
  const prev = process.env.DIFFUSION_DISPLAY;
  process.env.DIFFUSION_DISPLAY = 'terminal';
  let inNotebook = true;
  const sent = await inFakeNotebook(async () => {
    process.stderr.write = ((s: string | Uint8Array, ...rest: never[]) => (
      err.push(String(s)),
      origErr(s, ...rest)
    )) as typeof process.stderr.write;
    process.stdout.write = ((s: string | Uint8Array, ...rest: never[]) => (
      out.push(String(s)),
      origOut(s, ...rest)
    )) as typeof process.stdout.write;
    try {
      const live = liveTraining({ id: 'term', title: 'Chart', total: 20, label: 'training term', every: 2, epochs: 2 });
      inNotebook = live.inNotebook;
      for (let i = 1; i <= 20; i++) live.step(i, lossAt(i), `epoch ${i > 10 ? 2 : 1} loss ${lossAt(i).toFixed(4)}`);
      await live.epoch(1, imgs, 'cap');
      await live.idle();
      await live.done();
    } finally {
      process.stderr.write = origErr;
      process.stdout.write = origOut;
      if (prev === undefined) delete process.env.DIFFUSION_DISPLAY;
      else process.env.DIFFUSION_DISPLAY = prev;
    }
  });
  assert.equal(inNotebook, false);
  assert.equal(sent.length, 0, 'no display message');
  assert.ok(
    err.some((s) => /training term \[#+\] 20\/20 100% .* epoch 2 loss/.test(s)),
    `progress line: ${JSON.stringify(err)}`,
  );
  assert.ok(!out.some((s) => s.includes('[live') || s.includes('Chart')), 'nothing printed on stdout');
  assert.equal(imgs.isDisposed, false);
  imgs.dispose();
});

test('withEmaWeights: a temporary copy holding the EMA parameters and the live BatchNorm stats, disposed after', async () => {
  const net = new UNet({ kind: 'time', D: 2 }, 1);
  const ema = new Ema(net.store.params, 0.5);
  // Move the live weights and BatchNorm stats away from the EMA copy.
  for (const v of [...net.store.params.values(), ...net.store.buffers.values()]) tf.tidy(() => v.assign(tf.add(v, 1)));
  const n0 = tf.memory().numTensors;
  let copy: UNet | undefined;
  const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
  const got = await withEmaWeights(net, ema, async (m) => {
    copy = m;
    assert.notEqual(m, net);
    for (const [name, v] of m.store.params) assert.equal(maxDiff(v, ema.shadow.get(name)!), 0, `param ${name} from the EMA`);
    for (const [name, v] of m.store.buffers) assert.equal(maxDiff(v, net.store.buffers.get(name)!), 0, `buffer ${name} from the net`);
    assert.ok(maxDiff(m.store.params.get([...m.store.params.keys()][0])!, net.store.params.get([...net.store.params.keys()][0])!) > 0.5);
    await new Promise((r) => setTimeout(r, 5)); // the copy lives until fn's promise settles
    assert.equal([...m.store.params.values()][0].isDisposed, false);
    return 42;
  });
  assert.equal(got, 42);
  assert.equal(copy!.store.params.size, 0, 'the copy is disposed');
  assert.equal(tf.memory().numTensors, n0, 'no tensor left');
  assert.equal(await withEmaWeights(net, null, (m) => m === net), true, 'no EMA: the net itself');
  await assert.rejects(
    withEmaWeights(net, ema, () => {
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(tf.memory().numTensors, n0, 'no tensor left after a failure');
  assert.equal([...net.store.params.values()][0].isDisposed, false);
  ema.dispose();
  net.dispose();
});

const tiny = { D: 2, batch: 4, epochs: 2, imagesPerEpoch: 8, T: 20 };

/**
 * Tensors that constructing and disposing a Trainer leaves behind by itself (lib/training/ema.ts's
 * constructor keeps its p.clone() inputs: one per parameter when the config has an EMA), so that
 * retrain is checked to add none of its own.
 */
function trainerLeak(model: 'denoiser' | 'time' | 'class', config: Partial<TrainConfig>): number {
  const n = tf.memory().numTensors;
  new Trainer(presetConfig(model, 'cpu', config)).dispose();
  return tf.memory().numTensors - n;
}

test('retrain (Part B notebook): live chart and one sample grid per epoch for each model, weights written, no tensor left', async () => {
  const data = fakeData(8);
  for (const [model, extra] of [
    ['time', {}],
    ['class', { emaDecay: 0.9 }],
    ['denoiser', {}],
  ] as const) {
    const outDir = path.join(tmp, `retrain-${model}`);
    const known = trainerLeak(model, { ...tiny, ...extra });
    const n0 = tf.memory().numTensors;
    const sent = await inFakeNotebook(() => retrain(model, 'cpu', 0, { config: { ...tiny, ...extra }, data, previewData: data, outDir }));
    const grid = ofKind(sent, 'grid');
    assertOneDisplay(grid, `${model} grid`);
    assert.equal(grid.length, 2, `${model}: one grid per epoch`);
    grid.forEach((m, i) =>
      assert.match(m.data['text/plain'], new RegExp(`after epoch ${i + 1}/2 \\(step ${2 * (i + 1)}, epoch mean loss`)),
    );
    if (model === 'class') assert.match(grid[0].data['text/plain'], /EMA weights/);
    const tiles = { time: 16, class: 20, denoiser: 24 }[model];
    const cols = { time: 8, class: 10, denoiser: 8 }[model];
    const meta = await sharp(Buffer.from(grid[0].data['image/png'], 'base64')).metadata();
    assert.ok(
      meta.width! >= cols * 84 && meta.height! >= (tiles / cols) * 84,
      `${model}: ${tiles} tiles in ${cols} columns (${meta.width}x${meta.height})`,
    );
    const chart = ofKind(sent, 'chart');
    assertOneDisplay(chart, `${model} chart`);
    assert.match(chart[chart.length - 1].data['text/plain'], /step 4\/4,/);
    const prog = ofKind(sent, 'progress');
    assertOneDisplay(prog, `${model} progress`);
    assert.match(prog[prog.length - 1].data['text/plain'], /training .* 4\/4 100%/);
    assert.equal(new Set(sent.map((s) => s.id)).size, 3, `${model}: three outputs`);
    assert.ok(fs.existsSync(path.join(outDir, 'final.weights')) && fs.existsSync(path.join(outDir, 'epoch-1.weights')));
    assert.equal(tf.memory().numTensors - n0, known, `${model}: no tensor left (beyond the Trainer's own ${known})`);
  }
});

test('retrain: the live previews leave training unchanged (same losses as in a terminal)', async () => {
  const data = fakeData(8);
  const cfg = { ...tiny, emaDecay: 0.9 };
  const nbDir = path.join(tmp, 'same-nb');
  const termDir = path.join(tmp, 'same-term');
  const known = trainerLeak('time', cfg);
  const n0 = tf.memory().numTensors;
  const sent = await inFakeNotebook(() => retrain('time', 'cpu', 0, { config: cfg, data, outDir: nbDir }));
  assert.equal(tf.memory().numTensors - n0, known, "notebook: the previews (EMA copy, samples) leave no tensor beyond the Trainer's own");
  assert.equal(ofKind(sent, 'grid').length, 2);
  await retrain('time', 'cpu', 0, { config: cfg, data, outDir: termDir });
  assert.equal(tf.memory().numTensors - n0, 2 * known, "terminal: nothing beyond the Trainer's own");
  const losses = (dir: string) => (loadTensorFile(path.join(dir, 'final.weights')).meta as { losses: number[] }).losses;
  assert.equal(losses(nbDir).length, 4);
  assert.deepEqual(losses(nbDir), losses(termDir));
  // And the epoch-by-epoch loop is one plain Trainer.run.
  const tr = new Trainer(presetConfig('time', 'cpu', { seed: 0, ...cfg }));
  await tr.run(data);
  assert.deepEqual(tr.state.losses, losses(nbDir));
  tr.dispose();
  const a = loadTensorFile(path.join(nbDir, 'final.weights')).tensors;
  const b = loadTensorFile(path.join(termDir, 'final.weights')).tensors;
  for (const [k, v] of a) assert.deepEqual(v.data, b.get(k)!.data, k);
});

test('windowMeans: the average line starts where its window is full, and names its window', () => {
  const y = [8, 4, 2, 1, 1, 1, 1, 1];
  const x = y.map((_, i) => i + 1);
  const m = windowMeans(x, y, 3);
  assert.equal(m.name, 'mean of the last 2 steps', 'a quarter of an 8-step run is shorter than 3');
  assert.deepEqual(m.x, [2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(m.y, [6, 3, 1.5, 1, 1, 1, 1]);
  const long = Array.from({ length: 400 }, (_, i) => 1 / (i + 1));
  const l = windowMeans(
    long.map((_, i) => i),
    long,
    50,
  );
  assert.equal(l.name, 'mean of the last 50 steps');
  assert.equal(l.x[0], 49);
  assert.ok(Math.abs(l.y[0] - long.slice(0, 50).reduce((a, b) => a + b, 0) / 50) < 1e-12);
});
