/**
 * The GPU check's driver (scripts/gpu/check.ts) on the wasm engine with tiny settings: it trains,
 * times, samples a class grid into a valid PNG, writes its JSON, and summarizes. This keeps the
 * prepared device check working as the Part B code it calls evolves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';

const CHECK = path.resolve(__dirname, '..', '..', 'scripts', 'gpu', 'check.js');

test('check.js (wasm, smoke): timings, projection fields, a 10×4 class grid, and a summary', { timeout: 120_000 }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-check-'));
  const run = spawnSync(
    process.execPath,
    [
      CHECK,
      '--engine',
      'wasm',
      '--preset',
      'smoke',
      '--models',
      'time,class',
      '--steps',
      '2',
      '--warmup',
      '1',
      '--grid-steps',
      '3',
      '--sample-steps',
      '1',
      '--out',
      out,
    ],
    {
      encoding: 'utf8',
      env: { ...process.env, DIFFUSION_THREADS: '1' },
    },
  );
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^engine: wasm/m);
  assert.match(run.stdout, /train time +D=4 B=4: 2 steps/);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'check-wasm.json'), 'utf8'));
  assert.equal(summary.results.length, 2);
  for (const r of summary.results) {
    assert.ok(r.imagesPerSecond > 0 && Number.isFinite(r.lastLoss), `${r.model}: img/s ${r.imagesPerSecond}, loss ${r.lastLoss}`);
    assert.ok(r.sampleSecondsPerStep > 0);
    // Reference run length from the trainer's preset: 20 epochs × ⌈60000/128⌉ steps.
    assert.equal(r.referenceSteps, 20 * Math.ceil(60000 / 128));
  }
  const meta = await sharp(path.join(out, 'grid-class-wasm.png')).metadata();
  assert.equal(meta.format, 'png');
  assert.equal(meta.width, 280);
  assert.equal(meta.height, 112);
  const sum = spawnSync(process.execPath, [CHECK, '--summary', out], { encoding: 'utf8' });
  assert.equal(sum.status, 0, sum.stderr);
  assert.match(sum.stdout, /class +gpu: - \| wasm: [\d.]+ img\/s/);
  fs.rmSync(out, { recursive: true, force: true });
});

test('check.js rejects bad options with one clear line', () => {
  const run = spawnSync(process.execPath, [CHECK, '--models', 'unet9'], { encoding: 'utf8' });
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /unknown model "unet9" in --models: use denoiser,time,class/);
});
