/**
 * Training throughput against batch size, inside one process (alternating rounds, medians of
 * CPU time and wall time per image): `node dist/bench/batchsize.js --D 16 --batches 32,64,128`.
 */
import { initEngine } from '../lib/engine';
import { median, unetBench } from './common';
import { CliError, exitCodeFor, parseCommandLine } from '../lib/cli';

const USAGE = `usage: node dist/bench/batchsize.js [--D 16] [--batches 32,64,128] [--rounds 6]
Training throughput of the class-conditioned UNet against batch size, in one process (alternating rounds).`;

const BATCHSIZE_OPTIONS = {
  D: { type: 'number', integer: true, min: 1, default: 16, help: 'UNet width' },
  batches: { type: 'number', list: true, integer: true, min: 1, default: [32, 64, 128], help: 'batch sizes to compare' },
  rounds: { type: 'number', integer: true, min: 1, default: 6, help: 'alternating rounds (the median is reported)' },
} as const;

async function main(): Promise<void> {
  const { values: a } = parseCommandLine(process.argv.slice(2), BATCHSIZE_OPTIONS, USAGE);
  await initEngine({ quiet: true });
  const D = a.D;
  const batches = a.batches;
  const rounds = a.rounds;
  const setups = batches.map((batch) => ({ batch, bench: unetBench('class', D, batch), cpu: [] as number[], wall: [] as number[] }));
  for (let r = 0; r < rounds; r++) {
    for (const s of r % 2 ? [...setups].reverse() : setups) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      s.bench.train(1e-6);
      const c = process.cpuUsage(c0);
      s.wall.push((performance.now() - t0) / s.batch);
      s.cpu.push((c.user + c.system) / 1000 / s.batch);
    }
  }
  const base = setups.find((s) => s.batch === 64) ?? setups[0];
  console.log(`class D=${D} training, ${rounds} alternating rounds; ms per image (median), relative to batch ${base.batch}`);
  for (const s of setups) {
    console.log(
      `batch ${s.batch}: CPU ${median(s.cpu).toFixed(2)} ms/img (${(median(s.cpu) / median(base.cpu)).toFixed(3)}), wall ${median(s.wall).toFixed(2)} ms/img (${(median(s.wall) / median(base.wall)).toFixed(3)})`,
    );
    s.bench.dispose();
  }
}

main().catch((e) => {
  console.error(e instanceof CliError ? `error: ${e.message}` : `batchsize: ${(e as Error).message}`);
  process.exit(exitCodeFor(e));
});
