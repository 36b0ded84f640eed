/**
 * What notebooks/partB.ipynb calls: where the weights are (shipped, or retrained on request),
 * retraining with a progress line, loss-curve series, and the figure batches. No algorithm lives
 * here; it composes lib/ (models, training, algorithms).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { liveTraining, windowMeans, type Series } from '../../lib/display';
import { withEmaWeights } from '../../lib/training/ema';
import { addNoise } from '../../lib/schedulers/formulas';
import { Rng } from '../../lib/tensor/random';
import { loadMnist, type MnistSet } from '../../lib/data/mnist';
import { Trainer } from '../../lib/training/trainer';
import { type TrainConfig } from '../../lib/weights/runConfig';
import { presetConfig } from '../../lib/training/presets';
import { samplePartB } from '../../lib/algorithms/partBSampling';
import { describeModel, modelNameOf } from '../../lib/models/registry';
import { TRAINING_OBJECTIVES } from '../../lib/training/objectives';
import { loadUNetWeights } from '../../lib/models/unetWeights';
import type { WeightsHeader } from '../../lib/weights/headers';
import type { PartBModel } from '../../lib/weights/runConfig';
import type { UNet } from '../../lib/models/unet';
import {
  runWeightsFile,
  shippedCheckpoints,
  shippedWeightsPath,
  trainCommand,
  type ShippedCheckpoint,
} from '../../lib/weights/shipped';
import { setting } from '../../lib/config';
import { PROJECT_ROOT as REPO_ROOT, runsDir } from '../../lib/paths';

/** Where RETRAIN=true writes its runs. */
export const NOTEBOOK_RUNS = runsDir('partb-notebook');

/** True when the notebook should retrain (flag, or PARTB_RETRAIN=1 from `npm run figures`). */
export function retrainRequested(flag: boolean): boolean {
  return flag || setting('PARTB_RETRAIN') === '1';
}

/**
 * Paths of a model's weights, shipped or from a notebook run: `early` after epoch 1, `middle` (for
 * the models that ship one: shippedMiddleEpoch) after a middle epoch, and `final`.
 */
export function weightFiles(
  model: PartBModel,
  retrained: boolean,
): { early: string; middle?: string; final: string } {
  const dir = path.join(NOTEBOOK_RUNS, `${model}-cpu`);
  const file = (which: ShippedCheckpoint) =>
    retrained ? path.join(dir, runWeightsFile(model, which)) : shippedWeightsPath(model, which);
  return Object.fromEntries(shippedCheckpoints(model).map((c) => [c, file(c)])) as {
    early: string;
    middle?: string;
    final: string;
  };
}

/** Lines naming every missing weights file and the command that makes it (empty when all exist). */
export function missingWeights(
  retrained: boolean,
  models: readonly PartBModel[] = ['denoiser', 'denoiser-pure-noise', 'time', 'class'],
): string[] {
  const out: string[] = [];
  for (const m of models) {
    for (const f of Object.values(weightFiles(m, retrained))) {
      if (!fs.existsSync(f)) out.push(`${path.relative(REPO_ROOT, f)} is missing: make it with \`${retrained ? `set RETRAIN = true` : trainCommand(m)}\``);
    }
  }
  return out;
}

/**
 * Trains one model under a preset into runs/partb-notebook/<model>-<preset>. In a notebook the
 * training shows live (lib/display/live.ts): the progress line, a loss chart redrawn in place, and
 * after every epoch a sample grid from the current weights (the EMA ones when the run keeps an
 * EMA), always from the same seed: 16 samples (time model, Alg. B.2), 2 per digit with γ = 5
 * (class model, Alg. B.4), or 8 fixed test digits, noised at the training σ, and their denoised
 * outputs (denoiser). In a terminal, the progress line only. `opts` (for tests): config overrides,
 * the training data, the digits the denoiser's preview uses (default the test split) and the run folder.
 */
