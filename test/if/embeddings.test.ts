/**
 * Prompt embeddings: the .pth reader on archives from this project's writer (and, when
 * /usr/bin/python3 has torch, on one written by real torch.save), .safetensors and .npy, and
 * clear errors for bad files.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { encodeNpy, loadPromptEmbeddings, readNpy } from '../../lib/weights/embeddings';
import { writeSafetensors } from '../../lib/weights/safetensors';
import { readTorchZip, unpickleTorch, writeTorchDict } from '../../lib/weights/torchPickle';
import { randArray } from './tiny';
import { peakRssInChild, zerosDeflated } from '../helpers';
import { zipSync, type Zippable } from 'fflate';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'if-emb-'));
const S = 77;
const D = 8;
const prompts = ['an oil painting of a snowy mountain village', 'a man wearing a hat', 'a rocket ship', ''];
const mats = prompts.map((_, i) => Float32Array.from(randArray(S * D, 100 + i, 3)));

test('.pth written by the project writer (fp16 and fp32 storages) reads back', () => {
  for (const dtype of ['F16', 'F32'] as const) {
    const file = path.join(dir, `dict-${dtype}.pth`);
    fs.writeFileSync(
      file,
      writeTorchDict(Object.fromEntries(prompts.map((p, i) => [p, { shape: [1, S, D], data: mats[i] }])), {
        dtype,
        stem: 'prompt_embeds_dict',
      }),
    );
    const e = loadPromptEmbeddings(file);
    assert.equal(e.seqLen, S);
    assert.equal(e.dim, D);
    assert.deepEqual([...e.byPrompt.keys()], prompts);
    prompts.forEach((p, i) => {
      const got = e.byPrompt.get(p)!;
      const tol = dtype === 'F16' ? 3 * 2 ** -11 : 0;
      for (let j = 0; j < got.length; j++) assert.ok(Math.abs(got[j] - mats[i][j]) <= tol * Math.abs(mats[i][j]) + 1e-7);
    });
  }
});

test('.pth written by real torch.save (skipped when python3 has no torch)', (t) => {
  const file = path.join(dir, 'torch.pth');
  const py = `
import torch
torch.manual_seed(0)
a = torch.randn(1, 77, 8).half()
b = torch.arange(24, dtype=torch.float32).reshape(4, 6).t()  # non-contiguous view: strides (1, 6)
c = torch.randn(2, 3).half()[1]                               # view with a storage offset
d = {'a photo of a dog': a, 'transposed': b, 'offset': c, '': a}
torch.save(d, ${JSON.stringify(file)})
import json
print(json.dumps({k: v.float().flatten().tolist() for k, v in d.items()}))
`;
  const r = spawnSync('/usr/bin/python3', ['-c', py], { encoding: 'utf8', timeout: 120000 });
  if (r.status !== 0) {
    t.skip(`python3 torch not available (${(r.stderr || '').trim().split('\n').pop()})`);
    return;
  }
  const want = JSON.parse(r.stdout) as Record<string, number[]>;
  const obj = readTorchZip(fs.readFileSync(file), 'torch.pth') as Map<string, { shape: number[]; data: Float32Array }>;
  assert.deepEqual([...obj.keys()], ['a photo of a dog', 'transposed', 'offset', '']);
  assert.deepEqual(obj.get('transposed')!.shape, [6, 4]);
  assert.deepEqual([...obj.get('transposed')!.data], want.transposed);
  assert.deepEqual([...obj.get('offset')!.data], want.offset.map(Math.fround));
  assert.deepEqual([...obj.get('a photo of a dog')!.data], want['a photo of a dog'].map(Math.fround));
  // the embeddings loader insists on one [77,D] shape for every prompt
  assert.throws(() => loadPromptEmbeddings(file), /"transposed" is \[6,4\] but the others are \[77,8\]/);
});

test('.safetensors: per-prompt tensors, or one stacked tensor with metadata prompts', () => {
  const f1 = path.join(dir, 'per.safetensors');
  writeSafetensors(
    f1,
    prompts.map((p, i) => ({ name: p, shape: [1, S, D], data: mats[i], dtype: 'F16' as const })),
  );
  const e1 = loadPromptEmbeddings(f1);
  assert.deepEqual([...e1.byPrompt.keys()].sort(), [...prompts].sort());
  const stacked = new Float32Array(prompts.length * S * D);
  mats.forEach((m, i) => stacked.set(m, i * S * D));
  const f2 = path.join(dir, 'stacked.safetensors');
  writeSafetensors(f2, [{ name: 'prompt_embeds', shape: [prompts.length, S, D], data: stacked }], { prompts: JSON.stringify(prompts) });
  const e2 = loadPromptEmbeddings(f2);
  assert.deepEqual([...e2.byPrompt.get('a rocket ship')!], [...mats[2]]);
});

test('.npy with a prompts sidecar', () => {
  const stacked = new Float32Array(prompts.length * S * D);
  mats.forEach((m, i) => stacked.set(m, i * S * D));
  const f = path.join(dir, 'emb.npy');
  fs.writeFileSync(f, encodeNpy([prompts.length, S, D], stacked));
  assert.deepEqual(readNpy(fs.readFileSync(f)).shape, [prompts.length, S, D]);
  assert.throws(() => loadPromptEmbeddings(f), /no prompt names: put them, in row order, as a JSON list in emb\.npy\.prompts\.json/);
  fs.writeFileSync(`${f}.prompts.json`, JSON.stringify(prompts));
  const e = loadPromptEmbeddings(f);
  assert.deepEqual([...e.byPrompt.get('')!], [...mats[3]]);
  assert.throws(() => loadPromptEmbeddings(f, { prompts: ['a', 'b'] }), /array is \[4,77,8\] but 2 prompts are listed/);
});

test('clear errors: missing file, truncated .pth, non-zip, foreign globals, wrong format', () => {
  assert.throws(() => loadPromptEmbeddings(path.join(dir, 'nope.pth')), /not found: download the course's prompt_embeds_dict\.pth/);
  const good = writeTorchDict({ a: { shape: [1, 2, 2], data: [1, 2, 3, 4] } });
  const trunc = path.join(dir, 'trunc.pth');
  fs.writeFileSync(trunc, good.subarray(0, good.length - 30));
  assert.throws(() => loadPromptEmbeddings(trunc), /trunc\.pth: not a readable PyTorch zip archive .*truncated download\?/);
  const legacy = path.join(dir, 'legacy.pth');
  fs.writeFileSync(legacy, Uint8Array.from([0x80, 2, 0x8a, 0x0a]));
  assert.throws(() => loadPromptEmbeddings(legacy), /legacy \(pre-1\.6, non-zip\)/);
  // a pickle calling os.system is refused, not run
  const evil = new TextEncoder().encode("cos\nsystem\n(S'echo hi'\ntR.");
  assert.throws(() => unpickleTorch(evil, () => new Uint8Array()), /refusing to load global os\.system/);
  const txt = path.join(dir, 'emb.txt');
  fs.writeFileSync(txt, 'x');
  assert.throws(() => loadPromptEmbeddings(txt), /unsupported embeddings format \.txt/);
  const bad = path.join(dir, 'bad.safetensors');
  writeSafetensors(bad, [{ name: 'p', shape: [2, 3, 4, 5], data: new Float32Array(120) }]);
  assert.throws(() => loadPromptEmbeddings(bad), /expected \[1,77,4096\] or \[77,4096\]/);
});

// ---- untrusted .pth files: sizes, views and pickle lengths are bounded before memory is taken ----

/** Pickle opcodes for a hand-made data.pkl. */
const P = {
  str(s: string): number[] {
    const b = [...new TextEncoder().encode(s)];
    return [0x58, b.length & 255, (b.length >> 8) & 255, 0, 0, ...b];
  },
  int(v: number): number[] {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return [0x4a, ...b];
  },
  global(m: string, n: string): number[] {
    return [0x63, ...new TextEncoder().encode(`${m}\n${n}\n`)];
  },
};

