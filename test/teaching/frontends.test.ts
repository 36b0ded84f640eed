/**
 * The notebooks in the front-ends learners open today: JupyterLab 4.6 and Notebook 7.6 (pinned,
 * installed into .venv/frontends by scripts/setup.sh), in headless Chromium at 1280×900, driven the
 * way a learner drives them: the Run menu's "Run All Cells", the mouse on charts and on the drawing
 * canvas, the Kernel menu's "Interrupt Kernel". (test/teaching/runAll.test.ts does the same in the
 * classic Notebook 6.4.) After each Run All: no error output (the notebooks' own tensor checks
 * included) and no output script error; every image output shown inline; every chart drawn by
 * Plotly from its HTML (no Plotly renderer is installed: the fallback beside the chart's Plotly
 * MIME bundle); progress lines updated in place, ending in a summary; no output that scrolls
 * sideways (code lines may: the notebooks' style allows up to 110 characters, and a JupyterLab
 * editor beside the file browser shows about 107). On the first chart: a hover label with the
 * pointer over the plot area, off the curves, and a dragged box that zooms in.
 * JupyterLab, started as a learner starts it (file browser open): 00-smoke, partA (then its canvas
 * sends over the kernel's loopback route, the page having no kernel handle) and partB-flow twice
 * without a restart (the same tensor count). Notebook 7, started with --expose-app-in-browser:
 * 00-smoke, then a cell that never ends is interrupted (the kernel and its state stay), and the
 * canvas sends over a Jupyter comm, then with the app hidden over the loopback route; last, a negative
 * control: a chart whose script fails and a table wider than the page (lib/display's own HTML, broken
 * on purpose) each fail these checks.
 * With DIFFUSION_REQUIRE_FRONTENDS=1 (CI) a missing front-end fails the tests instead of skipping them.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { frontEndMissing, startNotebookServer, type FrontEnd, type NotebookServer } from '../helpers';
import { PROJECT_ROOT } from '../../lib/paths';
import { setting } from '../../lib/config';

const CHROMIUM = '/usr/bin/chromium';
const NOTEBOOKS = path.join(PROJECT_ROOT, 'notebooks');
/**
 * A script error of the front-end itself, not of an output's script: thrown in its own bundles
 * (Notebook 7.6 throws one on every page load), or JupyterLab's debugger asking a kernel that has
 * none (tslab). Output scripts run inline, outside /static/.
 */
function frontEndOwn(e: Error): boolean {
  const top = (e.stack ?? '').split('\n').find((l) => /^\s+at /.test(l)) ?? '';
  return /\/static\/(lab|notebook)\//.test(top) || /No active debugger session/.test(e.message);
}

/** Why the tests of `frontEnd` cannot run here, or false. */
function missing(frontEnd: FrontEnd): string | false {
  return fs.existsSync(CHROMIUM) ? frontEndMissing(frontEnd) : `${CHROMIUM} missing (run scripts/setup.sh)`;
}

/** The test's skip reason: what is missing, except with DIFFUSION_REQUIRE_FRONTENDS=1 (CI), where the test runs and fails on it. */
function skipReason(frontEnd: FrontEnd): string | false {
  return setting('DIFFUSION_REQUIRE_FRONTENDS') === '1' ? false : missing(frontEnd);
}

/** Fails the test when `frontEnd` cannot run (reached only with DIFFUSION_REQUIRE_FRONTENDS=1). */
function requireFrontEnd(frontEnd: FrontEnd): void {
  const why = missing(frontEnd);
  if (why) assert.fail(`DIFFUSION_REQUIRE_FRONTENDS=1: ${why}`);
}

