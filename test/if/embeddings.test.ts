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
import { spawnSync } from 'node:child_process';
import { encodeNpy, loadPromptEmbeddings, readNpy } from '../../lib/weights/embeddings';
import { writeSafetensors } from '../../lib/weights/safetensors';
import { readTorchZip, unpickleTorch, writeTorchDict } from '../../lib/weights/torchPickle';
import { randArray } from './tiny';

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
