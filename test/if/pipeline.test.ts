/**
 * IF end to end on tiny random models laid out like downloaded Hugging Face folders: stage I as a
 * Part A Denoiser (shapes, predictMany = predict, prompt errors), Part A's sampler running on it,
 * stage II upscaling, Part 0, bilinear align_corners, and memory staying flat.
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { loadPromptEmbeddings } from '../../lib/weights/embeddings';
import { checkFitsEngine, loadIFFromDefaults, loadIFModel } from '../../lib/models/if/load';
import { type IFModel } from '../../lib/models/if/model';
import { IFDenoiser } from '../../lib/models/if/denoiser';
import { runPart0 as runPart0With, upscaleBilinear } from '../../lib/algorithms/ifPipeline';
import { PART0_PROMPTS } from '../../notebooks/support/part0';
import { writeTorchDict } from '../../lib/weights/torchPickle';
import { Rng } from '../../lib/tensor/random';
import { sampleCfg } from '../../lib/algorithms';
import { planUnet } from '../../lib/models/if/unet';
import { randArray, tinyStageI, tinyStageII, writeTinyModel } from './tiny';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'if-models-'));
const PROMPTS = [...PART0_PROMPTS, 'a high quality photo', ''];

let den: IFDenoiser;
let stage2: IFModel;

before(async () => {
  await initEngine({ quiet: true });
  writeTinyModel(path.join(root, 'IF-I-L-v1.0'), tinyStageI, 1);
  writeTinyModel(path.join(root, 'IF-II-L-v1.0'), { ...tinyStageII, sample_size: 16 }, 2);
  fs.writeFileSync(
    path.join(root, 'prompt_embeds_dict.pth'),
    writeTorchDict(
      Object.fromEntries(PROMPTS.map((p, i) => [p, { shape: [1, 5, 16], data: Float32Array.from(randArray(80, 300 + i, 2)) }])),
    ),
  );
  const r = loadIFFromDefaults(root, { stage2: true });
  assert.ok(!('missing' in r), 'missing' in r ? r.missing : '');
  den = (r as { den: IFDenoiser }).den;
  stage2 = (r as { stage2: IFModel }).stage2;
});

/** Part 0 with the course's prompts. */
const runPart0 = (d: IFDenoiser, s2: IFModel | undefined, o: Omit<Parameters<typeof runPart0With>[2], 'prompts'>) =>
  runPart0With(d, s2, { ...o, prompts: PART0_PROMPTS });

after(() => {
  den?.dispose();
  stage2?.dispose();
});

test('stage I Denoiser: metadata, shapes, predictMany equals predict', () => {
  assert.deepEqual(den.imageSize, [8, 8]);
  assert.equal(den.channels, 3);
  assert.deepEqual(den.valueRange, [-1, 1]);
  assert.equal(den.learnedVariance, true);
  assert.equal(den.schedule.T, 1000);
  assert.deepEqual([...den.prompts].sort(), [...PROMPTS].sort());
  for (const p of PROMPTS) den.encodePrompt(p); // handles (and their embedding tensors) are cached for the model's life
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const y = tf.randomNormal([1, 8, 8, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
    const a = den.predict(x, 500, den.encodePrompt('a rocket ship'));
    const b = den.predict(y, 500, den.encodePrompt(''));
    assert.deepEqual(a.eps.shape, [2, 8, 8, 3]);
    assert.deepEqual(a.variance!.shape, [2, 8, 8, 3]);
    const [ma, mb] = den.predictMany(
      [
        { xt: x, cond: den.encodePrompt('a rocket ship') },
        { xt: y, cond: den.encodePrompt('') },
      ],
      500,
    );
    assert.ok(tf.max(tf.abs(tf.sub(ma.eps, a.eps))).dataSync()[0] < 1e-5);
    assert.ok(tf.max(tf.abs(tf.sub(mb.variance!, b.variance!))).dataSync()[0] < 1e-5);
    // different prompts give different predictions
    const c = den.predict(y, 500, den.encodePrompt('a man wearing a hat'));
    assert.ok(tf.max(tf.abs(tf.sub(c.eps, b.eps))).dataSync()[0] > 1e-4);
  });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(den.encodePrompt('a rocket ship'), den.encodePrompt('a rocket ship'), 'handles are cached');
});

test('stage I Denoiser: unknown prompt and wrong shapes give one clear line', () => {
  assert.throws(
    () => den.encodePrompt('a cat'),
    (e: Error) => /has no prompt "a cat": use one of .*"a rocket ship".*To add a prompt, compute its T5 embedding/.test(e.message),
  );
  tf.tidy(() => {
    assert.throws(() => den.predict(tf.zeros([1, 16, 16, 3]) as tf.Tensor4D, 10, den.encodePrompt('')), /needs \[B,8,8,3\]/);
  });
});

