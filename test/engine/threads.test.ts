/**
 * DIFFUSION_THREADS (lib/config.ts, read by lib/engine): a value that is not a whole number of
 * threads is one clear line and a nonzero exit — not a wasm stack trace, nor a silent fall back
 * to another engine — and a valid one is named in the engine line.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const DIST = path.resolve(__dirname, '..', '..');
const engine = path.join(DIST, 'lib', 'engine', 'index.js');

function init(threads: string, choice: string): { status: number | null; out: string } {
  const code = `require(${JSON.stringify(engine)}).initEngine({ engine: ${JSON.stringify(choice)} }).then(() => process.exit(0), (e) => { console.error('error: ' + e.message); process.exit(1); })`;
  const r = spawnSync(process.execPath, ['-e', code], {
    encoding: 'utf8',
    env: { ...process.env, DIFFUSION_ENGINE: '', DIFFUSION_THREADS: threads },
    timeout: 60_000,
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

test('DIFFUSION_THREADS=abc, 0, 2.5 or -1: one line naming the variable and the fix, for every engine choice', () => {
  for (const [value, choice] of [
    ['abc', 'wasm'],
    ['abc', 'auto'],
    ['0', 'wasm'],
    ['2.5', 'wasm'],
    ['-1', 'cpu'],
  ]) {
    const r = init(value, choice);
    assert.equal(r.status, 1, `${value}/${choice}: ${r.out}`);
    assert.match(
      r.out,
      new RegExp(
        `^error: DIFFUSION_THREADS="${value.replace('.', '\\.')}" is not a thread count: set a whole number 1\\.\\.1024 \\(e\\.g\\. DIFFUSION_THREADS=\\d+\\), or unset it for one thread per core \\(\\d+\\)\\n$`,
      ),
    );
    assert.doesNotMatch(r.out, /engine: /, `${value}/${choice}: no engine started (no silent fallback)`);
  }
});

test('a valid DIFFUSION_THREADS is named in the engine line', () => {
  const r = init('1', 'wasm');
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /^engine: wasm( \+ oneDNN [\d.]+)? \(backend wasm, 1 thread from DIFFUSION_THREADS=1\)$/m);
});

test('a command with DIFFUSION_THREADS=abc exits 1 with one line, before any work', () => {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'threads-')), 'run');
  const r = spawnSync(process.execPath, [path.join(DIST, 'scripts', 'train.js'), '--model', 'time', '--out', out], {
    encoding: 'utf8',
    env: { ...process.env, DIFFUSION_ENGINE: 'wasm', DIFFUSION_THREADS: 'abc' },
    timeout: 60_000,
  });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^error: DIFFUSION_THREADS="abc" is not a thread count: .*\n$/);
  assert.doesNotMatch(r.stderr, /\n\s+at |RuntimeError|wasm:\/\//, 'no wasm trace');
  assert.ok(!fs.existsSync(out), 'nothing written');
});
