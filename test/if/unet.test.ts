/**
 * IF UNet: block-level numerics against the float64 reference (test/if/reference.ts), tiny
 * stage-I and stage-II UNets loaded from diffusers-named safetensors and checked end to end,
 * the loader's key report, and clear errors for unsupported configs.
 */
import { test, before } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import {
  AddedKVAttention,
  GroupNorm,
  ParamRegistry,
  ResnetBlock2D,
  ResnetOptions,
  TextTimeEmbedding,
  timestepFeatures,
} from '../../lib/models/if/layers';
import { openSafetensors, writeSafetensors } from '../../lib/weights/safetensors';
import { disposeWeights, loadUnetWeights, parseUnetConfig, planUnet } from '../../lib/models/if/unet';
import * as ref from './reference';
import { randArray, randomParams, relErr, tinyStageI, tinyStageII, toWeights, writeParams } from './tiny';

before(async () => {
  await initEngine({ quiet: true });
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'if-unet-'));

test('timestep embedding matches the closed form (flip_sin_to_cos, freq_shift)', () => {
  for (const [dim, flip, shift] of [
    [32, true, 0],
    [32, false, 1],
    [8, true, 1],
  ] as const) {
    const rows = timestepFeatures([0, 1, 250, 999], dim, flip, shift);
    [0, 1, 250, 999].forEach((t, k) => {
      const want = ref.sinusoid(t, dim, flip, shift);
      for (let i = 0; i < dim; i++) assert.ok(Math.abs(rows[k][i] - want[i]) < 1e-12, `t=${t} i=${i}`);
    });
  }
  // t = 0: cos terms are 1 and sin terms 0; with flip the cos half comes first
  const z = timestepFeatures([0], 8, true, 0)[0];
  assert.deepEqual([...z], [1, 1, 1, 1, 0, 0, 0, 0]);
});

test('GroupNorm matches float64 (image and token layouts)', () => {
  const reg = new ParamRegistry();
  const gn = new GroupNorm(reg, 'gn', 4, 16, 1e-5);
  const P = randomParams(reg.specs, 1);
  const w = toWeights(reg.specs, P);
  const x = randArray(2 * 5 * 3 * 16, 2, 3).map((v, i) => v + (i % 16) * 0.5); // per-channel offsets
  const y = tf.tidy(() => gn.apply(w, tf.tensor4d(Float32Array.from(x), [2, 5, 3, 16])).dataSync());
  assert.ok(relErr(y, ref.groupNorm(P, 'gn', x, 2, 15, 16, 4, 1e-5)) < 1e-5);
  disposeWeights(w);
  assert.throws(() => new GroupNorm(new ParamRegistry(), 'bad', 32, 48, 1e-5), /48 channels cannot be split into 32 groups/);
});

function resnetCase(cin: number, cout: number, o: ResnetOptions, seed: number) {
  const reg = new ParamRegistry();
  const blk = new ResnetBlock2D(reg, 'r', cin, cout, 24, o);
  const P = randomParams(reg.specs, seed);
  const w = toWeights(reg.specs, P);
  const B = 2,
    H = 4,
    W = 6;
  const x = randArray(B * H * W * cin, seed + 1, 2);
  const temb = randArray(B * 24, seed + 2, 2);
  const y = tf.tidy(() => {
    const out = blk.apply(w, tf.tensor4d(Float32Array.from(x), [B, H, W, cin]), tf.tensor2d(Float32Array.from(temb), [B, 24]));
    return { shape: out.shape, data: out.dataSync() };
  });
  const r = ref.resnet(P, 'r', { B, H, W, C: cin, d: x }, temb, { ...o, scaleShift: o.timeNorm === 'scale_shift' });
  disposeWeights(w);
  assert.deepEqual(y.shape, [B, r.H, r.W, cout]);
  const e = relErr(y.data, r.d);
  assert.ok(e < 1e-4, `resnet ${JSON.stringify(o)}: rel err ${e}`);
  return reg;
}

test('ResnetBlock2D (scale_shift, shortcut, up/down, skip_time_act, output scale) matches float64', () => {
  const base: ResnetOptions = { groups: 4, eps: 1e-5, act: 'gelu', timeNorm: 'scale_shift', outputScale: 1, skipTimeAct: false };
  const reg = resnetCase(8, 16, base, 10);
  assert.deepEqual(reg.specs.find((s) => s.name === 'r.time_emb_proj.weight')!.shape, [32, 24]); // 2·C_out for scale and shift
  assert.ok(reg.specs.some((s) => s.name === 'r.conv_shortcut.weight'));
  resnetCase(16, 16, { ...base, down: true, skipTimeAct: true, outputScale: 1.4142271 }, 20);
  resnetCase(16, 16, { ...base, up: true }, 30);
  resnetCase(8, 8, { ...base, timeNorm: 'default', act: 'silu' }, 40);
});

