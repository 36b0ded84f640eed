/**
 * The notebook's drawing canvas end to end: a real classic Jupyter server on 127.0.0.1 with the
 * tslab kernel, the canvas cell executed in headless Chromium, a stroke drawn with the mouse,
 * "Send to kernel" clicked (the page opens a Jupyter comm to the target showDrawingCanvas
 * registered; the kernel calls receiveDrawing and replies), the PNG checked where the kernel wrote
 * it and the page's status read; then a payload that is not a PNG, answered with a one-line error.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import sharp from 'sharp';
import { chromium } from 'playwright-core';
import { runAllCellsInPage } from '../helpers';
import { receiveDrawing, drawingCanvasHtml } from '../../lib/display/drawing';

const CHROMIUM = '/usr/bin/chromium';
const JUPYTER = fs.existsSync('/usr/bin/jupyter') ? '/usr/bin/jupyter' : 'jupyter';
const root = path.resolve(__dirname, '..', '..', '..');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitHttp(url: string, ms: number, gone: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (gone()) throw new Error('the Jupyter server exited');
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > end) throw new Error(`${url} did not answer within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

test('receiveDrawing writes PNGs atomically and refuses anything else', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'partA-draw-'));
  const file = path.join(dir, 'sub', 'd.png');
  const png = Buffer.from('89504e470d0a1a0a0000', 'hex');
  assert.match(receiveDrawing(file, png.toString('base64')), /drawing saved/);
  assert.deepEqual(fs.readFileSync(file), png);
  assert.throws(() => receiveDrawing(file, Buffer.from('hello').toString('base64')), /not a PNG/);
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
        source: `import { showDrawingCanvas } from ${JSON.stringify(lib)};\nshowDrawingCanvas({ file: ${JSON.stringify(file)}, id: 't' });`,
      },
    ],
    metadata: { kernelspec: { display_name: 'TypeScript', language: 'typescript', name: 'tslab' } },
    nbformat: 4,
    nbformat_minor: 4,
  };
  fs.writeFileSync(path.join(dir, 'canvas.ipynb'), JSON.stringify(nb));
  const port = await freePort();
  const env = {
    ...process.env,
    PATH: `${path.join(root, 'node_modules', '.bin')}:${process.env.PATH}`,
    JUPYTER_RUNTIME_DIR: path.join(dir, 'runtime'),
  };
  const server: ChildProcess = spawn(
    JUPYTER,
    [
      'notebook',
      '--no-browser',
      '--ip=127.0.0.1',
      `--port=${port}`,
      '--NotebookApp.token=',
      '--NotebookApp.password=',
      `--notebook-dir=${dir}`,
      ...(process.getuid?.() === 0 ? ['--allow-root'] : []),
    ],
    { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  server.stdout!.on('data', (d) => (log += d));
  server.stderr!.on('data', (d) => (log += d));
  let exited = false;
  server.on('exit', () => (exited = true));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  try {
    await waitHttp(`http://127.0.0.1:${port}/api`, 60_000, () => exited);
    const page = await browser.newPage();
    await runAllCellsInPage(page, `http://127.0.0.1:${port}/notebooks/canvas.ipynb`);
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

    // a page with no handle on the kernel (as in VS Code): the status says so, Download PNG is ready
    await page.evaluate(() => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      (window as any).Jupyter = undefined;
    });
    await page.click('#t-send');
    await page.waitForSelector('#t-status[data-state="none"]', { timeout: 10_000 });
    assert.match((await page.textContent('#t-status')) ?? '', /no kernel connection .*: press Download PNG and save it as /);
    assert.match((await page.getAttribute('#t-download', 'href')) ?? '', /^data:image\/png;base64,/);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- jupyter log (tail) ---\n${log.split('\n').slice(-30).join('\n')}`);
  } finally {
    await browser.close();
    if (server.pid) {
      try {
        process.kill(-server.pid, 'SIGTERM'); // the server and the kernel it started (its process group)
      } catch {
        // already gone
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