interface View {
  name: string;
  key: string;
  numel: number;
  offset: number;
  size: number[];
  stride: number[];
}

/** data.pkl for {name: _rebuild_tensor_v2(FloatStorage key, offset, size, stride)} of each view. */
function pickleOf(views: View[]): Uint8Array {
  const o: number[] = [0x80, 2, 0x7d, 0x28];
  for (const v of views) {
    o.push(...P.str(v.name), ...P.global('torch._utils', '_rebuild_tensor_v2'), 0x28);
    o.push(
      0x28,
      ...P.str('storage'),
      ...P.global('torch', 'FloatStorage'),
      ...P.str(v.key),
      ...P.str('cpu'),
      ...P.int(v.numel),
      0x74,
      0x51,
    );
    o.push(...P.int(v.offset), 0x28, ...v.size.flatMap(P.int), 0x74, 0x28, ...v.stride.flatMap(P.int), 0x74, 0x89, 0x29, 0x74, 0x52);
  }
  o.push(0x75, 0x2e);
  return Uint8Array.from(o);
}

const f32bytes = (a: number[]) => new Uint8Array(Float32Array.from(a).buffer);

/**
 * Sets the uncompressed size an archive's central directory declares for one entry and, when
 * given, its compression method (there and in its local header: 8 turns a stored entry holding a
 * ready-made deflate stream into a deflated one; its CRC is then not the inflated data's, which
 * the reader does not check).
 */
