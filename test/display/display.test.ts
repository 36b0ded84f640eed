/**
 * The display layer without Jupyter: grid geometry and pixels, captions drawn where they belong,
 * PNG/GIF output, chart PNG, progress formatting, figure registration, and the notebook path
 * through a stand-in for tslab's kernel module.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { initEngine } from '../../lib/engine';
import {
  makeGrid,
  gridPng,
  gridLayout,
  formatProgress,
  progress,
  progressPerCall,
  formatTable,
  tableHtml,
  isNotebook,
  showImages,
  showLossCurve,
  showGif,
  readManifest,
  makeGif,
  linePlotPng,
} from '../../lib/display';
import { formatDuration, formatRate, SectionTimer } from '../../lib/display/progress';
import { niceTicks, svgLinePlot, lineChartSpec, logTicks, LEGEND_GLYPH_PX, type PlotlySpec } from '../../lib/display/plot';
import { fitText, wrapText, FONT_FAMILY } from '../../lib/display/grid';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'display-test-'));

async function rgb(png: Buffer | Uint8Array) {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return {
    data,
    w: info.width,
    h: info.height,
    at: (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)),
  };
}

test('gridLayout: sizes follow tiles, columns, captions and title', () => {
  const a = gridLayout(16, 28, 28, {});
  assert.equal(a.cols, 8);
  assert.equal(a.rows, 2);
  assert.equal(a.tileW, 84); // 28 * ceil(64/28) = 28 * 3
  assert.equal(a.width, 2 * 8 + 8 * 84 + 7 * 6);
  assert.equal(a.height, 2 * 8 + 2 * 84 + 6);
  const b = gridLayout(16, 28, 28, { captions: true, title: 'T', cols: 4, scale: 2 });
  assert.equal(b.cols, 4);
  assert.equal(b.rows, 4);
  assert.equal(b.tileW, 56);
  assert.ok(b.captionH > 0 && b.titleH > 0);
  assert.equal(b.height, 2 * 8 + b.titleH + 4 * (56 + b.captionH) + 3 * 6);
  // A long title widens the canvas and the grid is centered under it.
  const c = gridLayout(2, 28, 28, { scale: 1, title: 'x'.repeat(60) });
  assert.ok(c.width > 2 * 8 + 2 * 28 + 6);
  assert.ok(c.x0 > 8);
  assert.equal(gridLayout(3, 100, 50, {}).tileW, 50, 'large images are not scaled');
  assert.throws(() => gridLayout(0, 28, 28), /no images/);
  assert.equal(fitText('abcdefghijklmnopqrstuvwxyz', 10, 60).length, 9);
  assert.equal(fitText('short', 10, 600), 'short');
});

test('makeGrid: tile pixels, [-1,1] range, grayscale, and captions drawn under their tiles', async () => {
  await initEngine({ engine: 'cpu', quiet: true });
  const before = tf.memory().numTensors;
  // Tile 0 black, tile 1 white, tile 2 mid-gray; [-1,1] range.
  const x = tf.tensor4d(
    [-1, 1, 0].flatMap((v) => new Array(4 * 4).fill(v)),
    [3, 4, 4, 1],
  );
  const png = await makeGrid(x, { range: '[-1,1]', scale: 10, cols: 3, captions: ['zero', 'one', 'two'], title: 'Three tiles' });
  const L = gridLayout(3, 4, 4, { scale: 10, cols: 3, captions: true, title: 'Three tiles' });
  const im = await rgb(png);
  assert.equal(im.w, L.width);
  assert.equal(im.h, L.height);
  const center = (k: number) => im.at(L.x0 + k * (L.cellW + 6) + 20, L.y0 + 20);
  assert.deepEqual(center(0), [0, 0, 0]);
  assert.deepEqual(center(1), [255, 255, 255]);
  assert.deepEqual(center(2), [128, 128, 128]);
  // Text pixels (dark) exist in each caption band and in the title band, and nowhere else is
  // darkened between the tiles.
  const darkIn = (x0: number, y0: number, x1: number, y1: number) => {
    let n = 0;
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (im.at(x, y)[0] < 128) n++;
    return n;
  };
  for (let k = 0; k < 3; k++) {
    const left = L.x0 + k * (L.cellW + 6);
    assert.ok(darkIn(left, L.y0 + L.tileH, left + L.cellW, L.y0 + L.cellH) > 10, `caption ${k} drawn`);
  }
  assert.ok(darkIn(0, 0, L.width, L.titleH + 8) > 30, 'title drawn');
  const noCap = await rgb(await makeGrid(x, { range: '[-1,1]', scale: 10, cols: 3 }));
  assert.equal(noCap.h, gridLayout(3, 4, 4, { scale: 10, cols: 3 }).height);
  // A list of batches with different sizes: smaller images centered in larger tiles.
  const small = tf.ones([1, 2, 2, 3]) as tf.Tensor4D;
  const big = tf.zeros([1, 4, 4, 3]) as tf.Tensor4D;
  const mixed = await rgb(await makeGrid([big, small], { scale: 10 }));
  assert.equal(mixed.w, 2 * 8 + 2 * 40 + 6);
  tf.dispose([x, small, big]);
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(makeGrid(tf.zeros([2, 3, 4, 5]) as tf.Tensor4D), /channel count/);
  await assert.rejects(makeGrid(tf.zeros([4, 4, 1]) as unknown as tf.Tensor4D), /NHWC/);
});

test('makeGif: frames decode back with the grid size; last-frame PNG matches', async () => {
  const frames = [0, 0.5, 1].map((v) => tf.fill([2, 8, 8, 1], v) as tf.Tensor4D);
  const { gif, lastPng, width, height } = await makeGif(frames, { scale: 4, frameTitles: ['a', 'b', 'c'] });
  const meta = await sharp(Buffer.from(gif), { animated: true }).metadata();
  assert.equal(meta.format, 'gif');
  assert.equal(meta.pages, 3);
  assert.equal(meta.width, width);
  assert.equal(meta.pageHeight, height);
  const last = await rgb(lastPng);
  assert.deepEqual(last.at(8 + 10, last.h - 8 - 10), [255, 255, 255]);
  const first = await rgb(await sharp(Buffer.from(gif), { page: 0 }).png().toBuffer());
  assert.ok(first.at(8 + 10, first.h - 8 - 10)[0] < 10, 'first frame black');
  await assert.rejects(makeGif([frames[0], tf.zeros([1, 8, 8, 1]) as tf.Tensor4D]), /frame 1 has shape/);
  tf.dispose(frames);
});

test('chart PNG: size, both series colours present, ticks', async () => {
  const x = [0, 1, 2, 3, 4];
  const png = await linePlotPng({
    title: 'loss',
    series: [
      { name: 'a', x, y: [5, 4, 3, 2, 1] },
      { name: 'b', x, y: [1, 2, 3, 4, 5] },
    ],
    logY: false,
  });
  const im = await rgb(png);
  assert.equal(im.w, 720);
  assert.equal(im.h, 400);
  let blue = 0,
    red = 0;
  for (let i = 0; i < im.data.length; i += 3) {
    const [r, g, b] = [im.data[i], im.data[i + 1], im.data[i + 2]];
    if (b > 200 && r < 130 && g < 140) blue++;
    if (r > 200 && g < 120 && b < 100) red++;
  }
  assert.ok(blue > 100 && red > 100, `blue ${blue} red ${red}`);
  assert.deepEqual(niceTicks(0, 10), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(0.1, 0.35), [0.1, 0.15, 0.2, 0.25, 0.3, 0.35]);
  await assert.rejects(linePlotPng({ title: 't', series: [{ name: 'a', x: [1, 2], y: [1] }] }), /2 x values but 1 y values/);
});

test('chart legend: long series names are drawn whole, inside the plot area', async () => {
  const name = 'moving average (50 steps)';
  // The glyph-width bound the legend is sized with, checked against rendered ink (not the code's arithmetic).
  const probe = `<svg xmlns="http://www.w3.org/2000/svg" width="400" height="30"><rect width="400" height="30" fill="#fff"/><text x="10" y="20" font-size="11" font-family="${FONT_FAMILY}" fill="#000">${name}</text></svg>`;
  const p = await rgb(await sharp(Buffer.from(probe)).png().toBuffer());
  let inkRight = 0;
  for (let y = 0; y < p.h; y++) for (let x = 0; x < p.w; x++) if (p.data[(y * p.w + x) * 3] < 128) inkRight = Math.max(inkRight, x);
  assert.ok(inkRight > 10 + 3 * name.length, `text rendered (${inkRight - 10} px wide)`);
  assert.ok(
    inkRight - 10 <= LEGEND_GLYPH_PX * name.length,
    `${name.length} glyphs take ${inkRight - 10} px, over the ${LEGEND_GLYPH_PX} px/glyph bound`,
  );

  const x = [0, 1, 2, 3];
  const svg = svgLinePlot(
    {
      title: 'loss',
      series: [
        { name: 'loss per step', x, y: [4, 3, 2, 1] },
        { name, x, y: [4, 3.5, 2.5, 1.5] },
      ],
      logY: false,
    },
    720,
    400,
  );
  assert.ok(svg.includes(`>${name}</text>`), 'the name is not cut');
  // In the legend's rows (below the title, above the curves' tick labels), nothing is drawn right
  // of the plot frame (x > 700): the legend stays inside.
  const im = await rgb(await sharp(Buffer.from(svg)).png().toBuffer());
  let outside = 0;
  for (let y = 32; y < 100; y++) for (let xx = 701; xx < im.w; xx++) if (im.data[(y * im.w + xx) * 3] < 200) outside++;
  assert.equal(outside, 0, 'dark pixels right of the plot area');
});

test('progress formatting: bar, counts, rate, time left and total', () => {
  assert.equal(formatProgress('train', 50, 100, 10, 'loss 0.5', 10), 'train [#####.....] 50/100 50% 5.0 it/s 0:10 left loss 0.5');
  assert.equal(formatProgress('s', 100, 100, 3725, '', 4, true), 's [####] 100/100 100% 0:37/it 1:02:05 total');
  assert.equal(formatProgress('x', 0, 10, 0, '', 4), 'x [....] 0/10 0% ? it/s ? left');
  assert.equal(formatDuration(59.6), '1:00');
  assert.equal(formatDuration(3600), '1:00:00');
  assert.equal(formatRate(250), '250 it/s');
  assert.equal(formatRate(0.5), '0:02/it');
});

test('progress in a terminal without TTY writes plain lines to stderr and a final line', () => {
  const lines: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  (process.stderr as { write: unknown }).write = (s: string) => (lines.push(String(s)), true);
  try {
    const p = progress(3, 'job');
    p.tick();
    p.tick(2, 'info');
    p.done();
    p.done();
  } finally {
    (process.stderr as { write: unknown }).write = orig;
  }
  assert.equal(lines.length, 2, lines.join('|')); // first tick, then done (ticks in between are throttled)
  assert.match(lines[0], /^job \[.*\] 1\/3 33% /);
  assert.match(lines[1], /^job \[#+\] 3\/3 100% .* total info\n$/);
});

test('registration: files and manifest under FIGURES_DIR/<notebook>/, first-shown order, re-shown id replaced', async () => {
  const dir = path.join(tmp, 'figs');
  process.env.FIGURES_DIR = dir;
  process.env.FIGURES_NOTEBOOK = 'nb1';
  const logs: string[] = [];
  const origLog = console.log;
  console.log = (...a: unknown[]) => logs.push(a.join(' '));
  try {
    const x = tf.zeros([2, 8, 8, 1]) as tf.Tensor4D;
    await showImages(x, { id: 'first', title: 'First' });
    await showLossCurve({ id: 'curve', title: 'Curve', caption: 'c', series: [{ name: 's', x: [0, 1], y: [1, 0.5] }] });
    await showGif([x, x], { id: 'anim', title: 'Anim' });
    await showImages(x, { id: 'first', title: 'First again' });
    x.dispose();
    await assert.rejects(showImages(tf.zeros([1, 2, 2, 1]) as tf.Tensor4D, { id: '../evil', title: 't' }), /not usable as a file name/);
  } finally {
    console.log = origLog;
    delete process.env.FIGURES_DIR;
    delete process.env.FIGURES_NOTEBOOK;
  }
  assert.equal(logs.length, 4);
  assert.match(logs[0], /^\[figure first\] First \(2 images\) -> .*nb1\/first\.png$/);
  const recs = readManifest(path.join(dir, 'nb1', 'manifest.jsonl'));
  assert.deepEqual(
    recs.map((r) => r.id),
    ['first', 'curve', 'anim'],
  );
  assert.equal(recs[0].title, 'First again');
  assert.equal(recs[1].caption, 'c');
  for (const f of ['first.png', 'curve.png', 'curve.plot.json', 'anim.png', 'anim.gif'])
    assert.ok(fs.existsSync(path.join(dir, 'nb1', f)), f);
  const spec = JSON.parse(fs.readFileSync(path.join(dir, 'nb1', 'curve.plot.json'), 'utf8'));
  assert.deepEqual(spec.data[0].y, [1, 0.5]);
});

test('notebook path: bundles go to the kernel, progress updates one display in place', async () => {
  assert.equal(isNotebook(), false);
  // A stand-in for tslab's kernel module, registered where the display layer looks for it.
  const sent: Array<{ content: { data: Record<string, string>; transient: { display_id?: string } }; update: boolean }> = [];
  const fakePath = path.join(tmp, 'node_modules', 'tslab', 'dist', 'jupyter.js');
  const fake = { lastWriteDisplayData: (content: never, update: boolean) => sent.push({ content, update }) };
  require.cache[fakePath] = { exports: fake, id: fakePath, filename: fakePath, loaded: true } as unknown as NodeJS.Module;
  try {
    assert.equal(isNotebook(), true);
    const x = tf.zeros([1, 4, 4, 1]) as tf.Tensor4D;
    await showImages(x, { id: 'nb-img', title: 'Inline', caption: 'cap' });
    x.dispose();
    assert.ok(sent[0].content.data['image/png'].startsWith('iVBOR'));
    assert.equal(sent[1].content.data['text/markdown'], '*cap*');
    sent.length = 0;
    await showLossCurve({ id: 'nb-curve', title: 'C', series: [{ name: 's', x: [0, 1], y: [1, 2] }] });
    await showLossCurve({ id: 'nb-curve2', title: 'C2', series: [{ name: 's', x: [0, 1], y: [1, 2] }] });
    const h1 = sent[0].content.data['text/html'];
    const h2 = sent[1].content.data['text/html'];
    assert.ok(h1.includes('window.Plotly = Plotly') && h1.length > 1e6, 'first chart carries plotly.js');
    assert.ok(!h2.includes('window.Plotly = Plotly') && h2.length < 1e5, 'later charts do not');
    assert.ok(sent[0].content.data['image/png'], 'static fallback in the bundle');
    // Plotly's own MIME type beside the HTML, for front-ends with a Plotly renderer: the same figure.
    const native = sent[1].content.data['application/vnd.plotly.v1+json'] as unknown as PlotlySpec & { config: object };
    assert.deepEqual(native.data, lineChartSpec({ title: 'C2', series: [{ name: 's', x: [0, 1], y: [1, 2] }] }).data);
    assert.equal((native.layout.title as { text: string }).text, 'C2');
    assert.deepEqual(native.config, { responsive: true, displaylogo: false });
    assert.ok(h2.includes(JSON.stringify(native.config)), 'the HTML draws it with the same config');
    // A hover label wherever the pointer is along x, with whole series names.
    assert.equal(native.layout.hovermode, 'x unified');
    sent.length = 0;
    const p = progress(10, 'nb');
    for (let i = 0; i < 10; i++) p.tick();
    p.done();
    const ids = new Set(sent.map((s) => s.content.transient.display_id));
    assert.equal(ids.size, 1);
    assert.equal(sent[0].update, false);
    assert.ok(sent.slice(1).every((s) => s.update));
    assert.match(sent[sent.length - 1].content.data['text/plain'], /10\/10 100%/);
  } finally {
    delete require.cache[fakePath];
  }
  assert.equal(isNotebook(), false);
});

test('log axes label 1, 2 and 5 of each decade (decades only over four or more), never minor ticks like 0.03', () => {
  const at = (a: number, b: number) => logTicks(Math.log10(a), Math.log10(b)).map((v) => Number((10 ** v).toPrecision(3)));
  assert.deepEqual(at(1, 300), [1, 2, 5, 10, 20, 50, 100, 200]);
  assert.deepEqual(at(0.05, 0.4), [0.05, 0.1, 0.2]);
  assert.deepEqual(at(0.001, 100), [0.001, 0.01, 0.1, 1, 10, 100]);
  assert.deepEqual(at(6.93, 10.7), [7, 8, 9, 10]);
  const svg = svgLinePlot({ title: 't', series: [{ name: 's', x: [1, 300], y: [0.05, 0.4] }], logX: true, logY: true, markers: true });
  assert.match(svg, /\(log scale\)<\/text>/);
  assert.equal((svg.match(/<circle /g) ?? []).length, 2, 'one marker per point');
  // The interactive chart shows the same ticks with their full values (Plotly's own log labels
  // would print 0.05 as a small "5").
  const spec = lineChartSpec({ title: 't', series: [{ name: 's', x: [1, 150, 300], y: [0.4, 0.05, 0.1] }], logX: true, logY: true });
  const axis = (a: unknown) => a as { type: string; tickmode: string; tickvals: number[]; ticktext: string[] };
  assert.deepEqual(axis(spec.layout.yaxis).tickvals, [0.05, 0.1, 0.2]);
  assert.deepEqual(axis(spec.layout.yaxis).ticktext, ['0.05', '0.1', '0.2']);
  assert.deepEqual(axis(spec.layout.xaxis).ticktext, ['1', '2', '5', '10', '20', '50', '100', '200']);
  assert.deepEqual([axis(spec.layout.xaxis).type, axis(spec.layout.yaxis).type, axis(spec.layout.yaxis).tickmode], ['log', 'log', 'array']);
});

test('progressPerCall: the wrapped function’s results pass through; the line finishes at the total-th call', () => {
  const lines: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  (process.stderr as { write: unknown }).write = (s: string) => (lines.push(String(s)), true);
  let out: number[] = [];
  try {
    const double = progressPerCall((x: number) => 2 * x, 3, 'sampling');
    out = [1, 2, 3, 4].map((x) => double(x));
  } finally {
    (process.stderr as { write: unknown }).write = orig;
  }
  assert.deepEqual(out, [2, 4, 6, 8]);
  assert.match(lines[lines.length - 1], /^sampling \[#+\] 3\/3 100% .* total\n$/);
  assert.equal(lines.filter((l) => / total/.test(l)).length, 1, 'one summary line');
});

test('SectionTimer: a section counts the calls of the counted function, times itself, and restores on a throw', () => {
  const lines: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  (process.stderr as { write: unknown }).write = (s: string) => (lines.push(String(s)), true);
  const sections = new SectionTimer();
  const step = sections.counted((x: number) => x + 1);
  let out: number[] = [];
  try {
    assert.equal(step(0), 1, 'outside a section the function just runs');
    out = sections.run('1.4', () => [1, 2, 3, 4, 5].map(step), { what: 'iterative denoising', steps: 5 });
    assert.equal(
      sections.run('1.1', () => 7),
      7,
    );
    assert.throws(
      () =>
        sections.run(
          'bad',
          () => {
            step(1);
            throw new Error('boom');
          },
          { steps: 2 },
        ),
      /boom/,
    );
    step(0); // after the throw no section is active: no line moves
  } finally {
    (process.stderr as { write: unknown }).write = orig;
  }
  assert.deepEqual(out, [2, 3, 4, 5, 6]);
  const finals = lines.filter((l) => / total/.test(l));
  assert.equal(finals.length, 2, lines.join('|'));
  assert.match(finals[0], /^1\.4 iterative denoising: step \[#+\] 5\/5 100% .* total\n$/);
  assert.match(finals[1], /^bad: step \[#+\.+\] 1\/2 50% /);
  assert.deepEqual(Object.keys(sections.seconds), ['1.4', '1.1', 'bad']);
  assert.ok(Object.values(sections.seconds).every((v) => v >= 0 && v < 5));
  assert.match(sections.summary(), /^1\.4 \d+\.\d s, 1\.1 \d+\.\d s, bad \d+\.\d s$/);
});

test('SectionTimer.countCalls: the named methods tick the running section, other members are the object’s own', () => {
  const lines: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  (process.stderr as { write: unknown }).write = (s: string) => (lines.push(String(s)), true);
  class Model {
    scale = 3;
    predict(x: number) {
      return this.scale * x;
    }
    name() {
      return `model ×${this.scale}`;
    }
  }
  const sections = new SectionTimer();
  const counted = sections.countCalls(new Model(), ['predict']);
  try {
    assert.equal(counted.scale, 3);
    assert.equal(counted.name(), 'model ×3', 'other methods keep their this');
    assert.equal(counted.predict, counted.predict, 'the same wrapped function each time');
    assert.deepEqual(
      sections.run('s', () => [counted.predict(1), counted.predict(2)], { steps: 2 }),
      [3, 6],
    );
  } finally {
    (process.stderr as { write: unknown }).write = orig;
  }
  assert.match(lines.filter((l) => / total/.test(l))[0] ?? '', /^s: step \[#+\] 2\/2 100% /);
});

test('tables: aligned text (first column left, numbers right), escaped HTML, and a ragged row refused', () => {
  const t = {
    columns: ['model', 'FD ratio'],
    rows: [
      ['time', '9.21'],
      ['class <γ=5>', '10.7'],
    ],
  };
  assert.equal(formatTable(t), ['model        FD ratio', 'time             9.21', 'class <γ=5>      10.7'].join('\n'));
  const html = tableHtml(t);
  assert.match(html, /<td style="text-align:left[^"]*">class &lt;γ=5&gt;<\/td><td style="text-align:right[^"]*">10\.7<\/td>/);
  assert.equal((html.match(/<tr/g) ?? []).length, 3);
  assert.throws(() => formatTable({ columns: ['a', 'b'], rows: [['1']] }), /row 0 has 1 cells for 2 columns/);
  // A column of words (a quality summary) wraps, left-aligned, so a wide table fits a JupyterLab
  // output; numbers, with their units, never wrap.
  const wide = tableHtml({
    columns: ['model', 'epochs', 'training (s)', 'quality'],
    rows: [
      ['flow-class', '10', '2696', 'FD ratio 8.34, 100% confident, accuracy 100% (worst digit 100%), background 17.3× real'],
      ['time', '45', '4964', '—'],
    ],
  });
  const cells = [...wide.matchAll(/<td style="([^"]*)">([^<]*)<\/td>/g)].map((m) => [m[2], m[1]]);
  assert.match(cells[3]![1]!, /text-align:left;.*white-space:normal/, 'the words wrap');
  assert.match(cells[7]![1]!, /text-align:left;.*white-space:normal/, 'the whole column');
  for (const i of [1, 2, 5, 6]) assert.match(cells[i]![1]!, /text-align:right;.*white-space:nowrap/, `number ${cells[i]![0]}`);
});

test('tile captions wrap at spaces onto up to 3 lines instead of being cut, and the caption band grows to fit', async () => {
  await initEngine({ quiet: true });
  // 10 px font in a 72 px line: about 11 glyphs.
  assert.deepEqual(wrapText('one-step denoised at t=750', 10, 72), ['one-step', 'denoised at', 't=750']);
  const split = wrapText('abcdefghijklmnopqrstuvwxyz', 10, 72);
  assert.equal(split.join(''), 'abcdefghijklmnopqrstuvwxyz', 'a word longer than a line is split, nothing lost');
  assert.equal(split.length, 3);
  assert.ok(
    split.every((l) => l.length * 10 * 0.6 <= 72),
    'every line fits',
  );
  const long = wrapText('a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p', 10, 36);
  assert.equal(long.length, 3);
  assert.ok(long[2].endsWith('…'), 'more than 3 lines: the last one says it goes on');
  assert.deepEqual(wrapText('short', 10, 600), ['short']);
  const x = tf.zeros([2, 28, 28, 1]) as tf.Tensor4D;
  const short = await sharp(await makeGrid(x, { captions: ['a', 'b'] })).metadata();
  const wrapped = await sharp(await makeGrid(x, { captions: ['one-step denoised at t=750', 'b'] })).metadata();
  // gridPng counts the captions that did not fit (what the notebook's figure metadata reports)
  assert.equal((await gridPng(x, { captions: ['one-step denoised at t=750', 'b'] })).captionsCut, 0);
  const tooLong = 'a caption far too long to fit under a tile of twenty-eight pixels in three lines of text';
  assert.equal((await gridPng(x, { captions: [tooLong, tooLong], scale: 1 })).captionsCut, 2);
  x.dispose();
  assert.equal(short.width, wrapped.width);
  assert.ok(wrapped.height! > short.height!, `${wrapped.height} > ${short.height}`);
});