/** What one Run All showed. */
export interface RunResult {
  /** Every distinct progress line seen while it ran, in order. */
  progressLines: string[];
  /** The progress outputs in the page at the end: [cell index, the line's label]. */
  progressOutputs: Array<[number, string]>;
  /** Outputs that scroll sideways: [cell index, scrollWidth, clientWidth, the output's start]. */
  scrolling: Array<[number, number, number, string]>;
  /** Text of every error (stderr) output. */
  errors: string[];
  /** Image outputs: how many, and those not shown (not loaded, or no pixels). */
  images: number;
  brokenImages: string[];
  /** Chart outputs (lib/display's .diffusion-plot divs): their ids, and those Plotly did not draw. */
  charts: string[];
  undrawn: string[];
  /** The output text of the first code cell and of the last one. */
  first: string;
  last: string;
}

/** A copy of notebooks/<name>.ipynb without outputs, in notebooks/ (so that its ../dist imports resolve); returns its file name. */
function copyNotebook(name: string, tag: string): { file: string; cells: number } {
  const nb = JSON.parse(fs.readFileSync(path.join(NOTEBOOKS, `${name}.ipynb`), 'utf8')) as {
    cells: Array<{ cell_type: string; outputs?: unknown[]; execution_count?: number | null }>;
  };
  for (const c of nb.cells)
    if (c.cell_type === 'code') {
      c.outputs = [];
      c.execution_count = null;
    }
  const file = `runall-test-${tag}-${name}-${process.pid}.ipynb`;
  fs.writeFileSync(path.join(NOTEBOOKS, file), JSON.stringify(nb));
  return { file, cells: nb.cells.length };
}

/** A notebook of these code cells, in notebooks/ (so that its ../dist imports resolve); returns its file name. */
function writeNotebook(tag: string, sources: string[]): { file: string; cells: number } {
  const file = `runall-test-${tag}-${process.pid}.ipynb`;
  const cells = sources.map((source) => ({ cell_type: 'code', metadata: {}, execution_count: null, outputs: [], source }));
  const kernelspec = { display_name: 'TypeScript', language: 'typescript', name: 'tslab' };
  fs.writeFileSync(path.join(NOTEBOOKS, file), JSON.stringify({ cells, metadata: { kernelspec }, nbformat: 4, nbformat_minor: 4 }));
  return { file, cells: cells.length };
}

function removeCopy(file: string): void {
  fs.rmSync(path.join(NOTEBOOKS, file), { force: true });
  fs.rmSync(path.join(NOTEBOOKS, '.ipynb_checkpoints', file.replace(/\.ipynb$/, '-checkpoint.ipynb')), { force: true });
}

/** The state of the notebook's kernel from the server (`idle`, `busy`, …), or undefined before it has one. */
async function kernelState(server: NotebookServer, file: string): Promise<string | undefined> {
  const sessions = (await (await fetch(`${server.url}/api/sessions`)).json()) as Array<{
    path: string;
    kernel?: { execution_state?: string };
  }>;
  return sessions.find((s) => s.path === file || s.path.endsWith(`/${file}`))?.kernel?.execution_state;
}

