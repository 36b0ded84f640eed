/**
 * `npm run bench`: training and inference images/s of the Part B class-conditioned UNet on the
 * chosen engine, and of the same network in PyTorch (bench/torch_unet.py) in the same run when
 * `/usr/bin/python3 -c 'import torch'` works. Warm-up excluded, median of several steps. When the
 * oneDNN addon is loaded, one row per engine variant: without it (lever native off) and with it.
 *
 * Options: --D 32,64  --batch 64  --steps 5  --warmup 2  --no-torch  (--help lists them)
 * Environment: DIFFUSION_ENGINE / DIFFUSION_THREADS choose the engine (see README).
 * The last line printed is one JSON object (the machine-readable result).
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, withLevers } from '../lib/engine';
import { median, unetBench } from './common';
import { CliError, exitCodeFor, parseCommandLine } from '../lib/cli';
import { projectPath } from '../lib/paths';

interface Row {
  /** the engine variant, e.g. 'wasm' or 'wasm + oneDNN 2.6.3' */
  engine: string;
  D: number;
  batch: number;
  train_img_s: number;
  infer_img_s: number;
  torch_train_img_s?: number;
  torch_infer_img_s?: number;
}

/** Seconds per call of fn: warm-up calls excluded, median of `steps` timed calls. */
function timeMedian(fn: () => void, warmup: number, steps: number): number {
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    fn();
    ts.push((performance.now() - t0) / 1000);
  }
  return median(ts);
}

function benchTfjs(engine: string, D: number, batch: number, warmup: number, steps: number): Row {
  const b = unetBench('class', D, batch); // its first step builds cached tensors (schedule tables)
  const before = tf.memory().numTensors;
  // One full training step: noise draw, forward process, UNet forward, loss, backward, Adam.
  const trainS = timeMedian(() => b.train(), warmup, steps);
  const inferS = timeMedian(() => b.infer(), warmup, steps);
  if (tf.memory().numTensors !== before)
    console.warn(`warning: tensor count changed during the benchmark (${before} → ${tf.memory().numTensors})`);
  b.dispose();
  return { engine, D, batch, train_img_s: batch / trainS, infer_img_s: batch / inferS };
}

function benchTorch(
  Ds: number[],
  batch: number,
  warmup: number,
  steps: number,
  threads: number,
): Map<number, { train: number; infer: number }> {
  const out = new Map<number, { train: number; infer: number }>();
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    console.log('PyTorch: not available (/usr/bin/python3 -c "import torch" failed); torch columns left out');
    return out;
  }
  const script = projectPath('bench', 'torch_unet.py');
  const r = spawnSync('/usr/bin/python3', [script, JSON.stringify({ D: Ds, batch, warmup, steps, threads })], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`PyTorch reference failed: ${r.stderr.split('\n').filter(Boolean).pop()}`);
  for (const line of r.stdout.split('\n').filter((l) => l.startsWith('{'))) {
    const o = JSON.parse(line) as { D: number; train_img_s: number; infer_img_s: number };
    out.set(o.D, { train: o.train_img_s, infer: o.infer_img_s });
  }
  return out;
}

const USAGE = `usage: npm run bench -- [--D 32,64] [--batch 64] [--steps 5] [--warmup 2] [--no-torch]
Training and inference images/s of the Part B class-conditioned UNet on the chosen engine (DIFFUSION_ENGINE), and in PyTorch when available.`;

const BENCH_OPTIONS = {
  D: { type: 'number', list: true, integer: true, min: 1, default: [32, 64], help: 'UNet widths to measure' },
  batch: { type: 'number', integer: true, min: 1, default: 64, help: 'batch size' },
  steps: { type: 'number', integer: true, min: 1, default: 5, help: 'timed steps (the median is reported)' },
  warmup: { type: 'number', integer: true, min: 0, default: 2, help: 'untimed steps before timing' },
  'no-torch': { type: 'boolean', help: 'skip the PyTorch reference' },
} as const;

async function main(): Promise<void> {
  const { values: a } = parseCommandLine(process.argv.slice(2), BENCH_OPTIONS, USAGE);
  const info = await initEngine();
  const Ds = a.D;
  const batch = a.batch;
  const steps = a.steps;
  const warmup = a.warmup;
  const rows: Row[] = [];
  // Without the addon first (the engine as it was), then with it, when it is loaded.
  const variants: Array<[string, boolean]> = info.native
    ? [
        [info.name, false],
        [`${info.name} + ${info.native}`, true],
      ]
    : [[info.name, true]];
  for (const D of Ds) {
    for (const [engine, native] of variants) {
      const row = withLevers({ native }, () => benchTfjs(engine, D, batch, warmup, steps));
      rows.push(row);
      console.log(
        `tfjs ${engine}: D=${D} batch=${batch} train ${row.train_img_s.toFixed(1)} img/s, infer ${row.infer_img_s.toFixed(1)} img/s`,
      );
    }
  }
  if (!a['no-torch']) {
    const torch = benchTorch(Ds, batch, warmup, steps, info.threads || os.cpus().length);
    for (const row of rows) {
      const t = torch.get(row.D);
      if (!t) continue;
      row.torch_train_img_s = t.train;
      row.torch_infer_img_s = t.infer;
    }
  }
  console.log('\n| engine | D | batch | train img/s | infer img/s | torch train | torch infer | train ratio | infer ratio |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const f = (v?: number) => (v === undefined ? '–' : v.toFixed(1));
    const ratio = (a: number, b?: number) => (b === undefined ? '–' : `${(a / b).toFixed(2)}×`);
    console.log(
      `| ${r.engine} | ${r.D} | ${r.batch} | ${f(r.train_img_s)} | ${f(r.infer_img_s)} | ${f(r.torch_train_img_s)} | ${f(r.torch_infer_img_s)} | ${ratio(r.train_img_s, r.torch_train_img_s)} | ${ratio(r.infer_img_s, r.torch_infer_img_s)} |`,
    );
  }
  const round = (v?: number) => (v === undefined ? undefined : Math.round(v * 10) / 10);
  console.log(
    JSON.stringify({
      engine: info.name,
      threads: info.threads,
      rows: rows.map((r) => ({
        ...r,
        train_img_s: round(r.train_img_s),
        infer_img_s: round(r.infer_img_s),
        torch_train_img_s: round(r.torch_train_img_s),
        torch_infer_img_s: round(r.torch_infer_img_s),
      })),
    }),
  );
}

main().catch((e) => {
  console.error(e instanceof CliError ? `error: ${e.message}` : `bench: ${(e as Error).message}`);
  process.exit(exitCodeFor(e));
});