export async function retrain(
  model: PartBModel,
  preset = 'cpu',
  seed = 0,
  opts: { config?: Partial<TrainConfig>; data?: MnistSet; previewData?: MnistSet; outDir?: string } = {},
): Promise<void> {
  const tr = new Trainer(presetConfig(model, preset, { seed, ...opts.config }));
  const c = tr.config;
  const data = opts.data ?? loadMnist('train');
  const spe = tr.stepsPerEpoch(data.count);
  const dir = opts.outDir ?? path.join(NOTEBOOK_RUNS, `${model}-${preset}`);
  const desc = describeModel(model);
  const live = liveTraining({
    id: `retrain-${model}`,
    title: `Training the ${model} model (${preset})`,
    yLabel: desc.lossLabel,
    total: spe * c.epochs,
    label: `training ${model} (${preset})`,
    epochs: c.epochs,
    gridTitle: !desc.sampling
      ? `${desc.title} on 8 test digits' inputs`
      : desc.numClasses === 0
        ? 'Time-conditioned samples'
        : `Class-conditioned samples (γ = ${desc.sampling.guidance})`,
  });
  const sampleSeed = seed + 1000; // the same noise every epoch, so the grids show the model changing
  // The denoiser's preview: 8 fixed digits and one fixed noise draw (made only when shown).
  let clean: tf.Tensor4D | undefined;
  let noisy: tf.Tensor4D | undefined;
  try {
    if (live.inNotebook && !desc.sampling) {
      const d = opts.previewData ?? loadMnist('test');
      const n = Math.min(8, d.count);
      clean = tf.tensor4d(d.images.slice(0, n * 784), [n, 28, 28, 1]);
      // What the network is fed: the digits at σ (the denoiser), or pure noise (§1.2.3).
      const input = TRAINING_OBJECTIVES[desc.loss].denoiserInput!;
      const eps = new Rng(sampleSeed).normal(clean.shape) as tf.Tensor4D;
      noisy = tf.tidy(() => input(clean!, eps, c.sigma));
      eps.dispose();
    }
    /** The grid of the current weights after an epoch. */
    const preview = (epoch: number) =>
      withEmaWeights(tr.net, tr.ema, async (net) => {
        const ends = tr.state.epochEnds;
        const epochLosses = tr.state.losses.slice(ends.length > 1 ? ends[ends.length - 2] : 0);
        const mean = epochLosses.reduce((s, v) => s + v, 0) / Math.max(1, epochLosses.length);
        const caption = `step ${tr.state.step}, epoch mean loss ${mean.toFixed(4)}${tr.ema ? ', EMA weights' : ''}`;
        if (!desc.sampling) {
          const out = denoise(net, noisy!);
          try {
            const n = out.shape[0];
            const fed = TRAINING_OBJECTIVES[desc.loss].denoiserInputLabel!(c.sigma);
            const captions = [...Array(n).fill('clean'), ...Array(n).fill(fed), ...Array(n).fill('output')];
            await live.epoch(epoch, [clean!, noisy!, out], caption, { cols: n, captions });
          } finally {
            out.dispose();
          }
          return;
        }
        const labels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        const classes = desc.numClasses > 0;
        // Flow previews at the quality table's 32 Euler steps; DDPMs at their full chain of T.
        const r = samplePartB(desc, net, { seed: sampleSeed, T: c.T, ...(classes ? { labels } : { count: 16 }) });
        try {
          const grid = classes ? { cols: 10, captions: labels.map(String) } : { cols: 8 };
          await live.epoch(epoch, r.images, caption, grid);
        } finally {
          r.images.dispose();
          for (const f of r.frames) f.dispose();
        }
      });
    while (tr.state.epoch < c.epochs) {
      const before = tr.state.epoch;
      await tr.run(data, {
        outDir: dir,
        untilEpoch: before + 1,
        onStep: (s) => live.step(s.step, s.loss, `epoch ${s.epoch + 1} loss ${s.loss.toFixed(4)}`),
      });
      if (tr.state.epoch === before) {
        throw new Error(`retrain: epoch ${before + 1} of ${model} made no progress (${data.count} training images)`);
      }
      if (live.inNotebook) await preview(tr.state.epoch);
    }
    await tr.saveWeights(path.join(dir, 'final.weights'));
  } finally {
    await live.done();
    clean?.dispose();
    noisy?.dispose();
    tr.dispose();
  }
}

/** Loads weights; throws a one-line error naming the command that makes them when missing. */
export function loadModel(file: string, model: PartBModel): { net: UNet; meta: WeightsHeader } {
  if (!fs.existsSync(file)) throw new Error(`${path.relative(REPO_ROOT, file)} is missing: make it with \`${trainCommand(model)}\` (or set RETRAIN = true)`);
  const { net, meta } = loadUNetWeights(file);
  if (modelNameOf(meta.config) !== model) {
    net.dispose();
    throw new Error(`${path.relative(REPO_ROOT, file)} holds the ${modelNameOf(meta.config)} model, not ${model}`);
  }
  if (meta.kind !== 'partb-weights') {
    net.dispose();
    throw new Error(`${path.relative(REPO_ROOT, file)} is a training checkpoint, not a weights file: pass the run's final.weights or epoch-K.weights`);
  }
  return { net, meta };
}

/** The per-step loss and the mean of the last 50 steps (lib/display windowMeans), for showLossCurve. */
export function lossSeries(meta: { losses: number[] }, window = 50): Series[] {
  const y = meta.losses;
  const x = y.map((_, i) => i + 1);
  return [{ name: 'loss per step', x, y }, windowMeans(x, y, window)];
}

/**
 * A one-line description of a weights file for captions: preset, D, batch, and how far training had
 * got (epochs, steps, images seen). Not "epoch 1/5": an early checkpoint's header holds the epoch
 * target its run had then, which a resumed run later raised.
 */
export function describeWeights(meta: WeightsHeader): string {
  const c = meta.config;
  const images = meta.step * c.batch;
  const ema = c.emaDecay ? `, EMA weights (decay ${c.emaDecay})` : '';
  return `${c.preset} preset, D=${c.D}, batch ${c.batch}${ema}; after ${meta.epoch} epoch${meta.epoch === 1 ? '' : 's'} (${meta.step} steps, ${images.toLocaleString('en-US')} images)`;
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
