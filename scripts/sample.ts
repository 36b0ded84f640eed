/**
 * Samples digits from a Part B DDPM (Alg. B.2 / B.4) or flow-matching model (Euler integration).
 *   npm run sample -- --model class --digit 7 --count 16 --guidance 5 --seed 1 --out DIR
 *   npm run sample -- --model time --count 16 --seed 1 --out DIR
 *   npm run sample -- --model flow-class --digit 7 --steps 8 --out DIR   (also flow-time)
 * Options: --weights FILE (default weights/partb-<model>.weights), --gif (also DIR/trajectory.gif).
 * Writes DIR/sample-000.png … (28×28 grayscale, white digit on black, like MNIST) and DIR/grid.png.
 * The same seed gives the same files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { type Precision, initEngine } from '../lib/engine';
import { CliError, ENGINE_OPTION, PRECISION_OPTION, exitCodeFor, parseCommandLine, seedOption } from '../lib/cli';
import { loadUNetWeights } from '../lib/models/unetWeights';
import { samplePartB } from '../lib/algorithms/partBSampling';
import { FLOW_SAMPLING_STEPS } from '../lib/algorithms/flowSampling';
import { describeConfig, describeModel, samplingOf } from '../lib/models/registry';
import { savePng } from '../lib/image/io';
import { writeFileAtomic } from '../lib/files';
import { makeGrid, makeGif } from '../lib/display';
import { shippedWeightsPath } from '../lib/weights/shipped';

const USAGE = `usage: npm run sample -- --model class|flow-class --digit 7 [--count 16] [--guidance 5] [--seed 1] [--out DIR] [--gif]
       npm run sample -- --model time|flow-time [--count 16] [--seed 1] [--out DIR] [--gif]
       [--steps N]: flow models' Euler steps (default ${FLOW_SAMPLING_STEPS}); DDPMs' strided steps, dividing T (default the full chain of T)
Samples digits from a Part B DDPM or flow model: DIR/sample-000.png … and DIR/grid.png; the same seed gives the same files.`;

const SAMPLE_OPTIONS = {
  model: { type: 'string', choices: ['class', 'time', 'flow-class', 'flow-time'], default: 'class', help: 'which model samples' },
  steps: {
    type: 'number',
    integer: true,
    min: 1,
    max: 10000,
    help: 'steps from noise to image: flow models Euler steps, DDPMs strided steps (must divide T)',
    defaultHelp: `flow ${FLOW_SAMPLING_STEPS}, DDPM the full chain of T`,
  },
  digit: { type: 'number', integer: true, min: 0, max: 9, help: 'the digit to draw (needed with --model class)' },
  count: { type: 'number', integer: true, min: 1, max: 1024, default: 16, help: 'samples to draw' },
  guidance: { type: 'number', min: 0, max: 100, default: 5, help: 'classifier-free guidance scale γ (class model)' },
  seed: seedOption(0),
  out: { type: 'string', valueName: 'DIR', help: 'output folder', defaultHelp: 'runs/samples/<model>' },
  weights: { type: 'string', valueName: 'FILE', help: 'weights file', defaultHelp: 'weights/partb-<model>.weights' },
  gif: { type: 'boolean', help: 'also write DIR/trajectory.gif of the denoising' },
  engine: ENGINE_OPTION,
  precision: PRECISION_OPTION,
} as const;

async function main(): Promise<void> {
  const { values: a } = parseCommandLine(process.argv.slice(2), SAMPLE_OPTIONS, USAGE);
  const model = a.model;
  const desc = describeModel(model);
  if (desc.numClasses > 0 && a.digit === undefined) throw new CliError(`--model ${model} needs --digit 0..9`);
  const count = a.count;
  const seed = a.seed;
  const out = a.out ?? path.join('runs', 'samples', model);
  const file = a.weights ?? shippedWeightsPath(model);
  if (!fs.existsSync(file))
    throw new Error(
      `weights ${file} not found: make them with \`npm run train -- --model ${model} --preset cpu\` (then pass --weights runs/partb/${model}-cpu/final.weights)`,
    );
  // Before any sampling: a folder that cannot be written would fail only at the end.
  checkWritableFolder(out);
  await initEngine({ engine: a.engine, precision: a.precision as Precision | undefined });
  const { net, meta } = loadUNetWeights(file);
  const held = describeConfig(meta.config).name;
  if (held !== model) throw new Error(`${file} holds the ${held} model, not ${model}`);
  const T = meta.config.T;
  const sampling = samplingOf(desc);
  const steps = a.steps ?? sampling.defaultSteps(T);
  try {
    sampling.grid(steps, T);
  } catch (e) {
    throw new CliError(`--steps ${steps}: ${(e as Error).message}`);
  }
  // About 30 GIF frames whatever the number of steps (DDPM's 300: every 10th).
  const frameEvery = a.gif ? Math.max(1, Math.round(steps / 30)) : 0;
  const res = samplePartB(desc, net, {
    seed,
    steps,
    T,
    frameEvery,
    ...(desc.numClasses > 0 ? { labels: new Array(count).fill(a.digit!), guidance: a.guidance } : { count }),
  });
  const label = `${desc.numClasses > 0 ? `digit ${a.digit}, γ=${a.guidance}` : desc.title}, ${sampling.describeSteps(steps, T)}`;
  // NaN would be clipped to black: refuse (nothing written) instead.
  const nonFinite = tf.tidy(() => tf.sum(tf.cast(tf.logicalNot(tf.isFinite(res.images)), 'int32')).dataSync()[0]);
  if (nonFinite > 0) {
    throw new Error(
      `sampling with ${file} produced ${nonFinite} non-finite pixel values (NaN or infinite); nothing was written to ${out} — the weights are broken: check them (npm run weights -- check ${file}) or retrain`,
    );
  }
  fs.mkdirSync(out, { recursive: true });
  const imgs = tf.tidy(() => tf.clipByValue(res.images, 0, 1)) as tf.Tensor4D;
  for (let i = 0; i < count; i++) {
    const one = tf.slice(imgs, [i, 0, 0, 0], [1, 28, 28, 1]);
    await savePng(one, path.join(out, `sample-${String(i).padStart(3, '0')}.png`));
    one.dispose();
  }
  writeFileAtomic(path.join(out, 'grid.png'), await makeGrid(imgs, { title: `${model} samples (${label}, seed ${seed})` }));
  if (a.gif) {
    const frames = res.frames.map((f) => tf.tidy(() => tf.clipByValue(f, 0, 1)) as tf.Tensor4D);
    const { gif } = await makeGif(frames, { title: `denoising (${label})` });
    writeFileAtomic(path.join(out, 'trajectory.gif'), gif);
    frames.forEach((f) => f.dispose());
  }
  res.frames.forEach((f) => f.dispose());
  res.images.dispose();
  imgs.dispose();
  net.dispose();
  console.log(`wrote ${count} samples (${label}) to ${out}`);
}

/**
 * Checks that `dir` is (or can become) a writable folder: its nearest existing ancestor must be a
 * folder that takes a probe file. Writes nothing else and creates no folder.
 */
function checkWritableFolder(dir: string): void {
  let at = path.resolve(dir);
  while (!fs.existsSync(at) && path.dirname(at) !== at) at = path.dirname(at);
  if (!fs.statSync(at).isDirectory()) {
    throw new CliError(`--out ${dir} is not a writable folder: ${at} is a file; choose another --out`);
  }
  const probe = path.join(at, `.sample-write-test.${process.pid}.tmp`);
  try {
    fs.writeFileSync(probe, '');
  } catch (e) {
    throw new CliError(
      `--out ${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message} in ${at}); choose another --out`,
    );
  } finally {
    fs.rmSync(probe, { force: true });
  }
}

main().catch((e) => {
  console.error(`error: ${(e as Error).message}`);
  process.exit(exitCodeFor(e));
});