function declare(zip: Uint8Array, name: string, size: number, method?: number): Uint8Array {
  const b = Buffer.from(zip);
  let e = b.length - 22;
  while (b.readUInt32LE(e) !== 0x06054b50) e--;
  let o = b.readUInt32LE(e + 16);
  for (let i = 0; i < b.readUInt16LE(e + 10); i++) {
    const n = b.readUInt16LE(o + 28);
    if (b.toString('utf8', o + 46, o + 46 + n) === name) {
      b.writeUInt32LE(size, o + 24);
      if (method !== undefined) {
        b.writeUInt16LE(method, o + 10);
        b.writeUInt16LE(method, b.readUInt32LE(o + 42) + 8);
      }
    }
    o += 46 + n + b.readUInt16LE(o + 30) + b.readUInt16LE(o + 32);
  }
  return b;
}

test('.pth: only the entries the pickle references are inflated, each declared size checked against a limit and the actual size', () => {
  const storage = Float32Array.from({ length: 64 }, (_, i) => i / 8);
  const view: View = { name: 'p', key: '0', numel: 64, offset: 0, size: [1, 8, 8], stride: [64, 8, 1] };
  const entries = (junk = true, level: 0 | 9 = 9): Zippable => ({
    'a/data.pkl': [pickleOf([view]), { level: 0 }],
    'a/data/0': [new Uint8Array(storage.buffer), { level }],
    ...(junk ? { 'a/junk': [new Uint8Array(1 << 16), { level: 9 }] } : {}),
  });
  const good = zipSync(entries());
  const read = (buf: Uint8Array) => readTorchZip(buf, 'f.pth') as Map<string, { data: Float32Array }>;
  assert.deepEqual(read(good).get('p')!.data, storage);
  // An unreferenced entry that claims 4 GB: never inflated, so it does not matter.
  assert.deepEqual(read(declare(good, 'a/junk', 0xfffffff0)).get('p')!.data, storage);
  const line = (re: RegExp) => (e: Error) => re.test(e.message) && !e.message.includes('\n');
  // A referenced one that claims 4 GB: refused before allocating, naming the entry and the limit.
  assert.throws(
    () => read(declare(good, 'a/data/0', 0xfffffff0)),
    line(/^f\.pth: a\/data\/0 declares 4294967280 bytes, more than the limit of 1073741824 bytes for one entry/),
  );
  assert.throws(() => read(declare(good, 'a/data.pkl', 0xfffffff0)), line(/a\/data\.pkl declares 4294967280 bytes, more than the limit/));
  assert.throws(
    () => readTorchZip(good, 'f.pth', { maxEntryBytes: 200 }),
    line(/a\/data\/0 declares 256 bytes, more than the limit of 200 bytes/),
  );
  // Declared smaller or larger than what the entry inflates to.
  for (const size of [100, 255]) {
    assert.throws(
      () => read(declare(good, 'a/data/0', size)),
      line(new RegExp(`a/data/0 inflates to more than the ${size} bytes it declares; refusing it`)),
    );
  }
  assert.throws(() => read(declare(good, 'a/data/0', 300)), line(/a\/data\/0 inflates to 256 bytes but declares 300/));
  const stored = zipSync(entries(false, 0));
  assert.throws(() => read(declare(stored, 'a/data/0', 300)), line(/a\/data\/0 is stored with 256 bytes but declares 300/));
});