/** Opens the copy in the front-end and waits until every cell is in the page and its kernel is idle. */
async function openNotebook(page: Page, server: NotebookServer, frontEnd: FrontEnd, copy: { file: string; cells: number }): Promise<void> {
  // ?reset: an empty workspace (JupyterLab would reopen the notebooks of the server's earlier pages).
  await page.goto(frontEnd === 'lab' ? `${server.url}/lab/tree/${copy.file}?reset` : `${server.url}/notebooks/${copy.file}`);
  await page.waitForFunction((n) => document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell').length === n, copy.cells, {
    timeout: 90_000,
  });
  const end = Date.now() + 90_000;
  while ((await kernelState(server, copy.file)) !== 'idle') {
    if (Date.now() > end) throw new Error(`the kernel of ${copy.file} did not become idle:\n${server.log().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Shuts the notebook's kernel down through the server's API, from the page (which holds Jupyter's XSRF cookie), freeing its memory. */
async function shutDownKernel(page: Page, file: string): Promise<void> {
  const status = await page.evaluate(async (f) => {
    const xsrf = /(?:^|;\s*)_xsrf=([^;]+)/.exec(document.cookie)?.[1] ?? '';
    const sessions = (await (await fetch('/api/sessions')).json()) as Array<{ id: string; path: string }>;
    const s = sessions.find((x) => x.path === f || x.path.endsWith(`/${f}`));
    if (!s) return 'no session';
    return (await fetch(`/api/sessions/${s.id}`, { method: 'DELETE', headers: { 'X-XSRFToken': decodeURIComponent(xsrf) } })).status;
  }, file);
  assert.equal(status, 204, `the kernel of ${file} shut down`);
}

/** Clicks a menu bar entry, then an item of its menu (the way a learner runs all cells or interrupts). */
async function menu(page: Page, bar: string, item: string): Promise<void> {
  await page.click(`.lm-MenuBar-itemLabel:text-is("${bar}")`);
  await page.click(`.lm-Menu-itemLabel:text-is("${item}")`);
}

/** Run → Run All Cells, and waits until every code cell ran (or one failed); returns what the page showed. */
async function runAll(page: Page, timeoutMs: number): Promise<RunResult> {
  const before = await page.evaluate(() => {
    const w = window as unknown as { progressSeen: string[]; progressObserver?: MutationObserver };
    w.progressSeen = [];
    w.progressObserver?.disconnect();
    // Progress lines are outputs replaced in place (update_display_data): record each text seen.
    const record = () => {
      for (const el of Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output'))) {
        const text = (el.textContent ?? '').trim();
        if (/ \[[#.]+\] \d+\/\d+ /.test(text) && !w.progressSeen.includes(text)) w.progressSeen.push(text);
      }
    };
    w.progressObserver = new MutationObserver(record);
    w.progressObserver.observe(document.querySelector('.jp-NotebookPanel .jp-Notebook')!, {
      subtree: true,
      childList: true,
      characterData: true,
    });
    const counts = Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')).map((p) =>
      Number(/\[(\d+)\]/.exec(p.textContent ?? '')?.[1] ?? 0),
    );
    return Math.max(0, ...counts);
  });
  await menu(page, 'Run', 'Run All Cells');
  await page.waitForFunction(
    (prev) => {
      const prompts = Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')).map(
        (p) => p.textContent ?? '',
      );
      const busy = prompts.some((p) => p.includes('*'));
      const failed = document.querySelector('.jp-NotebookPanel [data-mime-type="application/vnd.jupyter.stderr"]') !== null;
      return !busy && (failed || prompts.every((p) => Number(/\[(\d+)\]/.exec(p)?.[1] ?? 0) > prev));
    },
    before,
    { timeout: timeoutMs, polling: 500 },
  );
  return page.evaluate(() => {
    const w = window as unknown as { progressSeen: string[] };
    const nb = document.querySelector('.jp-NotebookPanel .jp-Notebook')!;
    const cells = Array.from(nb.querySelectorAll('.jp-Cell'));
    const scrolling: Array<[number, number, number, string]> = [];
    const progressOutputs: Array<[number, string]> = [];
    cells.forEach((c, i) => {
      for (const el of Array.from(c.querySelectorAll('.jp-OutputArea-output'))) {
        const m = /^(.*?) \[[#.]+\] \d+\/\d+ /.exec((el.textContent ?? '').trim());
        if (m) progressOutputs.push([i, m[1]!]);
      }
      for (const el of Array.from(c.querySelectorAll('.jp-OutputArea-output')) as HTMLElement[])
        if (el.scrollWidth > el.clientWidth + 1)
          scrolling.push([i, el.scrollWidth, el.clientWidth, el.outerHTML.replace(/base64,[^"]*/g, 'base64,…').slice(0, 200)]);
    });
    const imgs = Array.from(nb.querySelectorAll('.jp-OutputArea-output img')) as HTMLImageElement[];
    const charts = Array.from(nb.querySelectorAll('.diffusion-plot')) as Array<HTMLElement & { _fullLayout?: unknown }>;
    const code = Array.from(nb.querySelectorAll('.jp-CodeCell'));
    const outText = (c: Element | undefined) => (c?.querySelector('.jp-OutputArea')?.textContent ?? '').trim();
    return {
      progressLines: w.progressSeen.slice(),
      progressOutputs,
      scrolling,
      errors: Array.from(nb.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')).map((e) =>
        (e.textContent ?? '').slice(0, 600),
      ),
      images: imgs.length,
      brokenImages: imgs.filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.alt || i.src.slice(0, 60)),
      charts: charts.map((c) => c.id),
      undrawn: charts.filter((c) => !c.classList.contains('js-plotly-plot') || !c._fullLayout).map((c) => c.id),
      first: outText(code[0]),
      last: outText(code[code.length - 1]),
    };
  });
}

/** Checks what every Run All must show. */
function checkRun(name: string, r: RunResult, pageErrors: string[], opts: { images: number; charts: number; progress: number }): void {
  assert.deepEqual(r.errors, [], `${name}: no error output`);
  assert.deepEqual(pageErrors, [], `${name}: no script error in the page`);
  assert.match(r.first, /^engine: \w+/m, `${name}: the engine line in the first cell`);
  assert.ok(r.images >= opts.images, `${name}: at least ${opts.images} image outputs shown inline, got ${r.images}`);
  assert.deepEqual(r.brokenImages, [], `${name}: image outputs that show nothing`);
  assert.ok(r.charts.length >= opts.charts, `${name}: at least ${opts.charts} charts, got ${r.charts.join(', ')}`);
  assert.deepEqual(r.undrawn, [], `${name}: charts Plotly did not draw (a script error, or Plotly missing)`);
  assert.deepEqual(r.scrolling, [], `${name}: outputs that scroll sideways: [cell, scrollWidth, clientWidth, output]`);
  // Progress: each section's line ends in its summary, in one output of its cell; at least one was
  // seen before its end, in that same output: updated in place (update_display_data), not appended.
  const sections = new Map<string, { partial: Set<number>; finished: boolean }>();
  for (const line of r.progressLines) {
    // lib/display's formatProgress: "label [####....] done/total pct rate time left|total info".
    const m = /^(.*?) \[[#.]+\] (\d+)\/(\d+) \d+% .*? [\d:?]+ (left|total)\b/.exec(line);
    if (!m) continue;
    const s = sections.get(m[1]!) ?? { partial: new Set<number>(), finished: false };
    if (m[4] === 'total') s.finished = true;
    else if (Number(m[2]) < Number(m[3])) s.partial.add(Number(m[2]));
    sections.set(m[1]!, s);
  }
  assert.ok(
    sections.size >= opts.progress,
    `${name}: progress lines of ${opts.progress}+ sections, got ${[...sections.keys()].join(' | ')}`,
  );
  for (const [label, s] of sections) assert.ok(s.finished, `${name}: the progress line "${label}" ends in a summary`);
  const outputs = r.progressOutputs.map(([cell, label]) => `${cell} ${label}`);
  assert.deepEqual(
    outputs.filter((o, i) => outputs.indexOf(o) !== i),
    [],
    `${name}: progress lines shown more than once in their cell`,
  );
  assert.deepEqual(
    [...sections.keys()].filter((l) => !r.progressOutputs.some(([, label]) => label === l)),
    [],
    `${name}: progress lines seen while running but not in the page at the end`,
  );
  if (opts.progress > 0)
    assert.ok(
      [...sections.values()].some((s) => s.partial.size >= 1),
      `${name}: a progress line seen before its end while its cell ran:\n${r.progressLines.join('\n')}`,
    );
}

/** The number in the notebook's last line "TF.js tensors alive: N". */
function tensorsAlive(r: RunResult): number {
  return Number(/TF\.js tensors alive: (\d+)/.exec(r.last)?.[1] ?? NaN);
}

/**
 * The first chart of the page, as a learner uses it: the pointer over the plot area off the curves
 * shows a hover label; a box dragged over the plot zooms in (the x range changes and narrows).
 */
async function checkChart(page: Page, name: string): Promise<void> {
  const chart = page.locator('.jp-NotebookPanel .diffusion-plot.js-plotly-plot').first();
  const plotArea = async () =>
    chart.evaluate((el) => {
      const fl = (
        el as HTMLElement & { _fullLayout: { _size: { l: number; t: number; w: number; h: number }; xaxis: { range: number[] } } }
      )._fullLayout;
      const r = el.getBoundingClientRect();
      return { x: r.left + fl._size.l, y: r.top + fl._size.t, w: fl._size.w, h: fl._size.h, range: fl.xaxis.range.slice() };
    });
  // Scrolled into view, and still: JupyterLab lays out the cells coming into view (content-visibility), which moves the chart.
  let a = await plotArea();
  for (let i = 0; i < 20; i++) {
    await chart.scrollIntoViewIfNeeded();
    await page.waitForTimeout(300);
    const b = await plotArea();
    const still = b.x === a.x && b.y === a.y;
    a = b;
    if (still) break;
  }
  const under = (x: number, y: number) =>
    chart.evaluate((el, [px, py]) => el.contains(document.elementFromPoint(px!, py!)), [x, y] as const);
  assert.ok(await under(a.x + a.w / 2, a.y + 12), `${name}: the chart is under the pointer`);
  // Hover near the top of the plot area, at two x positions: no point of the curves needs to be under the pointer.
  for (const fx of [0.3, 0.7]) {
    await page.mouse.move(a.x + a.w * fx - 5, a.y + 12);
    await page.mouse.move(a.x + a.w * fx, a.y + 12);
    // Plotly draws the label on the next frame after the pointer moved.
    let text = '';
    for (let i = 0; i < 30 && !text.trim(); i++) {
      await page.waitForTimeout(100);
      text = await chart.evaluate((el) => el.querySelector('.hoverlayer')?.textContent ?? '');
    }
    assert.ok(text.trim().length > 0, `${name}: a hover label over the chart at ${Math.round(fx * 100)}% of its width`);
  }
  await page.mouse.move(a.x + a.w * 0.3, a.y + a.h * 0.3);
  await page.mouse.down();
  for (let f = 0.35; f <= 0.6; f += 0.05) await page.mouse.move(a.x + a.w * f, a.y + a.h * f);
  await page.mouse.up();
  await page.waitForTimeout(500);
  const b = await plotArea();
  assert.ok(
    b.range[0]! > a.range[0]! && b.range[1]! < a.range[1]!,
    `${name}: a box dragged over the chart zooms in: x range ${JSON.stringify(a.range)} → ${JSON.stringify(b.range)}`,
  );
}

/** A page recording its script errors (the front-end's own noise left out) and its POSTs that carry a drawing. */
async function newPage(browser: Browser): Promise<{ page: Page; errors: string[]; drawingPosts: string[]; commFrames: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  const drawingPosts: string[] = [];
  const commFrames: string[] = [];
  page.on('pageerror', (e) => {
    if (!frontEndOwn(e)) errors.push(`${e.message} ${(e.stack ?? '').split('\n')[1] ?? ''}`.trim());
  });
  page.on('request', (r) => {
    if (r.method() === 'POST' && /"png"/.test(r.postData() ?? '')) drawingPosts.push(r.url());
  });
  page.on('websocket', (ws) =>
    ws.on('framesent', (f) => {
      const text = typeof f.payload === 'string' ? f.payload : f.payload.toString('latin1');
      if (text.includes('comm_open') && text.includes('diffusion.drawing')) commFrames.push(ws.url());
    }),
  );
  return { page, errors, drawingPosts, commFrames };
}

/** Draws a stroke in Part A's canvas and presses Send; returns the status it settles on. */
async function drawAndSend(page: Page): Promise<{ state: string | null; text: string }> {
  await page.evaluate(() => document.getElementById('partA-draw-status')?.removeAttribute('data-state'));
  const canvas = page.locator('#partA-draw-canvas');
  await canvas.scrollIntoViewIfNeeded();
  const box = (await canvas.boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + 50);
  await page.mouse.down();
  for (let y = 50; y <= 230; y += 10) await page.mouse.move(box.x + box.width / 2 + (y - 140) / 4, box.y + y);
  await page.mouse.up();
  await page.click('#partA-draw-send');
  await page.waitForSelector('#partA-draw-status[data-state]:not([data-state="sending"])', { timeout: 60_000 });
  return { state: await page.getAttribute('#partA-draw-status', 'data-state'), text: (await page.textContent('#partA-draw-status')) ?? '' };
}

/** Adds a code cell below the last one (Esc, B, Enter, the code, Shift+Enter, as a learner does) and runs it; returns its index among the code cells. */
async function addCellAndRun(page: Page, code: string): Promise<number> {
  await page
    .locator('.jp-NotebookPanel .jp-Cell')
    .last()
    .click({ position: { x: 4, y: 4 } });
  await page.keyboard.press('Escape');
  await page.keyboard.press('b');
  await page.keyboard.press('Enter');
  await page.keyboard.insertText(code);
  const index = (await page.locator('.jp-NotebookPanel .jp-CodeCell').count()) - 1;
  await page.keyboard.press('Shift+Enter');
  return index;
}

/** Waits until the code cell with this index has run; its output text and execution count. */
async function cellOutput(page: Page, index: number, timeoutMs: number): Promise<{ text: string; count: number }> {
  const cell = page.locator('.jp-NotebookPanel .jp-CodeCell').nth(index);
  await page.waitForFunction((el) => /\[\d+\]/.test(el?.querySelector('.jp-InputPrompt')?.textContent ?? ''), await cell.elementHandle(), {
    timeout: timeoutMs,
    polling: 200,
  });
  return cell.evaluate((el) => ({
    text: (el.querySelector('.jp-OutputArea')?.textContent ?? '').trim(),
    count: Number(/\[(\d+)\]/.exec(el.querySelector('.jp-InputPrompt')?.textContent ?? '')?.[1]),
  }));
}

/** Launches Chromium and a server of `frontEnd`, runs `body`, and cleans up (the server's log tail on failure). */
async function withFrontEnd(
  frontEnd: FrontEnd,
  opts: { exposeApp?: boolean; env?: Record<string, string> },
  body: (browser: Browser, server: NotebookServer) => Promise<void>,
): Promise<void> {
  const server = await startNotebookServer(NOTEBOOKS, opts.env ?? {}, { frontEnd, exposeApp: opts.exposeApp });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  try {
    await body(browser, server);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- jupyter log (tail) ---\n${server.log().split('\n').slice(-30).join('\n')}`, { cause: e });
  } finally {
    await browser.close();
    server.stop();
  }
}

