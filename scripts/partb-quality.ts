/**
 * Ships and judges the Part B weights.
 *   node dist/scripts/partb-quality.js [--ship] [--models class,time,denoiser] [--per-digit 10] [--count 100]
 * --test-images N: denoiser MSE on the first N test images (default 2000).
 * --ship-only copies without measuring.
 * --ship first copies runs/partb/<model>-cpu/{final,epoch-1}.weights and manifest.json to
 * weights/partb-<model>{,-early}.weights and weights/partb-<model>.manifest.json.
 * Then prints the quality numbers and writes them into the manifests (atomically).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initEngine } from '../lib/engine';
import { exitCodeFor, parseCommandLine, seedOption } from '../lib/cli';
import { loadMnist } from '../lib/data/mnist';
import { PRESETS } from '../lib/training/trainer';
import { loadUNetWeights } from '../lib/models/unetWeights';
import { Classifier } from '../lib/models/classifier';
import { classSampleAccuracy, denoiserMse, timeSampleConfidence } from '../lib/evaluation/quality';
import { manifestPath, shippedWeightsPath, trainCommand, type ShippedModel } from '../lib/weights/shipped';
import { writeFileAtomic } from '../lib/image/io';
import { PROJECT_ROOT as REPO_ROOT } from '../lib/paths';

export const SIGMAS = [0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0];

function ship(model: ShippedModel): void {
  const dir = path.join(REPO_ROOT, 'runs', 'partb', `${model}-cpu`);
  const final = path.join(dir, 'final.weights');
  if (!fs.existsSync(final)) throw new Error(`${final} is missing: run \`${trainCommand(model)}\` first`);
  fs.copyFileSync(final, shippedWeightsPath(model));
  const early = path.join(dir, 'epoch-1.weights');
  if (fs.existsSync(early)) fs.copyFileSync(early, shippedWeightsPath(model, 'early'));
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  m.presetDescription = PRESETS[m.preset as 'cpu']?.description ?? m.presetDescription;
  m.weights = path.relative(REPO_ROOT, shippedWeightsPath(model));
  m.earlyWeights = fs.existsSync(early) ? path.relative(REPO_ROOT, shippedWeightsPath(model, 'early')) + ' (after epoch 1)' : null;
  writeFileAtomic(manifestPath(model), JSON.stringify(m, null, 2) + '\n');
  console.log(`shipped ${model}: ${m.weights} (${(fs.statSync(shippedWeightsPath(model)).size / 1e6).toFixed(2)} MB)`);
}

function addQuality(model: ShippedModel, q: Record<string, unknown>): void {
  const f = manifestPath(model);
  const m = fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : { model };
  m.quality = { ...(m.quality ?? {}), ...q, measuredWith: 'node dist/scripts/partb-quality.js ' + process.argv.slice(2).join(' ') };
  writeFileAtomic(f, JSON.stringify(m, null, 2) + '\n');
}

const USAGE = `usage: node dist/scripts/partb-quality.js [--ship | --ship-only] [--models class,time,denoiser] [--per-digit 10] [--count 100] [--test-images 2000] [--seed 1000]
Measures the shipped Part B weights (weights/partb-<model>.weights) and writes the numbers into their manifests;
--ship first copies runs/partb/<model>-cpu/{final,epoch-1}.weights and manifest.json into weights/.`;

const QUALITY_OPTIONS = {
  ship: { type: 'boolean', help: 'copy runs/partb/<model>-cpu/ into weights/ first, then measure' },
  'ship-only': { type: 'boolean', help: 'copy without measuring' },
  models: {
    type: 'string',
    list: true,
    choices: ['class', 'time', 'denoiser'],
    default: ['class', 'time', 'denoiser'],
    help: 'models to ship and measure',
  },
  'per-digit': { type: 'number', integer: true, min: 1, default: 10, help: 'class model: samples per digit judged at γ = 5' },
  count: { type: 'number', integer: true, min: 1, default: 100, help: 'time model: samples judged' },
  'test-images': { type: 'number', integer: true, min: 1, max: 10000, default: 2000, help: 'denoiser: test images for the MSE' },
  seed: seedOption(1000, 'sampling and noise seed'),
} as const;

async function main(): Promise<void> {
  const { values: a } = parseCommandLine(process.argv.slice(2), QUALITY_OPTIONS, USAGE);
  await initEngine();
  const models: ShippedModel[] = a.models;
  if (a.ship || a['ship-only']) for (const m of models) ship(m);
  if (a['ship-only']) return;
  const seed = a.seed;
  const clfFile = shippedWeightsPath('classifier');
  const needClf = models.includes('class') || models.includes('time');
  let clf: Classifier | undefined;
  if (needClf) {
    if (!fs.existsSync(clfFile)) throw new Error(`${clfFile} is missing: run \`${trainCommand('classifier')}\``);
    clf = Classifier.load(clfFile).net;
  }
  for (const model of models) {
    const file = shippedWeightsPath(model);
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`${trainCommand(model)}\``);
    const { net } = loadUNetWeights(file);
    const t0 = performance.now();
    if (model === 'class') {
      const perDigit = a['per-digit'];
      const r = classSampleAccuracy(net, clf!, {
        perDigit,
        guidance: 5,
        seed,
        onStep: (i, n) => i % 20 === 0 && process.stderr.write(`\rclass: step ${i}/${n}   `),
      });
      process.stderr.write('\n');
      console.log(
        `class-conditioned, γ=5, ${perDigit} samples per digit: accuracy ${(r.overall * 100).toFixed(1)}% (per digit ${r.perDigit.map((x) => (x * 100).toFixed(0)).join(' ')}), mean confidence ${r.meanConfidence.toFixed(3)}`,
      );
      addQuality('class', {
        guidance: 5,
        samplesPerDigit: perDigit,
        sampleSeed: seed,
        classifierAccuracy: r.overall,
        perDigitAccuracy: r.perDigit,
        meanConfidence: r.meanConfidence,
      });
    } else if (model === 'time') {
      const count = a.count;
      const r = timeSampleConfidence(net, clf!, { count, seed });
      console.log(
        `time-conditioned, ${count} samples: mean top-class confidence ${r.meanConfidence.toFixed(3)}, predicted digits ${r.digitCounts.join(' ')}`,
      );
      addQuality('time', {
        samples: count,
        sampleSeed: seed,
        meanTopClassConfidence: r.meanConfidence,
        predictedDigitCounts: r.digitCounts,
      });
    } else if (model === 'denoiser') {
      const test = loadMnist('test');
      const n = a['test-images'];
      const mse: Record<string, number> = {};
      for (const s of SIGMAS) mse[String(s)] = denoiserMse(net, test, s, n, seed);
      console.log(`denoiser test MSE (${n} test images) at σ: ${SIGMAS.map((s) => `${s}: ${mse[String(s)].toFixed(4)}`).join(', ')}`);
      addQuality('denoiser', { testImages: n, noiseSeed: seed, testMseAtSigma05: mse['0.5'], testMseBySigma: mse });
    }
    console.log(`  (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    net.dispose();
  }
  if (clf && fs.existsSync(manifestPath('classifier'))) {
    const m = JSON.parse(fs.readFileSync(manifestPath('classifier'), 'utf8'));
    console.log(`classifier test accuracy ${(m.testAccuracy * 100).toFixed(2)}%`);
  }
}

main().catch((e) => {
  console.error(`error: ${(e as Error).message}`);
  process.exit(exitCodeFor(e));
});
