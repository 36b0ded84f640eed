/**
 * A/B timing of one speed lever inside one process (robust to a loaded machine): alternates
 * rounds with the lever off (A) and on (B), `--rounds` times, and reports the median of each and
 * the ratio B/A. `node dist/bench/ab.js --lever singlePixel --mode train --D 64 --batch 64`.
 * Levers are switches exported by the engine/op modules; each run keeps both variants loaded.
 */
import { initEngine } from '../lib/engine';
import { COPY_LOOPS, EXACT_PHASES, PHASES, REDUCE, SINGLE_PIXEL, ZERO_COPY } from '../lib/engine/wasmKernels';
import { BN_FAST, FUSED_ADAM, GELU_GRAD } from '../lib/tensor/fusedOps';
import { FOLD_BN, FUSED_BIAS, type UNetKind } from '../lib/partb/unet';
import { arg, median, unetBench } from './common';

/** name → setter of the lever (true = new variant B). */
const LEVERS: Record<string, (on: boolean) => void> = {
  phases: (on) => (PHASES.enabled = on),
  singlePixel: (on) => (SINGLE_PIXEL.enabled = on),
  zeroCopy: (on) => (ZERO_COPY.enabled = on),
  reduce: (on) => (REDUCE.enabled = on),
  copyLoops: (on) => (COPY_LOOPS.enabled = on),
  exactPhases: (on) => (EXACT_PHASES.enabled = on),
  geluGrad: (on) => (GELU_GRAD.enabled = on),
  bnFast: (on) => (BN_FAST.enabled = on),
  fusedAdam: (on) => (FUSED_ADAM.enabled = on),
  foldBN: (on) => (FOLD_BN.enabled = on),
  fusedBias: (on) => (FUSED_BIAS.enabled = on),
};

/** Every lever of issue 6 at once (PHASES, the lead's, stays on in both variants). */
LEVERS.all = (on) => {
  for (const name of ['singlePixel', 'exactPhases', 'zeroCopy', 'reduce', 'copyLoops', 'geluGrad', 'bnFast', 'fusedAdam', 'foldBN', 'fusedBias']) LEVERS[name](on);
};

async function main(): Promise<void> {
  await initEngine({ quiet: true });
  const lever = arg('lever', 'singlePixel');
  const set = LEVERS[lever];
  if (!set) throw new Error(`unknown lever "${lever}": use ${Object.keys(LEVERS).join(', ')}`);
  const D = Number(arg('D', '64'));
  const batch = Number(arg('batch', '64'));
  const rounds = Number(arg('rounds', '8'));
  const model = arg('model', 'class') as UNetKind;
  const mode = arg('mode', 'train');
  const bench = unetBench(model, D, batch);
  const step = () => (mode === 'train' ? bench.train(1e-6) : bench.infer());
  const times: Record<'A' | 'B', number[]> = { A: [], B: [] };
  // CPU time of the whole process (all threads): far steadier than wall time on a shared machine.
  const cpu: Record<'A' | 'B', number[]> = { A: [], B: [] };
  for (const v of ['A', 'B'] as const) {
    set(v === 'B');
    step(); // warm-up of each variant (XNNPACK operator caches, schedule tables)
  }
  for (let r = 0; r < rounds; r++) {
    for (const v of (r % 2 ? ['B', 'A'] : ['A', 'B']) as Array<'A' | 'B'>) {
      set(v === 'B');
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      step();
      times[v].push(performance.now() - t0);
      const c1 = process.cpuUsage(c0);
      cpu[v].push((c1.user + c1.system) / 1000);
    }
  }
  const a = median(times.A);
  const b = median(times.B);
  console.log(`${lever} ${model} D=${D} batch=${batch} ${mode}: A(off) ${a.toFixed(0)} ms, B(on) ${b.toFixed(0)} ms, B/A time ${(b / a).toFixed(3)} (speed-up ${(a / b).toFixed(2)}x), ${rounds} rounds`);
  const ca = median(cpu.A);
  const cb = median(cpu.B);
  console.log(`  CPU time: A ${ca.toFixed(0)} ms, B ${cb.toFixed(0)} ms, B/A ${(cb / ca).toFixed(3)}`);
  console.log(`  A: ${times.A.map((v) => v.toFixed(0)).join(' ')}\n  B: ${times.B.map((v) => v.toFixed(0)).join(' ')}`);
  bench.dispose();
}

main().catch((e) => {
  console.error(`ab: ${(e as Error).message}`);
  process.exit(1);
});
