/**
 * Samples digits from a Part B DDPM (Alg. B.2 / B.4).
 *   npm run sample -- --model class --digit 7 --count 16 --guidance 5 --seed 1 --out DIR
 *   npm run sample -- --model time --count 16 --seed 1 --out DIR
 * Options: --weights FILE (default weights/partb-<model>.weights), --gif (also DIR/trajectory.gif).
 * Writes DIR/sample-000.png … (28×28 grayscale, white digit on black, like MNIST) and DIR/grid.png.
 * The same seed gives the same files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../lib/engine';
import { parseArgs } from '../lib/partb/cli';
import { loadUNetWeights } from '../lib/partb/train';
import { sampleClass, sampleTime } from '../lib/partb/sample';
import { savePng, writeFileAtomic } from '../lib/image/io';
import { makeGrid, makeGif } from '../lib/display';
import { shippedWeightsPath } from '../lib/partb/weights';

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2), {
    model: 'string', digit: 'number', count: 'number', guidance: 'number', seed: 'number', out: 'string', weights: 'string', gif: 'boolean', engine: 'string',
  });
  await initEngine({ engine: a.engine as never });
  const model = (a.model as string) ?? 'class';
  if (model !== 'class' && model !== 'time') throw new Error('--model must be class or time');
  const count = (a.count as number) ?? 16;
  if (!(Number.isInteger(count) && count > 0 && count <= 1024)) throw new Error(`--count must be an integer in 1..1024, got ${count}`);
  const seed = (a.seed as number) ?? 0;
  const out = (a.out as string) ?? path.join('runs', 'samples', model);
  const file = (a.weights as string) ?? shippedWeightsPath(model);
  if (!fs.existsSync(file)) throw new Error(`weights ${file} not found: make them with \`npm run train -- --model ${model} --preset cpu\` (then pass --weights runs/partb/${model}-cpu/final.weights)`);
  const { net, meta } = loadUNetWeights(file);
  if (meta.config.model !== model) throw new Error(`${file} holds the ${meta.config.model} model, not ${model}`);
  const frameEvery = a.gif ? 10 : 0;
  let res;
  let label: string;
  if (model === 'class') {
    if (a.digit === undefined) throw new Error('--model class needs --digit 0..9');
    const digit = a.digit as number;
    const guidance = (a.guidance as number) ?? 5;
    res = sampleClass(net, new Array(count).fill(digit), { seed, guidance, frameEvery });
    label = `digit ${digit}, γ=${guidance}`;
  } else {
    res = sampleTime(net, { count, seed, frameEvery });
    label = 'time-conditioned';
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

main().catch((e) => {
  console.error(`error: ${(e as Error).message}`);
  process.exit(1);
});
