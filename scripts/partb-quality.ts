/**
 * Ships and judges the Part B weights.
 *   node dist/scripts/partb-quality.js [--ship] [--models class,time,denoiser,flow-time,flow-class] [--steps 1,2,4,…]
 *                                      [--per-digit 50] [--count 500] [--guidance 5] [--weights FILE,…]
 * Samples each DDPM model (n ≥ 500), judges the samples with the project's classifier (lib/evaluation/quality.ts:
 * Fréchet distance of its features to the test set, calibrated by the mean of up to 8 draws of n real training digits; confident share; per-digit
 * accuracy; background level), prints the table and writes it into the manifests (atomically), one row per --steps entry
 * (Euler steps for the flow models, DDPM steps for the DDPMs: 300 = the full chain). The denoiser: test MSE per σ.
 * --ship first copies runs/partb/<model>-<preset>/{final,epoch-1[,epoch-5]}.weights and manifest.json to weights/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initEngine } from '../lib/engine';
import { CliError, exitCodeFor, parseCommandLine, seedOption } from '../lib/cli';
import { loadMnist } from '../lib/data/mnist';
import { PRESETS } from '../lib/training/presets';
import { loadUNetWeights } from '../lib/models/unetWeights';
import { Classifier } from '../lib/models/classifier';
import {
  denoiserMse,
  describeSampler,
  meanImageReport,
  qualityTableCells,
  judgeImages,
  qualityReference,
  qualityRow,
  type QualityReference,
  type QualityRow,
} from '../lib/evaluation/quality';
import type * as tf from '@tensorflow/tfjs-core';
import { PARTB_SAMPLER } from '../lib/algorithms/ddpmSampling';
import { FLOW_SAMPLING_STEPS } from '../lib/algorithms/flowSampling';
import { samplePartB } from '../lib/algorithms/partBSampling';
import { describeConfig, findModel } from '../lib/models/registry';
import { DDPMScheduler, type VarianceType } from '../lib/schedulers/ddpm';
import {
  checkpointEpoch,
  manifestPath,
  runWeightsFile,
  shippedCheckpoints,
  shippedRunName,
  shippedWeightsPath,
  trainCommand,
  type ShippedModel,
} from '../lib/weights/shipped';
import { writeFileAtomic } from '../lib/files';
import { formatTable } from '../lib/display/table';
import { PROJECT_ROOT as REPO_ROOT } from '../lib/paths';

export const SIGMAS = [0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0];

function ship(model: ShippedModel): void {
  const dir = path.join(REPO_ROOT, 'runs', 'partb', shippedRunName(model));
  const final = path.join(dir, 'final.weights');
  if (!fs.existsSync(final)) throw new Error(`${final} is missing: run \`${trainCommand(model)}\` first`);
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  // Each checkpoint the model ships (early after epoch 1, middle after shippedMiddleEpoch, final), copied atomically.
  for (const which of shippedCheckpoints(model)) {
    const epoch = checkpointEpoch(model, which);
    const from = path.join(dir, runWeightsFile(model, which));
    const to = shippedWeightsPath(model, which);
    if (!fs.existsSync(from)) {
      m[`${which}Weights`] = null;
      continue;
    }
    writeFileAtomic(to, fs.readFileSync(from));
    m[which === 'final' ? 'weights' : `${which}Weights`] =
      path.relative(REPO_ROOT, to) + (epoch === undefined ? '' : ` (after epoch ${epoch})`);
  }
  m.presetDescription = PRESETS[m.preset as 'cpu']?.description ?? m.presetDescription;
  writeFileAtomic(manifestPath(model), JSON.stringify(m, null, 2) + '\n');
  console.log(`shipped ${model}: ${m.weights} (${(fs.statSync(shippedWeightsPath(model)).size / 1e6).toFixed(2)} MB)`);
}

function readQuality(model: ShippedModel): Record<string, unknown> {
  const f = manifestPath(model);
  return fs.existsSync(f) ? ((JSON.parse(fs.readFileSync(f, 'utf8')) as { quality?: Record<string, unknown> }).quality ?? {}) : {};
}

/** The DDPM timestep list of a step count: the full chain (N = T) or strided by T/N, both ending with the step to x₀. */
function addQuality(model: ShippedModel, q: Record<string, unknown>): void {
  const f = manifestPath(model);
  const m = fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : { model };
  m.quality = { ...(m.quality ?? {}), ...q, measuredWith: 'node dist/scripts/partb-quality.js ' + process.argv.slice(2).join(' ') };
  writeFileAtomic(f, JSON.stringify(m, null, 2) + '\n');
}

