/**
 * What notebooks/partB.ipynb calls: where the weights are (shipped, or retrained on request),
 * retraining with a progress line, loss-curve series, and the figure batches. No algorithm lives
 * here; it composes lib/ (models, training, algorithms).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { progress, type Series } from '../../lib/display';
import { addNoise } from '../../lib/schedulers/formulas';
import { Rng } from '../../lib/tensor/random';
import { loadMnist } from '../../lib/data/mnist';
import { Trainer, presetConfig } from '../../lib/training/trainer';
import { loadUNetWeights } from '../../lib/models/unetWeights';
import type { WeightsHeader } from '../../lib/weights/headers';
import type { UNet, UNetKind } from '../../lib/models/unet';
import { shippedWeightsPath, trainCommand } from '../../lib/weights/shipped';
import { setting } from '../../lib/config';
import { PROJECT_ROOT as REPO_ROOT, runsDir } from '../../lib/paths';

/** Where RETRAIN=true writes its runs. */
export const NOTEBOOK_RUNS = runsDir('partb-notebook');

/** True when the notebook should retrain (flag, or PARTB_RETRAIN=1 from `npm run figures`). */
export function retrainRequested(flag: boolean): boolean {
  return flag || setting('PARTB_RETRAIN') === '1';
}

/** Paths of a model's final and early (after epoch 1) weights, shipped or from a notebook run. */
export function weightFiles(model: UNetKind, retrained: boolean): { final: string; early: string } {
  if (retrained) {
    const dir = path.join(NOTEBOOK_RUNS, `${model}-cpu`);
    return { final: path.join(dir, 'final.weights'), early: path.join(dir, 'epoch-1.weights') };
  }
  return { final: shippedWeightsPath(model), early: shippedWeightsPath(model, 'early') };
}

/** Lines naming every missing weights file and the command that makes it (empty when all exist). */
export function missingWeights(retrained: boolean): string[] {
  const out: string[] = [];
  for (const m of ['denoiser', 'time', 'class'] as const) {
    for (const f of Object.values(weightFiles(m, retrained))) {
      if (!fs.existsSync(f)) out.push(`${path.relative(REPO_ROOT, f)} is missing: make it with \`${retrained ? `set RETRAIN = true` : trainCommand(m)}\``);
    }
  }
  return out;
}

/** Trains one model under a preset into runs/partb-notebook/<model>-<preset>, with a progress line. */
export async function retrain(model: UNetKind, preset = 'cpu', seed = 0): Promise<void> {
  const tr = new Trainer(presetConfig(model, preset, { seed }));
  const data = loadMnist('train');
  const spe = tr.stepsPerEpoch(data.count);
  const bar = progress(spe * tr.config.epochs, `training ${model} (${preset})`);
  const dir = path.join(NOTEBOOK_RUNS, `${model}-${preset}`);
  await tr.run(data, { outDir: dir, onStep: (s) => bar.tick(1, `epoch ${s.epoch + 1} loss ${s.loss.toFixed(4)}`) });
  bar.done();
  await tr.saveWeights(path.join(dir, 'final.weights'));
  tr.dispose();
}

/** Loads weights; throws a one-line error naming the command that makes them when missing. */
export function loadModel(file: string, model: UNetKind): { net: UNet; meta: WeightsHeader } {
  if (!fs.existsSync(file)) throw new Error(`${path.relative(REPO_ROOT, file)} is missing: make it with \`${trainCommand(model)}\` (or set RETRAIN = true)`);
  const { net, meta } = loadUNetWeights(file);
  if (meta.kind !== 'partb-weights') {
    net.dispose();
    throw new Error(`${path.relative(REPO_ROOT, file)} is a training checkpoint, not a weights file: pass the run's final.weights or epoch-K.weights`);
  }
  return { net, meta };
}

/** The per-step loss and its 50-step moving average, with epoch ends, for showLossCurve. */
export function lossSeries(meta: { losses: number[] }, window = 50): Series[] {
  const y = meta.losses;
  const x = y.map((_, i) => i + 1);
  const avg: number[] = [];
  let s = 0;
  for (let i = 0; i < y.length; i++) {
    s += y[i];
    if (i >= window) s -= y[i - window];
    avg.push(s / Math.min(i + 1, window));
  }
  return [
    { name: 'loss per step', x, y },
    { name: `moving average (${window} steps)`, x, y: avg },
  ];
}

/** A one-line description of a weights file for captions: preset, epochs, steps, D, batch. */
export function describeWeights(meta: WeightsHeader): string {
  const c = meta.config;
  return `${c.preset} preset, D=${c.D}, batch ${c.batch}, after epoch ${meta.epoch}/${c.epochs} (${meta.step} steps)`;
}

/** Test digits [n,28,28,1] (the first n of the test split, or given indices). */
export function testDigits(indices: number[]): tf.Tensor4D {
  const d = loadMnist('test');
  const buf = new Float32Array(indices.length * 784);
  indices.forEach((j, i) => buf.set(d.images.subarray(j * 784, (j + 1) * 784), i * 784));
  return tf.tensor4d(buf, [indices.length, 28, 28, 1]);
}

/** z = x + σε for each σ (Eq. B.2), one batch per σ, seeded. Caller disposes. */
export function noiseSweep(x: tf.Tensor4D, sigmas: number[], seed: number): tf.Tensor4D[] {
  const rng = new Rng(seed);
  return sigmas.map((s) => tf.tidy(() => addNoise(x, s, rng.normal(x.shape) as tf.Tensor4D)));
}

/** The denoiser's output for a noisy batch (eval mode), clipped to [0,1] for display. */
export function denoise(net: UNet, z: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.clipByValue(net.apply({ x: z }, false), 0, 1) as tf.Tensor4D);
}

/** Clips to [0,1] for display. */
export function forDisplay(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.clipByValue(x, 0, 1) as tf.Tensor4D);
}
