/**
 * From the published IF-I-XL and IF-II-L configs (SPEC §3.2, test/if/fixtures/), the full list of
 * expected diffusers parameter names and shapes is generated here independently (from
 * diffusers' module rules, written out longhand) and compared with what the implementation
 * plans — in shape-only mode, allocating no weights. Parameter counts are checked against the
 * IF README (§3.1: IF-I-XL 4.3B, IF-II-L 1.2B).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { planUnet } from '../../lib/models/if/unet';

const fixtures = path.join(__dirname, '..', '..', '..', 'test', 'if', 'fixtures');
const load = (f: string) => JSON.parse(fs.readFileSync(path.join(fixtures, f), 'utf8'));

/** Expected state_dict {name: shape} of an IF UNet, written from diffusers' module definitions. */
function expectedKeys(cfg: any): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const lin = (n: string, i: number, o: number) => (m.set(`${n}.weight`, [o, i]), m.set(`${n}.bias`, [o]));
  const conv = (n: string, i: number, o: number, k: number) => (m.set(`${n}.weight`, [o, i, k, k]), m.set(`${n}.bias`, [o]));
  const norm = (n: string, c: number) => (m.set(`${n}.weight`, [c]), m.set(`${n}.bias`, [c]));
  const boc: number[] = cfg.block_out_channels;
  const n = boc.length;
  const lpb: number[] = typeof cfg.layers_per_block === 'number' ? boc.map(() => cfg.layers_per_block) : cfg.layers_per_block;
  const T = cfg.time_embedding_dim ?? 4 * boc[0];
  const X = cfg.cross_attention_dim;
  const E = cfg.encoder_hid_dim;
  const ss = cfg.resnet_time_scale_shift === 'scale_shift' ? 2 : 1;
  const res = (p: string, i: number, o: number) => {
    norm(`${p}.norm1`, i);
    conv(`${p}.conv1`, i, o, 3);
    lin(`${p}.time_emb_proj`, T, ss * o);
    norm(`${p}.norm2`, o);
    conv(`${p}.conv2`, o, o, 3);
    if (i !== o) conv(`${p}.conv_shortcut`, i, o, 1);
  };
  const att = (p: string, c: number) => {
    norm(`${p}.group_norm`, c);
    for (const q of ['to_q', 'to_k', 'to_v']) lin(`${p}.${q}`, c, c);
    lin(`${p}.add_k_proj`, X, c);
    lin(`${p}.add_v_proj`, X, c);
    norm(`${p}.norm_cross`, X);
    lin(`${p}.to_out.0`, c, c);
  };
  conv('conv_in', cfg.in_channels, boc[0], 3);
  lin('time_embedding.linear_1', boc[0], T);
  lin('time_embedding.linear_2', T, T);
  if (cfg.class_embed_type === 'timestep') {
    lin('class_embedding.linear_1', boc[0], T);
    lin('class_embedding.linear_2', T, T);
  }
  lin('encoder_hid_proj', E, X);
  norm('add_embedding.norm1', E);
  m.set('add_embedding.pool.positional_embedding', [1, E]);
  for (const q of ['q_proj', 'k_proj', 'v_proj']) lin(`add_embedding.pool.${q}`, E, E);
  lin('add_embedding.proj', E, T);
  norm('add_embedding.norm2', T);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < lpb[i]; j++) {
      res(`down_blocks.${i}.resnets.${j}`, j === 0 ? boc[Math.max(i - 1, 0)] : boc[i], boc[i]);
      if (cfg.down_block_types[i].startsWith('SimpleCrossAttn')) att(`down_blocks.${i}.attentions.${j}`, boc[i]);
    }
    if (i < n - 1) res(`down_blocks.${i}.downsamplers.0`, boc[i], boc[i]);
  }
  res('mid_block.resnets.0', boc[n - 1], boc[n - 1]);
  att('mid_block.attentions.0', boc[n - 1]);
  res('mid_block.resnets.1', boc[n - 1], boc[n - 1]);
  // Skip channels in push order, consumed last-first by the up path.
  const skips = [boc[0]];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < lpb[i]; j++) skips.push(boc[i]);
    if (i < n - 1) skips.push(boc[i]);
  }
  let ch = boc[n - 1];
  for (let u = 0; u < n; u++) {
    const level = n - 1 - u;
    for (let j = 0; j <= lpb[level]; j++) {
      const s = skips.pop()!;
      res(`up_blocks.${u}.resnets.${j}`, ch + s, boc[level]);
      ch = boc[level];
      if (cfg.up_block_types[u].startsWith('SimpleCrossAttn')) att(`up_blocks.${u}.attentions.${j}`, ch);
    }
    if (u < n - 1) res(`up_blocks.${u}.upsamplers.0`, ch, ch);
  }
  assert.equal(skips.length, 0, 'every skip is consumed');
  norm('conv_norm_out', boc[0]);
  conv('conv_out', boc[0], cfg.out_channels, 3);
  return m;
}