const USAGE = `usage: node dist/scripts/partb-quality.js [--ship | --ship-only] [--models class,time,denoiser,flow-time,flow-class] [--steps 1,2,4] [--per-digit 50] [--count 500] [--guidance 5]
                          [--variance fixed_large|fixed_small] [--clip] [--weights FILE,…] [--no-write] [--test-images 2000] [--seed 1000]
Judges the Part B weights (weights/partb-<model>.weights, or --weights FILE,… of one model) with the project's classifier:
Fréchet distance of the classifier's features to the MNIST test set (and of real training digits at the same n), the share
of confident samples, per-digit accuracy (class model, γ = 5), the background level; writes the numbers into the manifests.
--ship first copies runs/partb/<model>-<preset>/{final,epoch-1[,epoch-5]}.weights and manifest.json into weights/.`;

const QUALITY_OPTIONS = {
  ship: { type: 'boolean', help: 'copy runs/partb/<model>-<preset>/ (lib/weights/shipped.ts) into weights/ first, then measure' },
  'ship-only': { type: 'boolean', help: 'copy without measuring' },
  models: {
    type: 'string',
    list: true,
    choices: ['class', 'time', 'denoiser', 'denoiser-pure-noise', 'flow-time', 'flow-class', 'flow-time-reflow'],
    default: ['class', 'time', 'denoiser'],
    help: 'models to ship and measure',
  },
  steps: {
    type: 'number',
    list: true,
    integer: true,
    min: 1,
    help: 'sampling steps to judge, each a row: Euler steps (flow models), or DDPM steps (300 = the full chain, fewer = strided by 300/N)',
    defaultHelp: `flow ${FLOW_SAMPLING_STEPS}, DDPM 300`,
  },
  'per-digit': { type: 'number', integer: true, min: 1, max: 6000, default: 50, help: 'class model: samples per digit judged' },
  guidance: {
    type: 'number',
    min: 0,
    max: 100,
    default: 5,
    help: 'class models: the classifier-free guidance scale γ (the spec and the targets use 5; another value implies --no-write)',
  },
  count: { type: 'number', integer: true, min: 2, max: 60000, default: 500, help: 'time model: samples judged' },
  variance: {
    type: 'string',
    choices: ['fixed_large', 'fixed_small'],
    help: "the sampler's σ²: β_t (Alg. B.2) or the posterior β̃_t",
    defaultHelp: "the preset's sampler",
  },
  clip: { type: 'boolean', help: 'clip x̂₀ to [0, 1] in every step', defaultHelp: "the preset's sampler" },
  weights: {
    type: 'string',
    list: true,
    valueName: 'FILE,…',
    help: 'judge these weights files (one model, e.g. the epochs of a run: a row each) instead of the shipped one; implies --no-write',
  },
  'no-write': { type: 'boolean', help: 'print only; leave the manifests alone' },
  'test-images': { type: 'number', integer: true, min: 1, max: 10000, default: 2000, help: 'denoiser: test images for the MSE' },
  seed: seedOption(1000, 'sampling and noise seed'),
} as const;