test('attention with added text K/V (group-normed text, concat with self K/V, residual) matches float64', () => {
  for (const onlyCross of [false, true]) {
    const reg = new ParamRegistry();
    const at = new AddedKVAttention(reg, 'a', 16, 8, 32, 4, 1e-5, onlyCross, 'group_norm');
    assert.equal(
      reg.specs.some((s) => s.name === 'a.to_k.weight'),
      !onlyCross,
    );
    const P = randomParams(reg.specs, 50);
    const w = toWeights(reg.specs, P);
    const B = 2,
      H = 3,
      W = 4,
      S = 5;
    const x = randArray(B * H * W * 16, 51, 2);
    const enc = randArray(B * S * 32, 52, 2);
    const y = tf.tidy(() =>
      at.apply(w, tf.tensor4d(Float32Array.from(x), [B, H, W, 16]), tf.tensor3d(Float32Array.from(enc), [B, S, 32])).dataSync(),
    );
    const r = ref.addedKVAttention(P, 'a', { B, H, W, C: 16, d: x }, enc, S, 8, 4, onlyCross);
    const e = relErr(y, r.d);
    assert.ok(e < 1e-4, `onlyCross=${onlyCross}: rel err ${e}`);
    disposeWeights(w);
  }
});

test('TextTimeEmbedding (LayerNorm → attention pooling → Linear → LayerNorm) matches float64', () => {
  const reg = new ParamRegistry();
  const te = new TextTimeEmbedding(reg, 'add_embedding', 16, 24, 4);
  const P = randomParams(reg.specs, 60);
  const w = toWeights(reg.specs, P);
  const B = 2,
    S = 7;
  const x = randArray(B * S * 16, 61, 2);
  const y = tf.tidy(() => te.apply(w, tf.tensor3d(Float32Array.from(x), [B, S, 16])).dataSync());
  const pooled = ref.attentionPooling(P, 'add_embedding.pool', ref.layerNorm(P, 'add_embedding.norm1', x, B * S, 16), B, S, 16, 4);
  const r = ref.layerNorm(P, 'add_embedding.norm2', ref.linear(P, 'add_embedding.proj', pooled, B), B, 24);
  assert.ok(relErr(y, r) < 1e-4);
  disposeWeights(w);
});

for (const [label, cfg, classLabel] of [
  ['stage I', tinyStageI, undefined],
  ['stage II', tinyStageII, 250],
] as const) {
  test(`tiny ${label} UNet: safetensors (F16, diffusers names) → load → run, equals the float64 reference`, () => {
    const unet = planUnet(cfg);
    const P = randomParams(unet.specs, label.length * 7, true);
    const file = path.join(dir, `${label.replace(' ', '')}.safetensors`);
    writeParams(file, P, 'F16');
    const before = tf.memory().numTensors;
    const src = openSafetensors(file);
    const w = loadUnetWeights(unet, src);
    src.close();
    assert.equal(w.size, unet.specs.length);
    const B = 2,
      H = 8,
      W = 8,
      S = 5;
    const x = randArray(B * H * W * cfg.in_channels, 70, 1.5);
    const text = randArray(B * S * 16, 71, 2);
    const mid = tf.memory().numTensors;
    const out = tf.tidy(() => {
      const o = unet.apply(
        w,
        tf.tensor4d(Float32Array.from(x), [B, H, W, cfg.in_channels]),
        500,
        tf.tensor3d(Float32Array.from(text), [B, S, 16]),
        classLabel,
      );
      return { shape: o.shape, data: o.dataSync() };
    });
    assert.equal(tf.memory().numTensors, mid, 'forward pass leaks no tensors');
    assert.deepEqual(out.shape, [B, H, W, 6]);
    const r = ref.refUnet(cfg, P, { B, H, W, C: cfg.in_channels, d: x }, 500, text, S, classLabel);
    const e = relErr(out.data, r.d);
    assert.ok(e < 1e-4, `${label}: rel err ${e}`);
    console.log(`${label}: max rel err vs float64 reference ${e.toExponential(2)}`);
    // The timestep and the text both matter (the reference agrees at other inputs too).
    const out2 = tf.tidy(() =>
      unet
        .apply(
          w,
          tf.tensor4d(Float32Array.from(x), [B, H, W, cfg.in_channels]),
          20,
          tf.tensor3d(Float32Array.from(text), [B, S, 16]),
          classLabel,
        )
        .dataSync(),
    );
    assert.ok(relErr(out2, out.data) > 1e-3);
    disposeWeights(w);
    assert.equal(tf.memory().numTensors, before);
  });
}

