/**
 * The Part A notebook as a learner meets it: Debian's classic Jupyter Notebook 6.4 and the tslab
 * kernel in headless Chromium at 1280×900, Run All, then Run All again without a restart. Checks
 * what the learner sees: progress lines that appear and move while a section runs and end in a
 * summary; every figure's tile captions whole (the figure outputs' metadata, from lib/display's
 * gridPng); code and outputs without a horizontal scroll; no error output; the engine line in the first
 * cell both times; and the same tensor count after the second run as after the first. Then the
 * canvas after Run All (issue 32): the last cell has released the model, and drawing, Send and the
 * next cell must still make the figure, with the model loaded again (a released model used to make
 * noise without an error), the same figure as with the model loaded by its own cell.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import sharp from 'sharp';
import { chromium, type Page } from 'playwright-core';
import { startNotebookServer } from '../helpers';
import { PROJECT_ROOT } from '../../lib/paths';
import { FIGURE_METADATA } from '../../lib/display';

const CHROMIUM = '/usr/bin/chromium';

function skipReason(): string | false {
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} missing (run scripts/setup.sh)`;
  const specs = spawnSync('/usr/bin/jupyter', ['kernelspec', 'list'], { encoding: 'utf8' });
  if (!/^\s*tslab\s/m.test(specs.stdout ?? '')) return 'Jupyter or the tslab kernel missing (run scripts/setup.sh)';
  return false;
}

/** What one Run All showed. */
interface RunResult {
  /** Every distinct progress line seen in the page while it ran, in order. */
  progressLines: string[];
  /** captionsCut of every figure output, by figure id. */
  captionsCut: Record<string, number>;
  /** Cells whose editor or an output scrolls sideways: [cell index, scrollWidth, clientWidth, the output's start]. */
  scrolling: Array<[number, number, number, string?]>;
  /** Text of every error output. */
  errors: string[];
  /** The first code cell's output text and the last cell's. */
  first: string;
  last: string;
}

/** Runs every cell in the open notebook and waits for the last one; returns what the page showed. */
async function runAll(page: Page, timeoutMs: number): Promise<RunResult> {
  const before = await page.evaluate(() => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const J = (window as any).Jupyter;
    const w = window as unknown as { progressSeen: string[]; progressObserver?: MutationObserver };
    w.progressSeen = [];
    w.progressObserver?.disconnect();
    // Progress lines are outputs replaced in place (update_display_data): record each text seen.
    const record = () => {
      for (const el of Array.from(document.querySelectorAll('.output_subarea'))) {
        const text = (el.textContent ?? '').trim();
        if (/: step \[[#.]+\] \d+\/\d+/.test(text) && w.progressSeen[w.progressSeen.length - 1] !== text && !w.progressSeen.includes(text))
          w.progressSeen.push(text);
      }
    };
    w.progressObserver = new MutationObserver(record);
    w.progressObserver.observe(document.getElementById('notebook-container')!, { subtree: true, childList: true, characterData: true });
    const cells = J.notebook.get_cells();
    const last = cells[cells.length - 1];
    const count = last.input_prompt_number;
    J.notebook.execute_all_cells();
    return typeof count === 'number' ? count : -1;
  });
  await page.waitForFunction(
    (prev) => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const J = (window as any).Jupyter;
      const cells = J.notebook.get_cells();
      const last = cells[cells.length - 1];
      const n = last.input_prompt_number;
      const failed = document.querySelector('.output_error');
      return failed !== null || (typeof n === 'number' && n !== prev);
    },
    before,
    { timeout: timeoutMs, polling: 500 },
  );
  return page.evaluate((metaKey) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const J = (window as any).Jupyter;
    const w = window as unknown as { progressSeen: string[] };
    const captionsCut: Record<string, number> = {};
    const scrolling: Array<[number, number, number, string?]> = [];
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const cells: any[] = J.notebook.get_cells();
    const codeText = (c: { output_area?: { element: { text(): string } } }) => c.output_area?.element.text() ?? '';
    const code = cells.filter((c) => c.cell_type === 'code');
    cells.forEach((c, i) => {
      if (c.cell_type !== 'code') return;
      for (const o of c.output_area.outputs) {
        const m = o.metadata?.[metaKey];
        if (m) captionsCut[m.id] = m.captionsCut;
      }
      const scroller = c.element[0].querySelector('.CodeMirror-scroll') as HTMLElement | null;
      if (scroller && scroller.scrollWidth > scroller.clientWidth + 1) scrolling.push([i, scroller.scrollWidth, scroller.clientWidth]);
      for (const out of Array.from(c.element[0].querySelectorAll('.output_subarea')) as HTMLElement[])
        if (out.scrollWidth > out.clientWidth + 1)
          scrolling.push([i, out.scrollWidth, out.clientWidth, (out.innerHTML ?? '').replace(/base64,[^"]*/g, 'base64,…').slice(0, 160)]);
    });
    return {
      progressLines: w.progressSeen.slice(),
      captionsCut,
      scrolling,
      errors: Array.from(document.querySelectorAll('.output_error')).map((e) => (e.textContent ?? '').slice(0, 500)),
      first: codeText(code[0]),
      last: codeText(code[code.length - 1]),
    };
  }, FIGURE_METADATA);
}

/** What one cell showed when run on its own. */
interface CellRun {
  /** Error outputs, "ename: evalue". */
  errors: string[];
  /** Its stream and text outputs. */
  text: string;
  /** The base64 PNG of its figure output with this id, if any. */
  figure?: string;
}

/** Index of the code cell whose source holds `needle`. */
async function cellIndex(page: Page, needle: string): Promise<number> {
  const i = await page.evaluate((n) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const cells: any[] = (window as any).Jupyter.notebook.get_cells();
    return cells.findIndex((c) => c.cell_type === 'code' && String(c.get_text()).includes(n));
  }, needle);
  assert.ok(i >= 0, `a cell holding ${needle}`);
  return i;
}

/** Runs one cell and waits until it finished; returns what it showed (`figureId`: the figure to pick). */
async function runCell(page: Page, index: number, figureId: string, timeoutMs: number): Promise<CellRun> {
  const before = await page.evaluate((i) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const J = (window as any).Jupyter;
    const prev = J.notebook.get_cell(i).input_prompt_number;
    J.notebook.execute_cells([i]);
    return typeof prev === 'number' ? prev : -1;
  }, index);
  await page.waitForFunction(
    ([i, prev]) => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const n = (window as any).Jupyter.notebook.get_cell(i).input_prompt_number;
      return typeof n === 'number' && n !== prev;
    },
    [index, before] as const,
    { timeout: timeoutMs, polling: 500 },
  );
  return page.evaluate(
    ([i, id, metaKey]) => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const outputs: any[] = (window as any).Jupyter.notebook.get_cell(i).output_area.outputs;
      const join = (t: unknown) => (Array.isArray(t) ? t.join('') : String(t ?? ''));
      const figure = outputs.find((o) => o.metadata?.[metaKey]?.id === id)?.data?.['image/png'];
      return {
        errors: outputs.filter((o) => o.output_type === 'error').map((o) => `${o.ename}: ${o.evalue}`),
        text: outputs.map((o) => (o.output_type === 'stream' ? join(o.text) : join(o.data?.['text/plain']))).join('\n'),
        figure: typeof figure === 'string' ? figure : undefined,
      };
    },
    [index, figureId, FIGURE_METADATA] as const,
  );
}