async function main(): Promise<void> {
  const { values: a } = parseCommandLine(process.argv.slice(2), QUALITY_OPTIONS, USAGE);
  await initEngine();
  const models: ShippedModel[] = a.models;
  if (a.weights && models.length !== 1)
    throw new CliError(`--weights judges files of one model: add --models with one of class, time, denoiser, flow-time, flow-class`);
  if (a.ship || a['ship-only']) for (const m of models) ship(m);
  if (a['ship-only']) return;
  const write = !a['no-write'] && !a.weights && a.guidance === 5;
  const seed = a.seed;
  const sampler = {
    ...PARTB_SAMPLER,
    ...(a.variance ? { varianceType: a.variance as VarianceType } : {}),
    ...(a.clip ? { clipSample: [0, 1] as const } : {}),
  };
  const clfFile = shippedWeightsPath('classifier');
  const needClf = models.some((m) => Boolean(findModel(m)?.sampling));
  let clf: Classifier | undefined;
  let ref: QualityReference | undefined;
  if (needClf) {
    if (!fs.existsSync(clfFile)) throw new Error(`${clfFile} is missing: run \`${trainCommand('classifier')}\``);
    clf = Classifier.load(clfFile).net;
  }
  const rows: QualityRow[] = [];
  // Each (model, file) pair is judged in turn: the shipped weights of each model, or the --weights files of the one model.
  const jobs: Array<[ShippedModel, string]> = a.weights
    ? a.weights.map((f) => [models[0], f])
    : models.map((m) => [m, shippedWeightsPath(m)]);
  for (const [model, file] of jobs) {
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`${trainCommand(model)}\``);
    const { net, meta } = loadUNetWeights(file);
    const held = describeConfig(meta.config).name;
    if (held !== model) throw new Error(`${file} holds the ${held} model, not ${model}: pass --models ${held}`);
    const t0 = performance.now();
    const desc = describeConfig(meta.config);
    const sampling = desc.sampling;
    if (sampling) {
      const classModel = desc.numClasses > 0;
      const T = meta.config.T;
      const n = classModel ? 10 * a['per-digit'] : a.count;
      if (!ref || ref.real.n !== n) {
        const train = loadMnist('train');
        // The calibration averages up to 8 disjoint draws of n real digits (fewer when n is large).
        ref = qualityReference(clf!, train, loadMnist('test'), n, seed + 1, Math.max(1, Math.min(8, Math.floor(train.count / n))));
      }
      const labels = Array.from({ length: n }, (_, i) => i % 10);
      const bySteps: Array<Record<string, unknown>> = [];
      const defaultSteps = sampling.defaultSteps(T);
      for (const steps of a.steps ?? [defaultSteps]) {
        const t1 = performance.now();
        const progress = (i: number, total: number) =>
          (i % 10 === 0 || i === total) && process.stderr.write(`\r${model}: step ${i}/${total}   `);
        let timesteps: number[];
        try {
          timesteps = sampling.grid(steps, T);
        } catch (e) {
          throw new CliError(`--steps ${steps}: ${(e as Error).message}`);
        }
        const scheduler = sampling.scheduler(T, sampler);
        const res = samplePartB(desc, net, {
          seed,
          T,
          timesteps,
          ddpmScheduler: sampler,
          onStep: progress,
          ...(classModel ? { labels, guidance: a.guidance } : { count: n }),
        });
        const images: tf.Tensor4D = res.images;
        const samplerText =
          scheduler instanceof DDPMScheduler
            ? `DDPM, ${sampling.describeSteps(steps, T)}, ${describeSampler(scheduler.config)}`
            : `Euler, ${steps} step${steps === 1 ? '' : 's'}`;
        process.stderr.write('\n');
        const j = judgeImages(clf!, images, ref);
        images.dispose();
        const what = a.weights ? path.relative(process.cwd(), file) : model;
        const row = qualityRow(`${what}${classModel ? ` γ = ${a.guidance}` : ''}, ${samplerText}`, j, ref, classModel ? labels : undefined);
        rows.push(row);
        bySteps.push({ steps, sampler: samplerText, seconds: Math.round((performance.now() - t1) / 1000), ...row });
      }
      if (write) {
        const old = readQuality(model);
        const merged = [
          ...((old.bySteps as Array<{ steps: number }> | undefined) ?? []).filter((r) => !bySteps.some((b) => b.steps === r.steps)),
          ...bySteps,
        ];
        merged.sort((x, y) => (x.steps as number) - (y.steps as number));
        // The headline row is the one at the default step count (what figures and `npm run sample` use).
        const main = merged.find((r) => r.steps === defaultSteps);
        addQuality(model, {
          samples: n,
          sampleSeed: seed,
          ...(classModel ? { guidance: 5, samplesPerDigit: a['per-digit'] } : {}),
          ...(main ?? {}),
          bySteps: merged,
        });
      }
    } else if (desc.judge === 'mean-image') {
      const n = a['test-images'];
      const r = meanImageReport(net, loadMnist('train'), loadMnist('test'), n, seed);
      console.log(
        `${model}: outputs for ${n} noise draws: MSE ${r.mseToMean.toExponential(2)} to the mean training digit, ` +
          `spread ${r.outputSpread.toExponential(2)} across draws; MSE to test digits ${r.outputToTest.toFixed(4)} ` +
          `(the mean digit itself: ${r.meanToTest.toFixed(4)})`,
      );
      if (write) addQuality(model, { noiseDraws: n, noiseSeed: seed, ...r });
    } else {
      const test = loadMnist('test');
      const n = a['test-images'];
      const mse: Record<string, number> = {};
      for (const s of SIGMAS) mse[String(s)] = denoiserMse(net, test, s, n, seed);
      console.log(`denoiser test MSE (${n} test images) at σ: ${SIGMAS.map((s) => `${s}: ${mse[String(s)].toFixed(4)}`).join(', ')}`);
      if (write) addQuality('denoiser', { testImages: n, noiseSeed: seed, testMseAtSigma05: mse['0.5'], testMseBySigma: mse });
    }
    console.log(`  ${model}: ${file} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    net.dispose();
  }
  if (rows.length) {
    if (models.some((m) => findModel(m)?.sampling?.prediction === 'epsilon')) console.log(`DDPM sampler: ${describeSampler(sampler)}`);
    console.log(formatTable(qualityTableCells(rows)));
  }
  if (clf && fs.existsSync(manifestPath('classifier'))) {
    const m = JSON.parse(fs.readFileSync(manifestPath('classifier'), 'utf8'));
    console.log(`judge: the project's MNIST classifier, test accuracy ${(m.testAccuracy * 100).toFixed(2)}%`);
  }
}

main().catch((e) => {
  console.error(`error: ${(e as Error).message}`);
  process.exit(exitCodeFor(e));
});