/** Where a test's canvas saves (not over a drawing of the user's in runs/partA). */
function drawingFile(): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'frontends-drawing-'));
  return { dir, file: path.join(dir, 'drawing.png') };
}

test(
  'JupyterLab 4 (Chromium): Run All of 00-smoke, partA and partB-flow (twice: the same tensor count): no errors, images inline, charts drawn with hover and zoom, progress in place, nothing scrolls sideways; partA canvas over the loopback route',
  { skip: skipReason('lab'), timeout: 1_800_000 },
  async () => {
    requireFrontEnd('lab');
    const drawing = drawingFile();
    const copies: string[] = [];
    try {
      await withFrontEnd('lab', { env: { PARTA_MODEL: 'mnist', PARTA_DRAWING: drawing.file } }, async (browser, server) => {
        for (const [name, expect] of [
          ['00-smoke', { images: 2, charts: 1, progress: 1 }],
          ['partA', { images: 15, charts: 0, progress: 6 }],
          ['partB-flow', { images: 4, charts: 4, progress: 0 }],
        ] as const) {
          const copy = copyNotebook(name, 'lab');
          copies.push(copy.file);
          const { page, errors, drawingPosts, commFrames } = await newPage(browser);
          await openNotebook(page, server, 'lab', copy);
          const first = await runAll(page, 900_000);
          checkRun(`${name} in JupyterLab`, first, errors, expect);
          if (first.charts.length) await checkChart(page, `${name} in JupyterLab`);
          if (name === 'partA') {
            // No kernel handle in the page (the app is not exposed): the canvas sends over the loopback route.
            const sent = await drawAndSend(page);
            assert.equal(sent.state, 'ok', sent.text);
            assert.ok(fs.existsSync(drawing.file), `the canvas saved ${drawing.file}`);
            assert.equal(drawingPosts.length, 1, `one POST with the drawing: ${drawingPosts.join(', ')}`);
            assert.ok(!drawingPosts[0]!.startsWith(server.url), `it went to the kernel's route, not to Jupyter: ${drawingPosts[0]}`);
            assert.deepEqual(commFrames, [], 'no comm opened');
          }
          if (name === 'partB-flow') {
            // Run All again, no restart: the same tensor count (the notebook's last cell also checks it).
            assert.ok(Number.isFinite(tensorsAlive(first)), `the last cell's tensor count: ${first.last}`);
            const second = await runAll(page, 900_000);
            checkRun(`${name} in JupyterLab, second Run All`, second, errors, expect);
            assert.match(second.first, /already started/, 'the engine line on a re-run');
            assert.equal(tensorsAlive(second), tensorsAlive(first), 'the tensor count after a second Run All');
          }
          await shutDownKernel(page, copy.file);
          await page.close();
        }
      });
    } finally {
      copies.forEach(removeCopy);
      fs.rmSync(drawing.dir, { recursive: true, force: true });
    }
  },
);