for (const [file, label, lo, hi] of [
  ['if-i-xl-unet-config.json', 'IF-I-XL', 4.2e9, 4.4e9],
  ['if-ii-l-unet-config.json', 'IF-II-L', 1.15e9, 1.3e9],
] as const) {
  test(`${label}: planned parameter names and shapes equal diffusers' (shape-only, no allocation)`, () => {
    const cfg = load(file);
    const unet = planUnet(cfg, file);
    const want = expectedKeys(cfg);
    const got = new Map(unet.specs.map((s) => [s.name, s.shape]));
    const missing = [...want.keys()].filter((k) => !got.has(k));
    const extra = [...got.keys()].filter((k) => !want.has(k));
    assert.deepEqual(missing, [], 'names the implementation does not plan');
    assert.deepEqual(extra, [], 'names the implementation plans but diffusers does not have');
    for (const [k, s] of want) assert.deepEqual(got.get(k), s, k);
    const count = unet.paramCount;
    console.log(
      `${label}: ${unet.specs.length} tensors, ${count} parameters, ${((count * 4) / 2 ** 30).toFixed(2)} GiB as float32, ${((count * 2) / 2 ** 30).toFixed(2)} GiB as fp16`,
    );
    assert.ok(count > lo && count < hi, `${label} has ${count} parameters; the IF README says ≈${label === 'IF-I-XL' ? '4.3B' : '1.2B'}`);
  });
}

test('IF-I-XL spot checks: widths, heads and the text-pooling embedding', () => {
  const unet = planUnet(load('if-i-xl-unet-config.json'));
  const s = new Map(unet.specs.map((x) => [x.name, x.shape]));
  assert.deepEqual(s.get('time_embedding.linear_1.weight'), [2816, 704]); // time_embed_dim = 4 × 704
  assert.deepEqual(s.get('encoder_hid_proj.weight'), [2816, 4096]);
  assert.deepEqual(s.get('add_embedding.pool.positional_embedding'), [1, 4096]);
  assert.deepEqual(s.get('down_blocks.1.attentions.0.add_k_proj.weight'), [1408, 2816]);
  assert.deepEqual(s.get('down_blocks.0.resnets.0.time_emb_proj.weight'), [1408, 2816]); // scale and shift
  assert.deepEqual(s.get('conv_out.weight'), [6, 704, 3, 3]);
  assert.ok(!s.has('class_embedding.linear_1.weight'));
  assert.ok(!s.has('down_blocks.0.attentions.0.to_q.weight'), 'the first block has no attention');
});

test('IF-II-L spot checks: 6 input channels, noise-level class embedding, time_embedding_dim 1280', () => {
  const unet = planUnet(load('if-ii-l-unet-config.json'));
  const s = new Map(unet.specs.map((x) => [x.name, x.shape]));
  assert.deepEqual(s.get('conv_in.weight'), [160, 6, 3, 3]);
  assert.deepEqual(s.get('class_embedding.linear_1.weight'), [1280, 160]);
  assert.deepEqual(s.get('time_embedding.linear_2.weight'), [1280, 1280]);
  assert.deepEqual(s.get('down_blocks.4.attentions.4.to_out.0.weight'), [1280, 1280]);
  assert.ok(!s.has('down_blocks.2.attentions.0.to_q.weight'));
  assert.equal(unet.config.resnetSkipTimeAct, true);
});