test('.pth views: stride 0 and shared storages are cheap; negative offsets and strides and huge views are named errors', () => {
  const st = [1, 2, 3, 4, 5, 6, 7, 8];
  let loads = 0;
  const load = () => (loads++, f32bytes(st));
  const base = { key: '0', numel: 8 };
  const obj = unpickleTorch(
    pickleOf([
      { name: 'expanded', ...base, offset: 0, size: [1000, 8], stride: [0, 1] },
      { name: 'strided', ...base, offset: 1, size: [3], stride: [2] },
      { name: 'all', ...base, offset: 0, size: [2, 4], stride: [4, 1] },
    ]),
    load,
  ) as Map<string, { shape: number[]; data: Float32Array }>;
  assert.equal(loads, 1, 'one storage, read and converted once for three views');
  const ex = obj.get('expanded')!;
  assert.deepEqual(ex.shape, [1000, 8]);
  assert.deepEqual([...ex.data.subarray(7992)], st);
  assert.deepEqual([...obj.get('strided')!.data], [2, 4, 6]);
  assert.deepEqual([...obj.get('all')!.data], st);
  const fails = (v: Partial<View>, re: RegExp) =>
    assert.throws(
      () => unpickleTorch(pickleOf([{ name: 'x', ...base, offset: 0, size: [8], stride: [1], ...v }]), load, 'f.pth'),
      (e: Error) => {
        assert.match(e.message, re);
        assert.doesNotMatch(e.message, /Invalid typed array length|\n/);
        return true;
      },
    );
  fails({ offset: -1 }, /^f\.pth: tensor on storage 0 has a negative storage offset -1 \(torch refuses it too\)/);
  fails({ size: [2, 4], stride: [-4, 1] }, /negative stride \(-4,1\) \(torch refuses it too\)/);
  fails(
    { size: [1e6, 1e6], stride: [0, 0] },
    /tensor view \[1000000,1000000\] on storage 0 has 1000000000000 elements, more than the limit of 134217728/,
  );
  fails({ size: [9] }, /tensor \[9\] \(offset 0, strides 1\) reads past its storage 0 of 8 elements/);
  fails({ offset: 1, size: [2, 4], stride: [4, 1] }, /reads past its storage 0/);
});

test('.pth pickle: APPENDS with 300,000 items does not overflow the stack', () => {
  const n = 300_000;
  // PROTO 2, EMPTY_LIST, MARK, n × BININT1, APPENDS, STOP
  const ops = new Uint8Array(4 + 2 * n + 2);
  ops.set([0x80, 2, 0x5d, 0x28]);
  for (let i = 0; i < n; i++) ops.set([0x4b, i % 256], 4 + 2 * i);
  ops.set([0x65, 0x2e], 4 + 2 * n);
  const list = unpickleTorch(ops, () => new Uint8Array()) as number[];
  assert.equal(list.length, n);
  assert.equal(list[n - 1], (n - 1) % 256);
});

// ---- the same hostile files read in a child process: the error names the problem and peak memory stays bounded ----
// Peak RSS from process.resourceUsage().maxRSS in the child; node + torchPickle alone is ~50 MB.
// Without the bounds the reader used 2.1 GB (junk entry), 575 MB (deflate bomb), 2 GiB (stride-0
// view), 870 MB (200 views of one storage). What one file may still take: one storage at the
// per-entry limit (1 GiB, inflated and converted: ~3-4 GB) or views at the per-view cap (512 MiB).

const torchPickleJs = require.resolve('../../lib/weights/torchPickle');
const PTH_RSS_BOUND_MB = 300;
/** Reads `file` with readTorchZip in a child; `summary` (statements, `t` = the result) returns what comes back. */
const readInChild = (file: string, summary = 'return null;') =>
  peakRssInChild(torchPickleJs, `const t = m.readTorchZip(fs.readFileSync(${JSON.stringify(file)}), 'f.pth'); ${summary}`, { dir });
