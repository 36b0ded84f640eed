/**
 * The main job end to end on the smoke notebook: executes it in the real Jupyter + tslab kernel
 * into a temporary folder, then opens the report and the executed notebook's HTML in headless
 * Chromium and checks that every image loaded and every Plotly chart drew, with no network.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { chromium, type Browser } from 'playwright-core';
import { readManifest } from '../../lib/display/registry';
import { offlinePage } from '../helpers';

const root = path.resolve(__dirname, '..', '..', '..');
const CHROMIUM = '/usr/bin/chromium';
const haveJupyter = spawnSync('/usr/bin/jupyter', ['kernelspec', 'list'], { encoding: 'utf8' }).stdout?.includes('tslab') ?? false;
const skip = !fs.existsSync(CHROMIUM)
  ? `${CHROMIUM} missing (run scripts/setup.sh)`
  : !haveJupyter
    ? 'Jupyter or the tslab kernel missing (run scripts/setup.sh)'
    : false;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'report-test-'));
const out = path.join(tmp, 'figures');
const executed = path.join(tmp, 'executed');

interface PageCheck {
  images: Array<{ src: string; w: number; complete: boolean }>;
  charts: Array<{ id: string; svg: number; traces: number }>;
  errors: string[];
  offline: string[];
}

async function inspect(browser: Browser, file: string): Promise<PageCheck> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  // Anything not local is refused and recorded (nbconvert's HTML template links CDNs we do not need).
  const { errors, offline } = await offlinePage(page);
  await page.goto('file://' + file, { waitUntil: 'load', timeout: 60000 });
  await page
    .waitForFunction(() => [...document.querySelectorAll('.diffusion-plot')].every((d) => d.querySelector('.main-svg')), undefined, {
      timeout: 30000,
    })
    .catch(() => undefined);
  const res = await page.evaluate(() => ({
    images: [...document.images].map((i) => ({ src: i.src.slice(0, 80), w: i.naturalWidth, complete: i.complete })),
    charts: [...document.querySelectorAll('.diffusion-plot')].map((d) => ({
      id: d.id,
      svg: d.querySelectorAll('.main-svg').length,
      traces: d.querySelectorAll('.scatterlayer .trace').length,
    })),
  }));
  await page.close();
  return { ...res, errors, offline };
}

test(
  'npm run figures on the smoke notebook: executed notebook, PNGs, manifest, report that draws',
  { skip, timeout: 240_000 },
  async () => {
    const res = spawnSync(
      process.execPath,
      [
        path.join(root, 'dist', 'scripts', 'figures.js'),
        '--out',
        out,
        '--executed',
        executed,
        path.join(root, 'notebooks', '00-smoke.ipynb'),
      ],
      {
        encoding: 'utf8',
        cwd: root,
      },
    );
    assert.equal(res.status, 0, `figures failed:\n${res.stdout}\n${res.stderr.slice(-3000)}`);

    // The executed notebook: no errors, engine report line first.
    const nb = JSON.parse(fs.readFileSync(path.join(executed, '00-smoke.ipynb'), 'utf8'));
    const outputs = nb.cells.filter((c: { cell_type: string }) => c.cell_type === 'code').map((c: { outputs: unknown[] }) => c.outputs);
    assert.ok(
      outputs.flat().every((o: { output_type: string }) => o.output_type !== 'error'),
      'no error outputs',
    );
    assert.match(JSON.stringify(outputs[0]), /engine: \w+( \+ oneDNN [\d.]+)? \(backend/);

    // Figures: registered in order, a PNG for each.
    const recs = readManifest(path.join(out, '00-smoke', 'manifest.jsonl'));
    assert.deepEqual(
      recs.map((r) => [r.id, r.kind]),
      [
        ['mnist-digits', 'image'],
        ['ddpm-schedule', 'plot'],
        ['forward-noising', 'gif'],
      ],
    );
    for (const r of recs) {
      const png = fs.readFileSync(path.join(out, r.png));
      assert.equal(png.subarray(1, 4).toString(), 'PNG', r.png);
      assert.ok(png.length > 2000, `${r.png} is ${png.length} bytes`);
    }
    assert.ok(fs.existsSync(path.join(out, 'plotly.min.js')));
    const html = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
    assert.ok(!/src="https?:/.test(html), 'report loads nothing from the network');
    assert.ok(html.indexOf('The first 16 MNIST test digits') < html.indexOf('DDPM schedule'), 'figures in the order shown');

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    try {
      const report = await inspect(browser, path.join(out, 'index.html'));
      assert.deepEqual(report.errors, []);
      assert.deepEqual(report.offline, []);
      assert.equal(report.images.length, 2, JSON.stringify(report.images)); // grid + GIF
      for (const im of report.images) assert.ok(im.complete && im.w > 0, `image ${im.src} did not load`);
      assert.equal(report.charts.length, 1);
      for (const c of report.charts) assert.ok(c.svg > 0 && c.traces === 2, `chart ${c.id} did not draw: ${JSON.stringify(c)}`);

      // The executed notebook's HTML: the inline grid and the live chart (plotly.js embedded in the output).
      const nbPage = await inspect(browser, path.join(executed, '00-smoke.html'));
      assert.deepEqual(
        nbPage.errors.filter((e) => !/require|define|MathJax/i.test(e)),
        [],
      );
      const loaded = nbPage.images.filter((i) => i.w > 0);
      assert.ok(loaded.length >= 2, JSON.stringify(nbPage.images));
      assert.equal(nbPage.charts.length, 1);
      assert.ok(nbPage.charts[0].svg > 0 && nbPage.charts[0].traces === 2, JSON.stringify(nbPage.charts));
    } finally {
      await browser.close();
    }
  },
);