test(
  'Notebook 7 (Chromium, app exposed): 00-smoke Run All, chart hover and zoom; the drawing canvas over a comm and, with the app hidden, over the loopback route; interrupt keeps the kernel and its state; a broken chart script and a too-wide table fail the checks',
  { skip: skipReason('notebook7'), timeout: 900_000 },
  async () => {
    requireFrontEnd('notebook7');
    const drawing = drawingFile();
    const smoke = copyNotebook('00-smoke', 'nb7');
    // The canvas as partA shows it (its id and file), without the rest of partA.
    const canvas = writeNotebook('nb7-canvas', [
      "import { initEngine } from '../dist/lib/engine';\nawait initEngine();\nimport { showDrawingCanvas } from '../dist/lib/display/drawing';\nawait showDrawingCanvas();",
    ]);
    // Deliberately broken outputs, made from lib/display's own HTML: a chart whose script fails, and a
    // table forced wider than the page. The checks above must catch each of them.
    const broken = writeNotebook('nb7-broken', [
      "import { initEngine } from '../dist/lib/engine';\nawait initEngine();",
      [
        "import * as tslab from 'tslab';",
        "import { chartHtml, lineChartSpec, plotlyScriptTag, FLUSH_QUEUE_SCRIPT } from '../dist/lib/display/plot';",
        "const spec = lineChartSpec({ title: 'broken', xLabel: 'x', yLabel: 'y', series: [{ name: 'y', x: [0, 1, 2], y: [1, 4, 9] }] });",
        "tslab.display.html(chartHtml('broken-chart', spec).replace('Plotly.newPlot(', 'Plotly.newPlotMisspelled(') + plotlyScriptTag() + FLUSH_QUEUE_SCRIPT);",
      ].join('\n'),
      [
        "import * as tslab from 'tslab';",
        "import { tableHtml } from '../dist/lib/display/table';",
        "tslab.display.html(tableHtml({ columns: ['a', 'b'], rows: [['1', '2']] }).replace('<table', '<table style=\"width:2000px\"'));",
      ].join('\n'),
    ]);
    try {
      await withFrontEnd('notebook7', { exposeApp: true, env: { PARTA_DRAWING: drawing.file } }, async (browser, server) => {
        const { page, errors } = await newPage(browser);
        await openNotebook(page, server, 'notebook7', smoke);
        checkRun('00-smoke in Notebook 7', await runAll(page, 300_000), errors, { images: 2, charts: 1, progress: 1 });
        await checkChart(page, '00-smoke in Notebook 7');

        // Interrupt (Kernel → Interrupt Kernel) a cell that never ends: it stops with an error, and the
        // kernel keeps its state (the notebook's variables and tensors) and its execution count.
        const state = 'console.log(`state: ${mnistTest.count} test digits, ${tf.memory().numTensors} tensors`);';
        const before = await cellOutput(page, await addCellAndRun(page, state), 60_000);
        assert.match(before.text, /^state: 10000 test digits, \d+ tensors$/);
        const spinning = await addCellAndRun(page, 'let spins = 0;\nfor (;;) spins++;');
        const end = Date.now() + 60_000;
        while ((await kernelState(server, smoke.file)) !== 'busy' && Date.now() < end) await page.waitForTimeout(200);
        await page.waitForTimeout(1000);
        await menu(page, 'Kernel', 'Interrupt Kernel');
        const stopped = await cellOutput(page, spinning, 60_000);
        assert.match(stopped.text, /nterrupt/, `the interrupted cell's output: ${stopped.text}`);
        const after = await cellOutput(page, await addCellAndRun(page, state), 60_000);
        assert.equal(after.text, before.text, 'the variables and tensors after the interrupt');
        assert.deepEqual([stopped.count, after.count], [before.count + 1, before.count + 2], 'the same kernel: its count went on');
        await shutDownKernel(page, smoke.file);
        await page.close();

        const c = await newPage(browser);
        await openNotebook(c.page, server, 'notebook7', canvas);
        await runAll(c.page, 120_000);
        // The canvas over the comm (window.jupyterapp is there), then with the app hidden over the loopback route.
        assert.equal(await c.page.evaluate(() => typeof (window as unknown as { jupyterapp?: unknown }).jupyterapp), 'object');
        const overComm = await drawAndSend(c.page);
        assert.equal(overComm.state, 'ok', overComm.text);
        assert.ok(fs.existsSync(drawing.file), `the canvas saved ${drawing.file}`);
        assert.equal(c.commFrames.length, 1, 'the canvas opened one comm to diffusion.drawing');
        assert.equal(c.drawingPosts.length, 0, `and sent nothing over HTTP: ${c.drawingPosts.join(', ')}`);
        fs.rmSync(drawing.file);
        await c.page.evaluate(() => ((window as unknown as { jupyterapp?: unknown }).jupyterapp = undefined));
        const overHttp = await drawAndSend(c.page);
        assert.equal(overHttp.state, 'ok', overHttp.text);
        assert.ok(fs.existsSync(drawing.file));
        assert.equal(c.drawingPosts.length, 1, 'one POST with the drawing');
        assert.ok(!c.drawingPosts[0]!.startsWith(server.url), `it went to the kernel's route: ${c.drawingPosts[0]}`);
        assert.equal(c.commFrames.length, 1, 'no second comm');
        assert.deepEqual([...errors, ...c.errors], [], 'no script error in the pages');
        await shutDownKernel(c.page, canvas.file);
        await c.page.close();

        // The negative control: each deliberately broken output fails the Run All checks.
        const b = await newPage(browser);
        await openNotebook(b.page, server, 'notebook7', broken);
        const r = await runAll(b.page, 120_000);
        const ok = { images: 0, charts: 1, progress: 0 };
        assert.match(b.errors.join('\n'), /newPlotMisspelled/, 'the chart script error reached the page');
        assert.throws(() => checkRun('broken', r, b.errors, ok), /no script error in the page/);
        assert.throws(() => checkRun('broken', r, [], ok), /charts Plotly did not draw/);
        assert.throws(() => checkRun('broken', { ...r, undrawn: [] }, [], ok), /outputs that scroll sideways/);
        assert.doesNotThrow(() => checkRun('broken', { ...r, undrawn: [], scrolling: [] }, [], ok), 'nothing else is wrong with it');
        await shutDownKernel(b.page, broken.file);
      });
    } finally {
      removeCopy(smoke.file);
      removeCopy(canvas.file);
      removeCopy(broken.file);
      fs.rmSync(drawing.dir, { recursive: true, force: true });
    }
  },
);
