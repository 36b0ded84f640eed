/**
 * `node dist/bench/profile.js [--D 64] [--batch 64] [--model class] [--mode train|infer] [--calls [N]]`:
 * where one Part B training step (or inference pass) spends its time, per TF.js kernel, from
 * tf.profile on the chosen engine (after one warm-up step). Prints a markdown table, largest first.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../lib/engine';
import type { UNetKind } from '../lib/models/unet';
import { unetBench } from './common';
import { CliError, exitCodeFor, parseCommandLine } from '../lib/cli';

const USAGE = `usage: node dist/bench/profile.js [--D 64] [--batch 64] [--model class] [--mode train|infer] [--calls [N]]
Where one Part B training step (or inference pass) spends its time, per TF.js kernel (tf.profile, after one warm-up step).`;

const PROFILE_OPTIONS = {
  D: { type: 'number', integer: true, min: 1, default: 64, help: 'UNet width' },
  batch: { type: 'number', integer: true, min: 1, default: 64, help: 'batch size' },
  model: { type: 'string', choices: ['class', 'time', 'denoiser'], default: 'class', help: 'which Part B UNet' },
  mode: { type: 'string', choices: ['train', 'infer'], default: 'train', help: 'a training step or an inference pass' },
  calls: {
    type: 'number',
    integer: true,
    min: 1,
    bare: 25,
    help: 'also list the N biggest single calls with their shapes',
    defaultHelp: 'off',
  },
} as const;

async function main(): Promise<void> {
  const { values: a } = parseCommandLine(process.argv.slice(2), PROFILE_OPTIONS, USAGE);
  const info = await initEngine();
  const D = a.D;
  const batch = a.batch;
  const model: UNetKind = a.model;
  const mode = a.mode;
  const bench = unetBench(model, D, batch);
  const step = () => (mode === 'train' ? bench.train() : bench.infer());
  step();
  const t0 = performance.now();
  const prof = await tf.profile(step);
  const wall = performance.now() - t0;
  const byName = new Map<string, { ms: number; n: number }>();
  // Wrappers that tf.profile also reports around the kernels they run (customGrad forward
  // functions: 'unnamed scope'; fused ops: '<op>__op') would count their kernels twice.
  const wrapper = (name: string) => name === 'unnamed scope' || name.endsWith('__op');
  for (const k of prof.kernels) {
    if (wrapper(k.name)) continue;
    const e = byName.get(k.name) ?? { ms: 0, n: 0 };
    e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    e.n++;
    byName.set(k.name, e);
  }
  const total = [...byName.values()].reduce((a, e) => a + e.ms, 0);
  console.log(
    `${info.name} ${info.threads} threads, ${model} D=${D} batch=${batch} ${mode}: kernels ${total.toFixed(0)} ms, wall (profiled) ${wall.toFixed(0)} ms`,
  );
  console.log('| kernel | calls | ms | share |\n|---|---|---|---|');
  for (const [name, e] of [...byName].sort((a, b) => b[1].ms - a[1].ms)) {
    if (e.ms / total < 0.002) continue;
    console.log(`| ${name} | ${e.n} | ${e.ms.toFixed(1)} | ${((100 * e.ms) / total).toFixed(1)}% |`);
  }
  if (a.calls !== undefined) {
    // The biggest single calls, with input shapes (which layer costs what).
    const calls = prof.kernels
      .filter((k) => !wrapper(k.name))
      .sort((a, b) => Number(b.kernelTimeMs) - Number(a.kernelTimeMs))
      .slice(0, a.calls);
    for (const k of calls)
      console.log(
        `${k.name} ${Number(k.kernelTimeMs).toFixed(1)} ms in ${k.inputShapes.map((s) => `[${s}]`).join(' ')} out ${k.outputShapes.map((s) => `[${s}]`).join(' ')}`,
      );
  }
  bench.dispose();
}

main().catch((e) => {
  console.error(e instanceof CliError ? `error: ${e.message}` : `profile: ${(e as Error).message}`);
  process.exit(exitCodeFor(e));
});
