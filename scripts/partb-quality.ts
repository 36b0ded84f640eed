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
import { parseArgs } from '../lib/partb/cli';
import { loadMnist } from '../lib/partb/mnistData';
import { PRESETS, loadUNetWeights } from '../lib/partb/train';
import { Classifier } from '../lib/partb/classifier';
import { classSampleAccuracy, denoiserMse, timeSampleConfidence } from '../lib/partb/quality';
import { manifestPath, shippedWeightsPath, trainCommand, REPO_ROOT, type ShippedModel } from '../lib/partb/weights';
import { writeFileAtomic } from '../lib/image/io';

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

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2), { ship: 'boolean', 'ship-only': 'boolean', models: 'string', 'per-digit': 'number', count: 'number', 'test-images': 'number', seed: 'number' });
  await initEngine();
  const models = ((a.models as string) ?? 'class,time,denoiser').split(',') as ShippedModel[];
  if (a.ship || a['ship-only']) for (const m of models) ship(m);
  if (a['ship-only']) return;
  const seed = (a.seed as number) ?? 1000;
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
      const perDigit = (a['per-digit'] as number) ?? 10;
      const r = classSampleAccuracy(net, clf!, { perDigit, guidance: 5, seed, onStep: (i, n) => i % 20 === 0 && process.stderr.write(`\rclass: step ${i}/${n}   `) });
      process.stderr.write('\n');
      console.log(`class-conditioned, γ=5, ${perDigit} samples per digit: accuracy ${(r.overall * 100).toFixed(1)}% (per digit ${r.perDigit.map((x) => (x * 100).toFixed(0)).join(' ')}), mean confidence ${r.meanConfidence.toFixed(3)}`);
      addQuality('class', { guidance: 5, samplesPerDigit: perDigit, sampleSeed: seed, classifierAccuracy: r.overall, perDigitAccuracy: r.perDigit, meanConfidence: r.meanConfidence });
    } else if (model === 'time') {
      const count = (a.count as number) ?? 100;
      const r = timeSampleConfidence(net, clf!, { count, seed });
      console.log(`time-conditioned, ${count} samples: mean top-class confidence ${r.meanConfidence.toFixed(3)}, predicted digits ${r.digitCounts.join(' ')}`);
      addQuality('time', { samples: count, sampleSeed: seed, meanTopClassConfidence: r.meanConfidence, predictedDigitCounts: r.digitCounts });
    } else if (model === 'denoiser') {
      const test = loadMnist('test');
      const n = (a['test-images'] as number) ?? 2000;
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
  process.exit(1);
});
