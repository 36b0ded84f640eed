/** The Part B sample command: one PNG per sample plus a grid; the same seed gives the same files. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { initEngine } from '../../lib/engine';
import { Trainer } from '../../lib/training/trainer';
import { presetConfig } from '../../lib/training/presets';
import { loadTensorFile, saveTensorFile } from '../../lib/weights/tensorFile';

const script = path.resolve(__dirname, '..', '..', 'scripts', 'sample.js');

function sample(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', env: { ...process.env, DIFFUSION_ENGINE: 'cpu' } });
  return { status: r.status, out: r.stdout + r.stderr };
}

test('npm run sample: PNG per sample + grid, deterministic per seed, clear errors', async () => {
  await initEngine({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'partb-cli-'));
  const weights = path.join(dir, 'tiny.weights');
  const tr = new Trainer(presetConfig('class', 'cpu', { D: 2 }));
  await tr.saveWeights(weights);
  tr.dispose();
  const a = sample(['--model', 'class', '--digit', '7', '--count', '2', '--seed', '1', '--weights', weights, '--out', path.join(dir, 'a')]);
  assert.equal(a.status, 0, a.out);
  assert.match(a.out.split('\n')[0], /^engine: cpu/);
  const b = sample(['--model', 'class', '--digit', '7', '--count', '2', '--seed', '1', '--weights', weights, '--out', path.join(dir, 'b')]);
  assert.equal(b.status, 0, b.out);
  const files = fs.readdirSync(path.join(dir, 'a')).sort();
  assert.deepEqual(files, ['grid.png', 'sample-000.png', 'sample-001.png']);
  for (const f of files) assert.deepEqual(fs.readFileSync(path.join(dir, 'a', f)), fs.readFileSync(path.join(dir, 'b', f)), f);
  // A PNG of 28×28 pixels: width and height in the IHDR chunk.
  const png = fs.readFileSync(path.join(dir, 'a', 'sample-000.png'));
  assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [28, 28]);
  const noDigit = sample(['--model', 'class', '--count', '2', '--weights', weights, '--out', path.join(dir, 'c')]);
  assert.notEqual(noDigit.status, 0);
  assert.match(noDigit.out, /needs --digit/);
  const wrongModel = sample(['--model', 'time', '--count', '2', '--weights', weights, '--out', path.join(dir, 'c')]);
  assert.match(wrongModel.out, /holds the class model, not time/);
  const missing = sample(['--model', 'time', '--weights', path.join(dir, 'nope.weights')]);
  assert.match(missing.out, /not found: make them with `npm run train -- --model time/);
});

test('npm run sample: broken (NaN) weights and an unwritable --out are refused; nothing is written', async () => {
  await initEngine({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'partb-cli-bad-'));
  const good = path.join(dir, 'good.weights');
  const tr = new Trainer(presetConfig('class', 'cpu', { D: 2 }));
  await tr.saveWeights(good);
  tr.dispose();
  // The same weights with a NaN in every tensor (written past the trainer, which refuses them).
  const { meta, tensors } = loadTensorFile(good);
  for (const t of tensors.values()) t.data[0] = NaN;
  const nan = path.join(dir, 'nan.weights');
  saveTensorFile(nan, tensors, meta);
  const out = path.join(dir, 'out');
  const r = sample(['--model', 'class', '--digit', '3', '--count', '2', '--weights', nan, '--out', out]);
  assert.equal(r.status, 1, r.out);
  assert.match(
    r.out,
    /error: sampling with .*nan\.weights produced \d+ non-finite pixel values \(NaN or infinite\); nothing was written to .*out — the weights are broken/,
  );
  assert.ok(!fs.existsSync(out), 'no black PNGs written');
  // --out under a regular file: refused before sampling (exit 2, one line, no engine line).
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, 'x');
  const w = sample(['--model', 'class', '--digit', '3', '--count', '2', '--weights', good, '--out', path.join(file, 'sub')]);
  assert.equal(w.status, 2, w.out);
  assert.match(w.out, /^error: --out .*a-file\/sub is not a writable folder: .*a-file is a file; choose another --out\n$/);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['a-file', 'good.weights', 'nan.weights']);
});