test("Part A's CFG sampler runs unchanged on the IF Denoiser (the course's strided 990…0 list)", () => {
  const before = tf.memory().numTensors;
  const ts = [990, 690, 390, 90, 0];
  const a = sampleCfg(den, 2, { rng: new Rng(5), timesteps: ts, prompt: 'a rocket ship', gamma: 7 });
  const b = sampleCfg(den, 2, { rng: new Rng(5), timesteps: ts, prompt: 'a rocket ship', gamma: 7 });
  assert.deepEqual(a.shape, [2, 8, 8, 3]);
  assert.ok(Array.from(a.dataSync()).every(Number.isFinite));
  assert.deepEqual([...a.dataSync()], [...b.dataSync()]);
  tf.dispose([a, b]);
  assert.equal(tf.memory().numTensors, before);
});

test('Part 0 on tiny models: stage I then stage II, seeded, shapes and ranges, memory flat', () => {
  const before = tf.memory().numTensors;
  const calls: string[] = [];
  const res = runPart0(den, stage2, { seed: 180, stepCounts: [2, 3], onStep: (s, n, i) => calls.push(`${s}:${n}:${i}`) });
  assert.deepEqual(
    res.map((r) => r.steps),
    [2, 3],
  );
  for (const r of res) {
    assert.deepEqual(r.stage1.shape, [3, 8, 8, 3]);
    assert.deepEqual(r.stage2!.shape, [3, 16, 16, 3]);
    // dynamic thresholding keeps x̂₀ in [-1, 1]; the final step (t = 0) returns the mean of x̂₀ and x_t
    for (const t of [r.stage1, r.stage2!]) assert.ok(Array.from(t.dataSync()).every((v) => Number.isFinite(v) && Math.abs(v) < 3));
  }
  assert.deepEqual(calls.slice(0, 4), ['1:2:1', '1:2:2', '2:2:1', '2:2:2']);
  const again = runPart0(den, stage2, { seed: 180, stepCounts: [2] });
  assert.deepEqual([...again[0].stage2!.dataSync()], [...res[0].stage2!.dataSync()], 'same seed, same images');
  const other = runPart0(den, undefined, { seed: 181, stepCounts: [2] });
  assert.ok(other[0].stage2 === undefined);
  assert.notDeepEqual([...other[0].stage1.dataSync()], [...res[0].stage1.dataSync()]);
  for (const r of [...res, ...again, ...other]) tf.dispose([r.stage1, r.stage2].filter((t): t is tf.Tensor4D => !!t));
  assert.equal(tf.memory().numTensors, before);
});

test('bilinear upscale equals align_corners=True interpolation (float64 reference)', () => {
  const h = 3,
    w = 4,
    H = 7,
    W = 9;
  const x = randArray(h * w * 2, 5, 1);
  const got = tf.tidy(() => upscaleBilinear(tf.tensor4d(Float32Array.from(x), [1, h, w, 2]), [H, W]).dataSync());
  for (let i = 0; i < H; i++)
    for (let j = 0; j < W; j++)
      for (let c = 0; c < 2; c++) {
        const sy = (i * (h - 1)) / (H - 1);
        const sx = (j * (w - 1)) / (W - 1);
        const y0 = Math.floor(sy),
          x0 = Math.floor(sx);
        const y1 = Math.min(y0 + 1, h - 1),
          x1 = Math.min(x0 + 1, w - 1);
        const fy = sy - y0,
          fx = sx - x0;
        const at = (y: number, xx: number) => x[(y * w + xx) * 2 + c];
        const want = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
        assert.ok(Math.abs(got[(i * W + j) * 2 + c] - want) < 1e-5);
      }
});

test('loading reports what is missing, in one line', () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'if-empty-'));
  const r = loadIFFromDefaults(empty);
  assert.ok('missing' in r && /no IF stage I weights in .*npm run weights -- if-i-l/.test(r.missing));
  assert.throws(() => loadIFModel(empty), /no unet\/config\.json/);
  // embeddings of the wrong width are refused with the reason
  const emb = loadPromptEmbeddings(path.join(root, 'prompt_embeds_dict.pth'));
  assert.throws(() => new IFDenoiser(den.model, { ...emb, dim: 4096 }), /4096-dimensional but .* expects 16/);
  // a stage-I folder is not a stage-II model
  assert.throws(
    () =>
      tf.tidy(() => {
        runPart0(den, den.model, { seed: 1, stepCounts: [1] });
      }),
    /is not a stage-II model/,
  );
});

test('a model too large for the wasm heap is refused before loading, in one line', (t) => {
  if (tf.getBackend() !== 'wasm') {
    t.skip(`engine is ${tf.getBackend()}, not wasm`);
    return;
  }
  const cfg = JSON.parse(
    fs.readFileSync(path.join(__dirname, '..', '..', '..', 'test', 'if', 'fixtures', 'if-ii-l-unet-config.json'), 'utf8'),
  );
  assert.throws(
    () => checkFitsEngine(planUnet(cfg), 'models/IF-II-L-v1.0'),
    /IF-II-L-v1\.0 needs 4\.63 GiB of float32 weights .*4 GiB heap.*DIFFUSION_ENGINE=webgpu/,
  );
  checkFitsEngine(planUnet(tinyStageI), 'tiny'); // small models pass
});
