/**
 * The oneDNN addon (native/) under hostile arguments: child processes (nativeFuzzChild.ts) each
 * make the calls issue 32 reported as crashes and then thousands of random valid, invalid and
 * chaotic calls. The test fails if a child dies (a signal, an abort, a non-zero exit), if a valid
 * call threw, an invalid one returned, an error was not one line naming its function, or a call
 * wrote outside its arrays. Skips when the addon is not built, unless DIFFUSION_REQUIRE_NATIVE=1.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { NATIVE_ADDON_PATH, nativeStatus } from '../../lib/engine/native';
import { setting } from '../../lib/config';

const status = nativeStatus();
const required = setting('DIFFUSION_REQUIRE_NATIVE') === '1';
const skip = status.addon || required ? false : `the oneDNN addon is not built (${'why' in status ? status.why : ''})`;

const CHILD = path.join(__dirname, 'nativeFuzzChild.js');
const CHILDREN = 4;
const CALLS = 5000;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runChild(seed: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CHILD, NATIVE_ADDON_PATH, String(seed), String(CALLS)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

test(
  `${CHILDREN} × ${CALLS} random hostile calls of the addon: none crashes, every bad one throws one line`,
  { skip, timeout: 300_000 },
  async () => {
    assert.ok(status.addon, 'the oneDNN addon must be built here (DIFFUSION_REQUIRE_NATIVE=1)');
    const outcomes = await Promise.all(Array.from({ length: CHILDREN }, (_, i) => runChild(3200 + i)));
    let threw = 0;
    let returned = 0;
    outcomes.forEach((o, i) => {
      const where = `child ${i} (seed ${3200 + i})`;
      assert.equal(o.signal, null, `${where} was killed by ${o.signal}:\n${o.stderr.slice(-2000)}`);
      assert.equal(o.code, 0, `${where} exited with ${o.code}:\n${o.stderr.slice(-2000)}`);
      const r = JSON.parse(o.stdout.trim()) as { calls: number; threw: number; returned: number; failures: string[]; failed: number };
      assert.ok(r.calls > CALLS, `${where} made every call (${r.calls})`);
      assert.deepEqual(r.failures, [], `${where}: ${r.failed} calls misbehaved`);
      threw += r.threw;
      returned += r.returned;
    });
    // Both outcomes are exercised: valid calls run, bad ones throw.
    assert.ok(returned > CHILDREN * CALLS * 0.15, `calls that returned: ${returned}`);
    assert.ok(threw > CHILDREN * CALLS * 0.5, `calls that threw: ${threw}`);
  },
);