test('loader: strict key report for missing, unexpected and misshaped tensors', () => {
  const unet = planUnet(tinyStageI);
  const P = randomParams(unet.specs, 80);
  const tensors = [...P].map(([name, t]) => ({ name, shape: t.shape, data: Float32Array.from(t.data) }));
  const broken = tensors
    .filter((t) => t.name !== 'mid_block.attentions.0.add_k_proj.bias')
    .map((t) => (t.name === 'conv_in.weight' ? { ...t, shape: [32, 3, 1, 9] } : t));
  broken.push({ name: 'down_blocks.9.resnets.0.conv1.weight', shape: [1], data: Float32Array.from([0]) });
  const file = path.join(dir, 'broken.safetensors');
  writeSafetensors(file, broken);
  const before = tf.memory().numTensors;
  const src = openSafetensors(file);
  assert.throws(
    () => loadUnetWeights(unet, src),
    (e: Error) =>
      /1 missing, 1 unexpected, 1 misshaped/.test(e.message) &&
      e.message.includes('mid_block.attentions.0.add_k_proj.bias') &&
      e.message.includes('down_blocks.9.resnets.0.conv1.weight') &&
      e.message.includes('conv_in.weight: expected [32,3,3,3], found [32,3,1,9]'),
  );
  src.close();
  assert.equal(tf.memory().numTensors, before, 'nothing allocated when the keys do not match');
});

test('unsupported config values give one clear line', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { ...tinyStageI, down_block_types: ['DownBlock2D', 'SimpleCrossAttnDownBlock2D'] },
      /down_block_types .* not supported .*ResnetDownsampleBlock2D/,
    ],
    [{ ...tinyStageI, mid_block_type: 'UNetMidBlock2DCrossAttn' }, /mid_block_type = "UNetMidBlock2DCrossAttn" is not supported/],
    [{ ...tinyStageI, resnet_time_scale_shift: 'ada_group' }, /resnet_time_scale_shift = "ada_group"/],
    [{ ...tinyStageI, addition_embed_type: 'text_time' }, /addition_embed_type = "text_time"/],
    [{ ...tinyStageI, class_embed_type: 'projection' }, /class_embed_type = "projection"/],
    [{ ...tinyStageI, act_fn: 'relu' }, /act_fn = "relu"/],
    [{ ...tinyStageI, layers_per_block: [1, 2, 3] }, /layers_per_block .*one valid value per block \(2\)/],
    [{ ...tinyStageI, cross_attention_dim: [32, 32] }, /cross_attention_dim/],
  ];
  for (const [cfg, re] of cases) {
    assert.throws(
      () => parseUnetConfig(cfg),
      (e: Error) => re.test(e.message) && !e.message.includes('\n'),
      `expected ${re}`,
    );
  }
  assert.throws(() => planUnet({ ...tinyStageI, norm_num_groups: 6 }), /32 channels cannot be split into 6 groups/);
  assert.throws(() => planUnet({ ...tinyStageI, attention_head_dim: 12 }), /not divisible by attention_head_dim 12/);
});

test('forward pass rejects wrong inputs with one line', () => {
  const unet = planUnet(tinyStageII);
  const w = new Map<string, tf.Tensor>();
  tf.tidy(() => {
    assert.throws(
      () => unet.apply(w, tf.zeros([1, 8, 8, 3]) as tf.Tensor4D, 10, tf.zeros([1, 5, 16]) as tf.Tensor3D, 250),
      /3 channels but the config's in_channels is 6/,
    );
    assert.throws(
      () => unet.apply(w, tf.zeros([1, 6, 6, 6]) as tf.Tensor4D, 10, tf.zeros([1, 5, 16]) as tf.Tensor3D, 250),
      /divisible by 4/,
    );
    assert.throws(
      () => unet.apply(w, tf.zeros([1, 8, 8, 6]) as tf.Tensor4D, 10, tf.zeros([1, 5, 8]) as tf.Tensor3D, 250),
      /text embeddings have shape \[1,5,8\]/,
    );
    assert.throws(
      () => unet.apply(w, tf.zeros([1, 8, 8, 6]) as tf.Tensor4D, 10, tf.zeros([1, 5, 16]) as tf.Tensor3D),
      /needs classLabels = the noise level/,
    );
  });
});
