/**
 * Safetensors reader/writer: round trips in F32/F16/BF16, header validation errors, sharded
 * index, layout mapping (OIHW→HWIO, Linear transpose) and the key report.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  encodeSafetensors,
  f16ToF32,
  f32ToF16,
  formatKeyReport,
  matchKeys,
  openSafetensors,
  SafetensorsFile,
  tfShape,
  torchToTfLayout,
  writeSafetensors,
} from '../../lib/weights/safetensors';
import { mulberry32 } from '../helpers';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-test-'));
const rnd = mulberry32(7);
const vals = (n: number) => Array.from({ length: n }, () => rnd() * 4 - 2);

test('F32 / F16 / BF16 round trip and tensor-by-tensor reads', () => {
  const a = vals(24);
  const b = vals(5);
  const c = vals(6);
  const file = path.join(dir, 'rt.safetensors');
  writeSafetensors(
    file,
    [
      { name: 'a', shape: [2, 3, 4], data: a, dtype: 'F32' },
      { name: 'b.half', shape: [5], data: b, dtype: 'F16' },
      { name: 'c.bf', shape: [2, 3], data: c, dtype: 'BF16' },
    ],
    { format: 'pt' },
  );
  const f = new SafetensorsFile(file);
  assert.deepEqual([...f.tensors.keys()].sort(), ['a', 'b.half', 'c.bf']);
  assert.equal(f.metadata.format, 'pt');
  const ta = f.read('a');
  assert.deepEqual(ta.shape, [2, 3, 4]);
  ta.data.forEach((v, i) => assert.equal(v, Math.fround(a[i])));
  // fp16 keeps 11 significant bits: relative error ≤ 2^-11
  f.read('b.half').data.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= Math.abs(b[i]) * 2 ** -11 + 1e-7, `${v} vs ${b[i]}`));
  // bf16 truncates to 8 significant bits
  f.read('c.bf').data.forEach((v, i) => assert.ok(Math.abs(v - c[i]) <= Math.abs(c[i]) * 2 ** -7, `${v} vs ${c[i]}`));
  assert.throws(() => f.read('nope'), /no tensor "nope"/);
  f.close();
});

test('f16 conversion: exact known bit patterns', () => {
  assert.equal(f16ToF32(0x3c00), 1);
  assert.equal(f16ToF32(0xc000), -2);
  assert.equal(f16ToF32(0x7bff), 65504);
  assert.equal(f16ToF32(0x0001), 2 ** -24);
  assert.equal(f16ToF32(0x7c00), Infinity);
  assert.equal(f32ToF16(1), 0x3c00);
  assert.equal(f32ToF16(65504), 0x7bff);
  assert.equal(f32ToF16(1e6), 0x7c00);
  assert.equal(f32ToF16(2 ** -24), 0x0001);
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00); // tie → even
  for (let h = 0; h < 0x7c00; h += 37) assert.equal(f32ToF16(f16ToF32(h)), h);
});

test('clear one-line errors: truncated file, bad header, wrong dtype, bad offsets', () => {
  const good = encodeSafetensors([{ name: 'w', shape: [4, 4], data: vals(16) }]);
  const trunc = path.join(dir, 'trunc.safetensors');
  fs.writeFileSync(trunc, good.subarray(0, good.length - 5));
  assert.throws(
    () => new SafetensorsFile(trunc),
    (e: Error) => /trunc\.safetensors: truncated/.test(e.message) && !e.message.includes('\n'),
  );
  const short = path.join(dir, 'short.safetensors');
  fs.writeFileSync(short, good.subarray(0, 4));
  assert.throws(() => new SafetensorsFile(short), /too short/);
  const halfHeader = path.join(dir, 'halfheader.safetensors');
  fs.writeFileSync(halfHeader, good.subarray(0, 20));
  assert.throws(() => new SafetensorsFile(halfHeader), /truncated: the header needs/);
  const junk = path.join(dir, 'junk.safetensors');
  fs.writeFileSync(junk, Buffer.from('this is not a safetensors file at all, just text'));
  assert.throws(() => new SafetensorsFile(junk), /header length .* out of range|not valid JSON/);
  const mk = (header: object) => {
    const j = Buffer.from(JSON.stringify(header));
    const l = Buffer.alloc(8);
    l.writeBigUInt64LE(BigInt(j.length));
    return Buffer.concat([l, j, Buffer.alloc(64)]);
  };
  const i64 = path.join(dir, 'i64.safetensors');
  fs.writeFileSync(i64, mk({ x: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }));
  assert.throws(() => new SafetensorsFile(i64), /tensor "x" has dtype "I64"; supported: F16, BF16, F32/);
  const off = path.join(dir, 'off.safetensors');
  fs.writeFileSync(off, mk({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }));
  assert.throws(() => new SafetensorsFile(off), /data_offsets span 8 bytes but F32 \[3\] needs 12/);
  const badJson = path.join(dir, 'badjson.safetensors');
  const l = Buffer.alloc(8);
  l.writeBigUInt64LE(5n);
  fs.writeFileSync(badJson, Buffer.concat([l, Buffer.from('{"a":')]));
  assert.throws(() => new SafetensorsFile(badJson), /not valid JSON/);
  assert.throws(() => new SafetensorsFile(path.join(dir, 'missing.safetensors')), /cannot open \(ENOENT\)/);
});

test('sharded *.index.json', () => {
  const a = vals(6);
  const b = vals(4);
  writeSafetensors(path.join(dir, 'm-00001-of-00002.safetensors'), [{ name: 'x.weight', shape: [2, 3], data: a }]);
  writeSafetensors(path.join(dir, 'm-00002-of-00002.safetensors'), [{ name: 'y.bias', shape: [4], data: b, dtype: 'F16' }]);
  const idx = path.join(dir, 'm.safetensors.index.json');
  fs.writeFileSync(
    idx,
    JSON.stringify({
      metadata: { total_size: 40 },
      weight_map: { 'x.weight': 'm-00001-of-00002.safetensors', 'y.bias': 'm-00002-of-00002.safetensors' },
    }),
  );
  const src = openSafetensors(idx);
  assert.deepEqual([...src.tensors.keys()].sort(), ['x.weight', 'y.bias']);
  assert.deepEqual([...src.read('x.weight').data], a.map(Math.fround));
  assert.equal(src.read('y.bias').data.length, 4);
  src.close();
  fs.writeFileSync(idx, JSON.stringify({ weight_map: { z: 'm-00001-of-00002.safetensors' } }));
  assert.throws(() => openSafetensors(idx), /puts "z" in m-00001-of-00002.safetensors, which does not contain it/);
});

test('layout mapping: conv OIHW → HWIO and Linear [out,in] → [in,out]', () => {
  const O = 3,
    I = 2,
    H = 3,
    W = 2;
  const data = Float32Array.from({ length: O * I * H * W }, (_, i) => i);
  const out = torchToTfLayout(data, [O, I, H, W], 'conv');
  assert.deepEqual(tfShape({ shape: [O, I, H, W], kind: 'conv' }), [H, W, I, O]);
  for (let o = 0; o < O; o++)
    for (let i = 0; i < I; i++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) assert.equal(out[((h * W + w) * I + i) * O + o], ((o * I + i) * H + h) * W + w);
  const lin = torchToTfLayout(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3], 'linear'); // [[1,2,3],[4,5,6]]ᵀ
  assert.deepEqual([...lin], [1, 4, 2, 5, 3, 6]);
  assert.deepEqual(tfShape({ shape: [2, 3], kind: 'linear' }), [3, 2]);
  const v = Float32Array.from([1, 2]);
  assert.equal(torchToTfLayout(v, [2], 'vector'), v);
});

test('key report: missing, unexpected and misshaped tensors', () => {
  const specs = [
    { name: 'a.weight', shape: [4, 3], kind: 'linear' as const },
    { name: 'a.bias', shape: [4], kind: 'vector' as const },
    { name: 'b.weight', shape: [2, 2, 3, 3], kind: 'conv' as const },
  ];
  const found = new Map([
    ['a.weight', { shape: [3, 4] }],
    ['b.weight', { shape: [2, 2, 3, 3] }],
    ['extra.weight', { shape: [1] }],
  ]);
  const r = matchKeys(specs, found);
  assert.equal(r.ok, false);
  assert.deepEqual(r.missing, ['a.bias']);
  assert.deepEqual(r.unexpected, ['extra.weight']);
  assert.deepEqual(r.misshaped, [{ name: 'a.weight', expected: [4, 3], found: [3, 4] }]);
  const text = formatKeyReport(r, 'test.safetensors');
  assert.match(text.split('\n')[0], /1 missing, 1 unexpected, 1 misshaped/);
  assert.match(text, /a\.weight: expected \[4,3\], found \[3,4\]/);
  assert.ok(matchKeys(specs.slice(1, 2), new Map([['a.bias', { shape: [4] }]])).ok);
});