/** Mean and largest absolute difference of two PNGs' pixels (0–255), which must have one size. */
async function pngDifference(a: string, b: string): Promise<{ mean: number; max: number }> {
  const [x, y] = await Promise.all([a, b].map((s) => sharp(Buffer.from(s, 'base64')).raw().toBuffer({ resolveWithObject: true })));
  assert.deepEqual([x!.info.width, x!.info.height, x!.info.channels], [y!.info.width, y!.info.height, y!.info.channels]);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < x!.data.length; i++) {
    const d = Math.abs(x!.data[i]! - y!.data[i]!);
    sum += d;
    max = Math.max(max, d);
  }
  return { mean: sum / x!.data.length, max };
}

test(
  'Part A in Jupyter (Chromium): Run All shows moving progress lines and whole captions; Run All again leaves the tensor count; the canvas works after Run All',
  { skip: skipReason(), timeout: 1_200_000 },
  async () => {
    // In notebooks/, so that its ../dist imports resolve; removed afterwards.
    const name = `runall-test-${process.pid}.ipynb`;
    const copy = path.join(PROJECT_ROOT, 'notebooks', name);
    fs.copyFileSync(path.join(PROJECT_ROOT, 'notebooks', 'partA.ipynb'), copy);
    // The canvas saves here, not over a drawing of the user's (runs/partA/drawing.png).
    const drawingDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runall-drawing-'));
    const drawing = path.join(drawingDir, 'drawing.png');
    const server = await startNotebookServer(path.join(PROJECT_ROOT, 'notebooks'), { PARTA_MODEL: 'mnist', PARTA_DRAWING: drawing });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${server.url}/notebooks/${name}`);
      await page.waitForFunction(
        () => {
          // eslint-disable-next-line @typescript-eslint/no-explicit-any
          const J = (window as any).Jupyter;
          return J?.notebook?.kernel?.is_connected?.() && J.notebook.kernel_selector;
        },
        undefined,
        { timeout: 60_000 },
      );
      // The copy is never saved (the test removes it; outputs would only bloat it).
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      await page.evaluate(() => (window as any).Jupyter.notebook.set_autosave_interval(0));

      const first = await runAll(page, 600_000);
      assert.deepEqual(first.errors, [], 'no cell failed');
      assert.match(first.first, /^engine: \w+( \+ oneDNN [\d.]+)? \(backend/m, 'the engine line in the first cell');

      // Progress: lines that moved (a count below the total seen before the summary) and summaries.
      const parse = (l: string) => /^(.*): step \[[#.]+\] (\d+)\/(\d+) .*?( total)?\b/.exec(l);
      const bySection = new Map<string, { partial: Set<number>; total: number; finished: boolean }>();
      for (const line of first.progressLines) {
        const m = parse(line);
        if (!m) continue;
        const s = bySection.get(m[1]) ?? { partial: new Set<number>(), total: Number(m[3]), finished: false };
        if (/ total\b/.test(line)) s.finished = true;
        else if (Number(m[2]) < Number(m[3])) s.partial.add(Number(m[2]));
        bySection.set(m[1], s);
      }
      const sections = [...bySection.keys()];
      assert.ok(sections.length >= 6, `progress lines of the Part A sections, got: ${sections.join(' | ')}`);
      for (const [label, s] of bySection) assert.ok(s.finished, `${label}: the line ends in a summary`);
      const moving = [...bySection].filter(([, s]) => s.partial.size >= 2).map(([l]) => l);
      assert.ok(moving.length >= 1, `a progress line updated in place during a cell:\n${first.progressLines.join('\n')}`);

      // Captions whole, in every figure.
      const figures = Object.keys(first.captionsCut);
      assert.ok(figures.length >= 10, `figure outputs with metadata: ${figures.join(', ')}`);
      assert.deepEqual(
        figures.filter((id) => first.captionsCut[id] !== 0),
        [],
        'figures with a cut tile caption',
      );
      // Cells fit the page without a sideways scroll.
      assert.deepEqual(first.scrolling, [], 'cells whose code or output scrolls sideways: [cell, scrollWidth, clientWidth, output]');

      const tensors = (r: RunResult) => Number(/TF\.js tensors alive: (\d+)/.exec(r.last)?.[1] ?? NaN);
      assert.ok(Number.isFinite(tensors(first)), `the last cell's tensor count: ${first.last}`);

      // Run All again, no restart: same count, engine line again.
      const second = await runAll(page, 600_000);
      assert.deepEqual(second.errors, [], 'no cell failed on the second run');
      assert.match(second.first, /^engine: \w+( \+ oneDNN [\d.]+)? \(backend.*already started/m, 'the engine line on a re-run');
      assert.equal(tensors(second), tensors(first), 'the tensor count after a second Run All');

      // The canvas after Run All: draw, Send, run the next cell (the model is released by now).
      const canvas = await page.waitForSelector('#partA-draw-canvas', { timeout: 30_000 });
      await canvas.scrollIntoViewIfNeeded();
      const box = (await canvas.boundingBox())!;
      await page.mouse.move(box.x + box.width / 2, box.y + 50);
      await page.mouse.down();
      for (let y = 50; y <= 230; y += 10) await page.mouse.move(box.x + box.width / 2 + (y - 140) / 4, box.y + y);
      await page.mouse.up();
      await page.click('#partA-draw-send');
      await page.waitForSelector('#partA-draw-status[data-state]:not([data-state="sending"])', { timeout: 60_000 });
      const sent = (await page.textContent('#partA-draw-status')) ?? '';
      assert.equal(await page.getAttribute('#partA-draw-status', 'data-state'), 'ok', sent);
      assert.ok(fs.existsSync(drawing), `the canvas saved ${drawing}`);
      const figureCell = await cellIndex(page, "'partA-1.7.1-canvas'");
      const afterRelease = await runCell(page, figureCell, 'partA-1.7.1-canvas', 300_000);
      assert.deepEqual(afterRelease.errors, [], 'the canvas figure after Run All');
      assert.match(afterRelease.text, /the last cell released the model: loaded .* again/);
      assert.ok(afterRelease.figure, `the canvas figure is shown: ${afterRelease.text}`);
      // The same figure from the model as its own cell loads it: not the noise of a released one.
      await runCell(page, await cellIndex(page, 'await selectPartAModel()'), '', 300_000);
      const live = await runCell(page, figureCell, 'partA-1.7.1-canvas', 300_000);
      assert.deepEqual(live.errors, []);
      assert.doesNotMatch(live.text, /loaded .* again/, 'the model was live this time');
      assert.ok(live.figure);
      const diff = await pngDifference(afterRelease.figure, live.figure);
      assert.ok(diff.mean < 0.5 && diff.max <= 8, `the two canvas figures differ: ${JSON.stringify(diff)}`);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- jupyter log (tail) ---\n${server.log().split('\n').slice(-30).join('\n')}`);
    } finally {
      await browser.close();
      server.stop();
      fs.rmSync(copy, { force: true });
      fs.rmSync(drawingDir, { recursive: true, force: true });
      fs.rmSync(path.join(PROJECT_ROOT, 'notebooks', '.ipynb_checkpoints', name.replace(/\.ipynb$/, '-checkpoint.ipynb')), { force: true });
    }
  },
);
