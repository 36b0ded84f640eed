/**
 * The notebook's drawing canvas end to end: a real classic Jupyter server on 127.0.0.1 with the
 * tslab kernel, the canvas cell executed in headless Chromium, a stroke drawn with the mouse,
 * "Send to kernel" clicked (the page opens a Jupyter comm to the target showDrawingCanvas
 * registered; the kernel calls receiveDrawing and replies), the PNG checked where the kernel wrote
 * it and the page's status read; then a payload that is not a PNG, answered with a one-line error.
 * Then the front-end-neutral path that JupyterLab, Notebook 7 and VS Code users take: the page
 * without its Jupyter object, and an output served from another origin with no Jupyter at all,
 * both sending over the kernel's loopback route with the token each page claimed for the output's
 * one-time code (the same output opened by a second page is told to run the cell again); and the
 * page's answer once the kernel is gone.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { chromium } from 'playwright-core';
import { runAllCellsInPage, startNotebookServer } from '../helpers';
import { receiveDrawing, drawingCanvasHtml } from '../../lib/display/drawing';

const CHROMIUM = '/usr/bin/chromium';
const root = path.resolve(__dirname, '..', '..', '..');

test('receiveDrawing writes PNGs atomically and refuses anything else', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'partA-draw-'));
  const file = path.join(dir, 'sub', 'd.png');
  const png = await sharp({ create: { width: 280, height: 280, channels: 4, background: '#000' } })
    .png()
    .toBuffer();
  assert.match(await receiveDrawing(file, png.toString('base64')), /drawing saved/);
  assert.deepEqual(fs.readFileSync(file), png);
  await assert.rejects(receiveDrawing(file, Buffer.from('hello').toString('base64')), /not a PNG/);
  await assert.rejects(receiveDrawing(file, Buffer.from('89504e470d0a1a0a0000', 'hex').toString('base64')), /not a PNG it can read/);
  assert.deepEqual(fs.readFileSync(file), png);
  assert.match(drawingCanvasHtml({ file, id: 'x' }), /<canvas id="x-canvas"/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a drawing made in the canvas reaches the kernel (Jupyter + tslab + headless Chromium)', { timeout: 180_000 }, async (t) => {
  if (!fs.existsSync(CHROMIUM)) return t.skip('no /usr/bin/chromium');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'partA-canvas-'));
  const file = path.join(dir, 'drawing.png');
  const lib = path.join(root, 'dist', 'lib', 'display', 'drawing');
  const nb = {
    cells: [
      {
        cell_type: 'code',
        metadata: {},
        execution_count: null,
        outputs: [],
        source: `import { showDrawingCanvas } from ${JSON.stringify(lib)};\nawait showDrawingCanvas({ file: ${JSON.stringify(file)}, id: 't' });`,
      },
    ],
    metadata: { kernelspec: { display_name: 'TypeScript', language: 'typescript', name: 'tslab' } },
    nbformat: 4,
    nbformat_minor: 4,
  };
  fs.writeFileSync(path.join(dir, 'canvas.ipynb'), JSON.stringify(nb));
  const server = await startNotebookServer(dir);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  try {
    const page = await browser.newPage();
    await runAllCellsInPage(page, `${server.url}/notebooks/canvas.ipynb`);
    const canvas = await page.waitForSelector('#t-canvas', { timeout: 90_000 });
    const box = (await canvas.boundingBox())!;
    // a vertical stroke down the middle, like a "1"
    await page.mouse.move(box.x + box.width / 2, box.y + 50);
    await page.mouse.down();
    for (let y = 50; y <= 230; y += 10) await page.mouse.move(box.x + box.width / 2, box.y + y);
    await page.mouse.up();
    const settled = '#t-status[data-state]:not([data-state="sending"])';
    await page.click('#t-send');
    await page.waitForSelector(settled, { timeout: 60_000 });
    const okText = (await page.textContent('#t-status')) ?? '';
    assert.equal(await page.getAttribute('#t-status', 'data-state'), 'ok', okText);
    assert.ok(fs.existsSync(file), 'the kernel wrote the drawing');
    const written = fs.readFileSync(file);
    assert.equal(okText, `saved to ${file} (${written.length} bytes)`);
    const { data, info } = await sharp(file).grayscale().raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height], [280, 280]);
    const at = (x: number, y: number) => data[(y * info.width + x) * info.channels];
    for (const y of [60, 140, 220]) assert.ok(at(140, y) > 200, `stroke pixel at (140,${y}) is ${at(140, y)}`);
    for (const [x, y] of [
      [10, 10],
      [270, 270],
      [60, 140],
      [220, 140],
    ])
      assert.ok(at(x, y) < 30, `background at (${x},${y}) is ${at(x, y)}`);

    // a payload that is not a PNG: the kernel refuses it in one line and leaves the file alone
    await page.evaluate(() => {
      const c = document.getElementById('t-canvas') as HTMLCanvasElement;
      c.toDataURL = () => `data:image/png;base64,${btoa('not a png at all')}`;
      document.getElementById('t-status')!.removeAttribute('data-state');
    });
    await page.click('#t-send');
    await page.waitForSelector(settled, { timeout: 60_000 });
    const errText = (await page.textContent('#t-status')) ?? '';
    assert.equal(await page.getAttribute('#t-status', 'data-state'), 'error', errText);
    assert.equal(errText, `kernel error: receiveDrawing: the data for ${file} is not a PNG (16 bytes); send it from the canvas again`);
    assert.deepEqual(fs.readFileSync(file), written, 'the refused payload left the drawing as it was');

    // The front-end-neutral path: a page with no handle on the kernel (as in JupyterLab, Notebook 7
    // and VS Code, where output scripts get no kernel object) sends to the kernel's loopback route.
    const outputHtml = await page.evaluate(() => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const data = (window as any).Jupyter.notebook.get_cell(0).output_area.outputs[0].data['text/html'];
      return Array.isArray(data) ? data.join('') : String(data);
    });
    fs.rmSync(file);
    await page.evaluate(() => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      (window as any).kept = (window as any).Jupyter; // for running the cell again below
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      (window as any).Jupyter = undefined;
      delete (document.getElementById('t-canvas') as unknown as { toDataURL?: unknown }).toDataURL; // the real one again
      document.getElementById('t-status')!.removeAttribute('data-state');
    });
    await page.click('#t-send');
    await page.waitForSelector(settled, { timeout: 60_000 });
    const httpText = (await page.textContent('#t-status')) ?? '';
    assert.equal(await page.getAttribute('#t-status', 'data-state'), 'ok', httpText);
    assert.deepEqual(fs.readFileSync(file), written, 'the same drawing, sent over the loopback route');

    // The output shown by another front-end: a page of another origin with no Jupyter at all. The
    // output already open above spent its claim code there: a second page is told so.
    let served = outputHtml;
    const frontEnd = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(`<!doctype html><html><body>${served}</body></html>`);
    });
    await new Promise<void>((resolve) => frontEnd.listen(0, '127.0.0.1', resolve));
    const frontEndUrl = `http://127.0.0.1:${(frontEnd.address() as net.AddressInfo).port}/`;
    try {
      fs.rmSync(file);
      const twice = await browser.newPage();
      await twice.goto(frontEndUrl);
      await twice.waitForSelector('#t-canvas');
      await twice.click('#t-send');
      await twice.waitForSelector(settled, { timeout: 60_000 });
      assert.equal(await twice.getAttribute('#t-status', 'data-state'), 'error');
      assert.match(
        (await twice.textContent('#t-status')) ?? '',
        /^kernel error: this canvas is already connected to another page .*run its cell again/,
      );
      assert.equal(fs.existsSync(file), false, 'nothing written');
      await twice.close();
      // A fresh output for the other page: the cell run again, the classic page kept from claiming it.
      await page.route(
        (u) => u.pathname.startsWith('/drawing/'),
        (r) => r.abort(),
      );
      served = await page.evaluate(async () => {
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        const J = (window as any).kept;
        const before = J.notebook.get_cell(0).output_area.outputs[0]?.data['text/html'];
        J.notebook.execute_cells([0]);
        for (;;) {
          await new Promise((r) => setTimeout(r, 200));
          const html = J.notebook.get_cell(0).output_area.outputs[0]?.data['text/html'];
          if (html && html !== before) return Array.isArray(html) ? html.join('') : String(html);
        }
      });
      assert.notEqual(served, outputHtml);
      const other = await browser.newPage();
      await other.goto(frontEndUrl);
      assert.equal(await other.evaluate(() => typeof (window as unknown as { Jupyter?: unknown }).Jupyter), 'undefined');
      const box2 = (await (await other.waitForSelector('#t-canvas')).boundingBox())!;
      // a horizontal stroke this time
      await other.mouse.move(box2.x + 50, box2.y + box2.height / 2);
      await other.mouse.down();
      for (let x = 50; x <= 230; x += 10) await other.mouse.move(box2.x + x, box2.y + box2.height / 2);
      await other.mouse.up();
      await other.click('#t-send');
      await other.waitForSelector(settled, { timeout: 60_000 });
      const otherText = (await other.textContent('#t-status')) ?? '';
      assert.equal(await other.getAttribute('#t-status', 'data-state'), 'ok', otherText);
      const png2 = await sharp(file).grayscale().raw().toBuffer({ resolveWithObject: true });
      const at2 = (x: number, y: number) => png2.data[(y * png2.info.width + x) * png2.info.channels];
      for (const x of [60, 140, 220]) assert.ok(at2(x, 140) > 200, `stroke pixel at (${x},140) is ${at2(x, 140)}`);
      assert.ok(at2(140, 60) < 30 && at2(140, 220) < 30, 'only the new, horizontal stroke');

      // once the kernel is gone the page says so, and Download PNG is ready
      server.stop();
      await new Promise((r) => setTimeout(r, 3000));
      await other.evaluate(() => document.getElementById('t-status')!.removeAttribute('data-state'));
      await other.click('#t-send');
      await other.waitForSelector('#t-status[data-state="none"]', { timeout: 20_000 });
      assert.match((await other.textContent('#t-status')) ?? '', /cannot be reached from this page .*: press Download PNG and save it as /);
      assert.match((await other.getAttribute('#t-download', 'href')) ?? '', /^data:image\/png;base64,/);
    } finally {
      frontEnd.close();
    }
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- jupyter log (tail) ---\n${server.log().split('\n').slice(-30).join('\n')}`);
  } finally {
    await browser.close();
    server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
