/**
 * Jupyter comms from an output's script to the tslab kernel, in a real front-end: classic Jupyter
 * Notebook 6.4 (Debian's jupyter-notebook) on 127.0.0.1 in headless Chromium. A cell registers a
 * comm target through the patched tslab (found in require.cache, as lib/display/notebook.ts finds
 * the kernel module) and displays HTML whose script opens a comm to it (BROWSER_COMM from
 * lib/display/comms.ts, the front-end-neutral opener the drawing canvas uses), sends a PNG twice and
 * shows the kernel's answers.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { runAllCellsInPage, startNotebookServer } from '../helpers';
import { BROWSER_COMM } from '../../lib/display/comms';

const CHROMIUM = '/usr/bin/chromium';
const JUPYTER = '/usr/bin/jupyter';

function skipReason(): string | false {
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} missing (run scripts/setup.sh)`;
  const specs = spawnSync(JUPYTER, ['kernelspec', 'list'], {
    encoding: 'utf8',
    env: { ...process.env, PYDEVD_DISABLE_FILE_VALIDATION: '1' },
  });
  if (!/^\s*tslab\s/m.test(specs.stdout ?? '')) return 'Jupyter or the tslab kernel missing (run scripts/setup.sh)';
  return false;
}

test('an output script opens a comm to a tslab comm target in classic Notebook 6.4', { skip: skipReason(), timeout: 180_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kernel-comm-'));
  const file = path.join(dir, 'drawing.png');
  const html = `<div id="t"><canvas id="t-canvas" width="28" height="28" style="background:#000"></canvas>
<button id="t-send">Send</button> <span id="t-status"></span>
<script>(function () {
  ${BROWSER_COMM}
  var status = document.getElementById('t-status');
  var send = null;
  function onMsg(d) { status.textContent = d.ok ? d.note : 'kernel error: ' + d.error; status.setAttribute('data-state', d.ok ? 'ok' : 'error'); }
  document.getElementById('t-send').onclick = function () {
    if (!send) send = openComm('conformance.drawing', document.getElementById('t'), onMsg, function () { send = null; });
    if (!send) { status.textContent = 'no kernel connection'; status.setAttribute('data-state', 'none'); return; }
    send({ png: document.getElementById('t-canvas').toDataURL('image/png').split(',')[1] });
  };
})();</script></div>`;
  const cell = `import * as fs from "fs";
import * as tslab from "tslab";
const key = Object.keys(require.cache).find((k) => /[\\\\/]tslab[\\\\/]dist[\\\\/]jupyter\\.js$/.test(k))!;
const kernelModule = require.cache[key]!.exports;
let received = 0;
kernelModule.registerCommTarget("conformance.drawing", (comm: tslab.Comm) => {
  comm.onMsg = (msg) => {
    const bytes = Buffer.from(String(msg.content.data.png ?? ""), "base64");
    if (bytes.subarray(1, 4).toString() !== "PNG") return comm.send({ ok: false, error: "not a PNG" });
    fs.writeFileSync(${JSON.stringify(file)}, bytes);
    comm.send({ ok: true, note: "drawing " + ++received + ": " + bytes.length + " bytes" });
  };
});
tslab.display.html(${JSON.stringify(html)});`;
  const nb = {
    cells: [{ cell_type: 'code', metadata: {}, execution_count: null, outputs: [], source: cell }],
    metadata: { kernelspec: { display_name: 'TypeScript', language: 'typescript', name: 'tslab' } },
    nbformat: 4,
    nbformat_minor: 4,
  };
  fs.writeFileSync(path.join(dir, 'comm.ipynb'), JSON.stringify(nb));
  const server = await startNotebookServer(dir);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  try {
    const page = await browser.newPage();
    await runAllCellsInPage(page, `${server.url}/notebooks/comm.ipynb`);
    await page.waitForSelector('#t-send', { timeout: 90_000 });
    for (const n of [1, 2]) {
      fs.rmSync(file, { force: true });
      await page.evaluate(() => document.getElementById('t-status')!.removeAttribute('data-state'));
      await page.click('#t-send');
      await page.waitForSelector('#t-status[data-state]', { timeout: 30_000 });
      assert.equal(await page.getAttribute('#t-status', 'data-state'), 'ok', (await page.textContent('#t-status')) ?? '');
      assert.match((await page.textContent('#t-status')) ?? '', new RegExp(`^drawing ${n}: \\d+ bytes$`));
      assert.equal(fs.readFileSync(file).subarray(1, 4).toString(), 'PNG');
    }
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- jupyter log (tail) ---\n${server.log().split('\n').slice(-30).join('\n')}`);
  } finally {
    await browser.close();
    server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