const rss = (r: { maxRssMB: number; baseMB: number }) => `peak RSS ${r.maxRssMB.toFixed(0)} MB (node + module ${r.baseMB.toFixed(0)} MB)`;
const withinBound = (r: { maxRssMB: number; baseMB: number }, what: string) =>
  assert.ok(r.maxRssMB < PTH_RSS_BOUND_MB, `${what}: ${rss(r)}, bound ${PTH_RSS_BOUND_MB} MB`);

test('zerosDeflated (the bombs below): head then N MiB of zeros, ~1 KB per MiB', () => {
  const head = Uint8Array.from([1, 2, 3, 4, 5]);
  const z = zerosDeflated(3, head);
  assert.ok(z.length < 4000, `${z.length} bytes`);
  const out = zlib.inflateRawSync(z);
  assert.equal(out.length, 5 + 3 * 2 ** 20);
  assert.deepEqual([...out.subarray(0, 5)], [...head]);
  assert.ok(out.subarray(5).every((v) => v === 0));
});

test('.pth memory, child process: an unreferenced 2 GiB deflated junk entry (2 MB file) is never inflated (peak RSS ~52 MB, bound 300 MB)', () => {
  const storage = Float32Array.from({ length: 64 }, (_, i) => i / 8);
  const view: View = { name: 'p', key: '0', numel: 64, offset: 0, size: [1, 8, 8], stride: [64, 8, 1] };
  const zip = zipSync({
    'a/data.pkl': [pickleOf([view]), { level: 0 }],
    'a/data/0': [new Uint8Array(storage.buffer), { level: 9 }],
    'a/junk': [zerosDeflated(2048), { level: 0 }],
  });
  // Honestly declared: it does inflate to 2 GiB (and is over the 1 GiB limit for an entry the reader would read).
  const file = path.join(dir, 'junk.pth');
  fs.writeFileSync(file, declare(zip, 'a/junk', 2 ** 31, 8));
  assert.ok(fs.statSync(file).size < 2.5e6);
  const r = readInChild(file, "return [...t.get('p').data];");
  assert.equal(r.error, undefined, rss(r));
  assert.deepEqual(r.result, [...storage]);
  withinBound(r, 'junk entry');
});

test('.pth memory, child process: a referenced storage that inflates to 1 GiB (1 MB file) but declares 256 bytes stops at 257 (peak RSS ~50 MB, bound 300 MB)', () => {
  const view: View = { name: 'p', key: '0', numel: 64, offset: 0, size: [64], stride: [1] };
  const zip = zipSync({
    'a/data.pkl': [pickleOf([view]), { level: 0 }],
    'a/data/0': [zerosDeflated(1024, f32bytes(Array.from({ length: 64 }, (_, i) => i))), { level: 0 }],
  });
  const file = path.join(dir, 'bomb.pth');
  fs.writeFileSync(file, declare(zip, 'a/data/0', 256, 8));
  assert.ok(fs.statSync(file).size < 1.5e6);
  const r = readInChild(file);
  assert.match(
    r.error ?? `(no error; ${rss(r)})`,
    /^f\.pth: a\/data\/0 inflates to more than the 256 bytes it declares; refusing it \(damaged or hostile archive\)$/,
  );
  withinBound(r, 'deflate bomb');
});

test('.pth memory, child process: a stride-0 view of 2^29 elements in a tiny file is refused before allocating (peak RSS ~50 MB, bound 300 MB)', () => {
  const view: View = { name: 'p', key: '0', numel: 1, offset: 0, size: [2 ** 15, 2 ** 14], stride: [0, 0] };
  const file = path.join(dir, 'stride0.pth');
  fs.writeFileSync(file, zipSync({ 'a/data.pkl': [pickleOf([view]), { level: 0 }], 'a/data/0': [f32bytes([7]), { level: 0 }] }));
  assert.ok(fs.statSync(file).size < 1000);
  const r = readInChild(file);
  assert.match(
    r.error ?? `(no error; ${rss(r)})`,
    /^f\.pth: tensor view \[32768,16384\] on storage 0 has 536870912 elements, more than the limit of 134217728/,
  );
  withinBound(r, 'stride-0 view');
});

