/**
 * Training throughput against batch size, inside one process (alternating rounds, medians of
 * CPU time and wall time per image): `node dist/bench/batchsize.js --D 16 --batches 32,64,128`.
 */
import { initEngine } from '../lib/engine';
import { arg, median, unetBench } from './common';

async function main(): Promise<void> {
  await initEngine({ quiet: true });
  const D = Number(arg('D', '16'));
  const batches = arg('batches', '32,64,128').split(',').map(Number);
  const rounds = Number(arg('rounds', '6'));
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
    console.log(`batch ${s.batch}: CPU ${median(s.cpu).toFixed(2)} ms/img (${(median(s.cpu) / median(base.cpu)).toFixed(3)}), wall ${median(s.wall).toFixed(2)} ms/img (${(median(s.wall) / median(base.wall)).toFixed(3)})`);
    s.bench.dispose();
  }
}

main().catch((e) => {
  console.error(`batchsize: ${(e as Error).message}`);
  process.exit(1);
});
