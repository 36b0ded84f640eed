/**
 * The Part A notebook as a learner meets it: Debian's classic Jupyter Notebook 6.4 and the tslab
 * kernel in headless Chromium at 1280×900, Run All, then Run All again without a restart. Checks
 * what the learner sees: progress lines that appear and move while a section runs and end in a
 * summary; every figure's tile captions whole (the figure outputs' metadata, from lib/display's
 * gridPng); code and outputs without a horizontal scroll; no error output; the engine line in the first
 * cell both times; and the same tensor count after the second run as after the first.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
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

test(
  'Part A in Jupyter (Chromium): Run All shows moving progress lines and whole captions; Run All again leaves the tensor count',
  { skip: skipReason(), timeout: 1_200_000 },
  async () => {
    // In notebooks/, so that its ../dist imports resolve; removed afterwards.
    const name = `runall-test-${process.pid}.ipynb`;
    const copy = path.join(PROJECT_ROOT, 'notebooks', name);
    fs.copyFileSync(path.join(PROJECT_ROOT, 'notebooks', 'partA.ipynb'), copy);
    const server = await startNotebookServer(path.join(PROJECT_ROOT, 'notebooks'), { PARTA_MODEL: 'mnist' });
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
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- jupyter log (tail) ---\n${server.log().split('\n').slice(-30).join('\n')}`);
    } finally {
      await browser.close();
      server.stop();
      fs.rmSync(copy, { force: true });
      fs.rmSync(path.join(PROJECT_ROOT, 'notebooks', '.ipynb_checkpoints', name.replace(/\.ipynb$/, '-checkpoint.ipynb')), { force: true });
    }
  },
);