test('.pth memory, child process: stride-0 views within the per-view cap cannot add up: views total at most 2^27 elements (peak RSS ~50 MB, bound 300 MB)', () => {
  // Three views of 2^27 elements (512 MiB each) after a small one, in a 600-byte file: 1.6 GB
  // when only each view was capped (four of them took 2.1 GB); the total is checked before each allocation.
  const base = { key: '0', numel: 1, offset: 0 };
  const views: View[] = [
    { name: 'small', ...base, size: [1000], stride: [0] },
    ...[1, 2, 3].map((i) => ({ name: `big${i}`, ...base, size: [2 ** 27], stride: [0] })),
  ];
  const file = path.join(dir, 'stride0-many.pth');
  fs.writeFileSync(file, zipSync({ 'a/data.pkl': [pickleOf(views), { level: 0 }], 'a/data/0': [f32bytes([7]), { level: 0 }] }));
  assert.ok(fs.statSync(file).size < 1000);
  const r = readInChild(file);
  assert.match(
    r.error ?? `(no error; ${rss(r)})`,
    /^f\.pth: tensor views total 134218728 elements with \[134217728\], more than the limit of 134217728 for one file/,
  );
  withinBound(r, 'stride-0 views');
});

test('.pth memory, child process: storages within the per-entry limit cannot add up: storages total at most 1 GiB (1 MB file; peak RSS ~50 MB, bound 300 MB)', () => {
  // Storage 1 honestly declares and holds 1 GiB of zeros (the per-entry limit): alone it is read
  // (~3 GB peak: inflated bytes and float32); after storage 0 it is refused before inflating.
  const views: View[] = [
    { name: 'p', key: '0', numel: 64, offset: 0, size: [64], stride: [1] },
    { name: 'q', key: '1', numel: 2 ** 28, offset: 0, size: [4], stride: [1] },
  ];
  const zip = zipSync({
    'a/data.pkl': [pickleOf(views), { level: 0 }],
    'a/data/0': [f32bytes(Array.from({ length: 64 }, (_, i) => i)), { level: 0 }],
    'a/data/1': [zerosDeflated(1024), { level: 0 }],
  });
  const file = path.join(dir, 'storages-total.pth');
  fs.writeFileSync(file, declare(zip, 'a/data/1', 2 ** 30, 8));
  assert.ok(fs.statSync(file).size < 1.5e6);
  const r = readInChild(file);
  assert.match(
    r.error ?? `(no error; ${rss(r)})`,
    /^f\.pth: storages total 1073742080 bytes with storage 1, more than the limit of 1073741824 for one file/,
  );
  withinBound(r, 'storages total');
});

test('.pth memory, child process: 200 views of one 2 MiB storage convert it once (peak RSS ~56 MB, bound 300 MB and +24 MB over node + module; a copy per view was 870 MB)', () => {
  const numel = 2 ** 19; // 2 MiB of float32
  const storage = Float32Array.from({ length: numel }, (_, i) => i % 1000);
  const views: View[] = Array.from({ length: 200 }, (_, i) => ({
    name: `v${i}`,
    key: '0',
    numel,
    offset: i * 2000,
    size: [4],
    stride: [1],
  }));
  const file = path.join(dir, 'shared.pth');
  fs.writeFileSync(
    file,
    zipSync({ 'a/data.pkl': [pickleOf(views), { level: 0 }], 'a/data/0': [new Uint8Array(storage.buffer), { level: 9 }] }),
  );
  assert.ok(fs.statSync(file).size < 100_000);
  const r = readInChild(file, 'return [...t.values()].map((v) => [...v.data]);');
  assert.equal(r.error, undefined, rss(r));
  assert.deepEqual(
    r.result,
    views.map((v) => [...storage.subarray(v.offset, v.offset + 4)]),
  );
  withinBound(r, 'shared storage');
  // Near one copy (4 MiB: the inflated bytes and their float32): measured +6..8 MB over node + module;
  // converting per view and dropping each copy peaks at +40..70 MB, keeping them at ~800 MB.
  assert.ok(r.maxRssMB - r.baseMB < 24, `shared storage: ${rss(r)}, more than 24 MB over node + module`);
});
