/**
 * A/B timing of one speed lever inside one process (robust to a loaded machine): alternates
 * rounds with the lever off (A) and on (B), `--rounds` times, and reports the median of each and
 * the ratio B/A. `node dist/bench/ab.js --lever singlePixel --mode train --D 64 --batch 64`.
 * Levers are the engine's (lib/engine/levers.ts); each variant runs inside withLevers, so both
 * stay loaded and the levers are restored afterwards.
 */
import { initEngine } from '../lib/engine';
import { LEVER_NAMES, withLevers, type Levers } from '../lib/engine/levers';
import type { UNetKind } from '../lib/models/unet';
import { CliError, exitCodeFor, parseCommandLine } from '../lib/cli';
import { median, unetBench } from './common';

/** Every lever at once, except `phases` (the lead's, on in both variants). */
const ALL = LEVER_NAMES.filter((n) => n !== 'phases');

const USAGE = `usage: node dist/bench/ab.js [--lever NAME|all] [--mode train|infer] [--model class] [--D 64] [--batch 64] [--rounds 8]
In-process A/B timing of one engine lever (lib/engine/levers.ts): A = off, B = on, alternating rounds; median wall and CPU time of each.`;

const AB_OPTIONS = {
  lever: {
    type: 'string',
    choices: [...LEVER_NAMES, 'all'],
    valueName: 'NAME',
    default: 'singlePixel',
    help: `the lever to switch: ${LEVER_NAMES.join(', ')}, or all (every one but phases)`,
  },
  mode: { type: 'string', choices: ['train', 'infer'], default: 'train', help: 'a training step or an inference pass' },
  model: { type: 'string', choices: ['class', 'time', 'denoiser'], default: 'class', help: 'which Part B UNet' },
  D: { type: 'number', integer: true, min: 1, default: 64, help: 'UNet width' },
  batch: { type: 'number', integer: true, min: 1, default: 64, help: 'batch size' },
  rounds: { type: 'number', integer: true, min: 1, default: 8, help: 'timed rounds of each variant' },
} as const;

/** The levers of variant A (off) or B (on). */
function variant(lever: string, on: boolean): Partial<Levers> {
  const names = lever === 'all' ? ALL : [lever as keyof Levers];
  return Object.fromEntries(names.map((n) => [n, on]));
}

async function main(): Promise<void> {
  const { values: a } = parseCommandLine(process.argv.slice(2), AB_OPTIONS, USAGE);
  await initEngine({ quiet: true });
  const { lever, D, batch, rounds, mode } = a;
  const model: UNetKind = a.model;
  const bench = unetBench(model, D, batch);
  const step = () => (mode === 'train' ? bench.train(1e-6) : bench.infer());
  const levers = { A: variant(lever, false), B: variant(lever, true) };
  const times: Record<'A' | 'B', number[]> = { A: [], B: [] };
  // CPU time of the whole process (all threads): far steadier than wall time on a shared machine.
  const cpu: Record<'A' | 'B', number[]> = { A: [], B: [] };
  for (const v of ['A', 'B'] as const) withLevers(levers[v], step); // warm-up of each variant (XNNPACK operator caches, schedule tables)
  for (let r = 0; r < rounds; r++) {
    for (const v of (r % 2 ? ['B', 'A'] : ['A', 'B']) as Array<'A' | 'B'>) {
      withLevers(levers[v], () => {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        step();
        times[v].push(performance.now() - t0);
        const c1 = process.cpuUsage(c0);
        cpu[v].push((c1.user + c1.system) / 1000);
      });
    }
  }
  const ta = median(times.A);
  const tb = median(times.B);
  console.log(
    `${lever} ${model} D=${D} batch=${batch} ${mode}: A(off) ${ta.toFixed(0)} ms, B(on) ${tb.toFixed(0)} ms, B/A time ${(tb / ta).toFixed(3)} (speed-up ${(ta / tb).toFixed(2)}x), ${rounds} rounds`,
  );
  const ca = median(cpu.A);
  const cb = median(cpu.B);
  console.log(`  CPU time: A ${ca.toFixed(0)} ms, B ${cb.toFixed(0)} ms, B/A ${(cb / ca).toFixed(3)}`);
  console.log(`  A: ${times.A.map((v) => v.toFixed(0)).join(' ')}\n  B: ${times.B.map((v) => v.toFixed(0)).join(' ')}`);
  bench.dispose();
}

main().catch((e) => {
  console.error(e instanceof CliError ? `error: ${e.message}` : `ab: ${(e as Error).message}`);
  process.exit(exitCodeFor(e));
});
