/**
 * `npm run weights`: the download against a local Hugging-Face-like server on 127.0.0.1 (gated
 * with a token, Range support, a connection cut mid-file to test resume, size and SHA-256
 * verification), and `check` on good, truncated, mismatched and missing folders — one line and
 * exit status 1 on failure, no stack trace.
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { checkModel } from '../../lib/models/if/check';
import { downloadFile } from '../../lib/weights/download';
import { tinyStageI, writeTinyModel } from './tiny';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'if-weights-'));
const hubDir = path.join(root, 'hub', 'DeepFloyd', 'IF-I-L-v1.0');
const script = path.join(__dirname, '..', '..', 'scripts', 'weights.js');
const REPO = 'DeepFloyd/IF-I-L-v1.0';
let server: http.Server;
let endpoint = '';
let cutNextWeights = false;
const requests: string[] = [];

function sha(file: string) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

before(async () => {
  const wfile = writeTinyModel(hubDir, tinyStageI, 11);
  fs.mkdirSync(path.join(hubDir, 'scheduler'), { recursive: true });
  fs.writeFileSync(path.join(hubDir, 'scheduler', 'scheduler_config.json'), JSON.stringify({ beta_schedule: 'squaredcos_cap_v2' }));
  server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url} ${req.headers.range ?? ''}`);
    if (req.headers.authorization !== 'Bearer hf_good') {
      res.writeHead(401).end('gated');
      return;
    }
    const api = new RegExp(`^/api/models/${REPO}/tree/main/?(.*)$`).exec(req.url!);
    if (api) {
      const folder = path.join(hubDir, api[1]);
      if (!fs.existsSync(folder)) {
        res.writeHead(404).end();
        return;
      }
      const list = fs.readdirSync(folder).map((f) => {
        const full = path.join(folder, f);
        const rel = path.posix.join(api[1], f);
        if (fs.statSync(full).isDirectory()) return { type: 'directory', path: rel, size: 0 };
        const size = fs.statSync(full).size;
        return f.endsWith('.safetensors')
          ? { type: 'file', path: rel, size: 134, lfs: { oid: sha(full), size } }
          : { type: 'file', path: rel, size };
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(list));
      return;
    }
    const m = new RegExp(`^/${REPO}/resolve/main/(.*)$`).exec(req.url!);
    const file = m && path.join(hubDir, decodeURIComponent(m[1]));
    if (!file || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    const data = fs.readFileSync(file);
    const r = /bytes=(\d+)-/.exec(req.headers.range ?? '');
    const start = r ? Number(r[1]) : 0;
    if (start >= data.length) {
      res.writeHead(416).end();
      return;
    }
    const body = data.subarray(start);
    res.writeHead(r ? 206 : 200, {
      'content-length': body.length,
      ...(r ? { 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` } : {}),
    });
    if (cutNextWeights && file.endsWith('.safetensors')) {
      cutNextWeights = false;
      res.write(body.subarray(0, Math.floor(body.length / 3)), () => res.destroy());
      return;
    }
    res.end(body);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  void wfile;
});

after(() => server?.close());

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [script, ...args],
      { env: { ...process.env, HF_ENDPOINT: endpoint, IF_MODELS_DIR: path.join(root, 'models'), ...env }, timeout: 60000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

test('download: gated without a token → one line naming the license page and HF_TOKEN', async () => {
  const r = await run(['if-i-l'], { HF_TOKEN: '' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /HTTP 401 .*accept the DeepFloyd license at https:\/\/huggingface\.co\/DeepFloyd\/IF-I-XL-v1\.0.*HF_TOKEN/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('download: interrupted transfer resumes with a Range request, verifies size and SHA-256, then checks', async () => {
  cutNextWeights = true;
  const first = await run(['if-i-l'], { HF_TOKEN: 'hf_good' });
  assert.equal(first.code, 1);
  assert.match(first.stderr, /run the command again to resume/);
  const part = path.join(root, 'models', 'IF-I-L-v1.0', 'unet', 'diffusion_pytorch_model.fp16.safetensors.part');
  const partial = fs.statSync(part).size;
  assert.ok(partial > 0);
  requests.length = 0;
  const second = await run(['if-i-l'], { HF_TOKEN: 'hf_good' });
  assert.equal(second.code, 0, second.stderr);
  assert.ok(
    requests.some((q) => q.includes('diffusion_pytorch_model.fp16.safetensors') && q.endsWith(`bytes=${partial}-`)),
    'resumed with Range',
  );
  assert.match(second.stdout, /resumed: unet\/diffusion_pytorch_model\.fp16\.safetensors/);
  assert.match(second.stdout, /already complete: unet\/config\.json/);
  assert.match(second.stdout, /downloaded: scheduler\/scheduler_config\.json|already complete: scheduler\/scheduler_config\.json/);
  assert.match(second.stdout, /OK — \d+ tensors/);
  const got = path.join(root, 'models', 'IF-I-L-v1.0', 'unet', 'diffusion_pytorch_model.fp16.safetensors');
  assert.equal(sha(got), sha(path.join(hubDir, 'unet', 'diffusion_pytorch_model.fp16.safetensors')));
  assert.ok(!fs.existsSync(part));
  // a third run downloads nothing
  requests.length = 0;
  const third = await run(['if-i-l'], { HF_TOKEN: 'hf_good' });
  assert.equal(third.code, 0);
  assert.ok(!requests.some((q) => q.includes('/resolve/')), 'complete files are not fetched again');
});

test('downloadFile: a corrupted part file fails the SHA-256 check and is removed', async () => {
  const dest = path.join(root, 'corrupt', 'w.safetensors');
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const src = path.join(hubDir, 'unet', 'diffusion_pytorch_model.fp16.safetensors');
  const size = fs.statSync(src).size;
  fs.writeFileSync(`${dest}.part`, Buffer.alloc(100, 7)); // wrong first 100 bytes
  await assert.rejects(
    downloadFile(`${endpoint}/${REPO}/resolve/main/unet/diffusion_pytorch_model.fp16.safetensors`, dest, {
      token: 'hf_good',
      expected: { size, sha256: sha(src) },
    }),
    /SHA-256 .* does not match the hub's .*the partial file was removed/,
  );
  assert.ok(!fs.existsSync(`${dest}.part`) && !fs.existsSync(dest));
});

test('check: good folder, truncated weights, mismatched config, missing files, unsupported config', async () => {
  const good = path.join(root, 'check-good');
  writeTinyModel(good, tinyStageI, 12);
  const ok = checkModel(good, { full: true });
  assert.ok(ok.ok, ok.line);
  assert.match(ok.line, /OK — \d+ tensors, 0\.\d+B parameters \(F16 on disk.*all values finite/);

  const trunc = path.join(root, 'check-trunc');
  const w = writeTinyModel(trunc, tinyStageI, 13);
  fs.truncateSync(w, fs.statSync(w).size - 1000);
  const r1 = await run(['check', trunc]);
  assert.equal(r1.code, 1);
  assert.match(
    r1.stderr,
    /^check failed: diffusion_pytorch_model\.fp16\.safetensors: truncated: tensor data needs \d+ bytes but the file has \d+/,
  );
  assert.equal(r1.stderr.trim().split('\n').length, 1, 'one line');

  const mism = path.join(root, 'check-mismatch');
  writeTinyModel(mism, tinyStageI, 14);
  fs.writeFileSync(
    path.join(mism, 'unet', 'config.json'),
    JSON.stringify({ ...tinyStageI, block_out_channels: [32, 96], cross_attention_dim: 64 }),
  );
  const r2 = await run(['check', mism]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /does not match unet\/config\.json: .*misshaped \(/);
  assert.equal(r2.stderr.trim().split('\n').length, 1);

  const r3 = await run(['check', path.join(root, 'nowhere')]);
  assert.equal(r3.code, 1);
  assert.match(r3.stderr, /nowhere: no such file or folder/);

  const noW = path.join(root, 'check-noweights');
  fs.mkdirSync(path.join(noW, 'unet'), { recursive: true });
  fs.writeFileSync(path.join(noW, 'unet', 'config.json'), JSON.stringify(tinyStageI));
  const r4 = await run(['check', noW]);
  assert.match(r4.stderr, /no diffusion_pytorch_model\.fp16\.safetensors/);

  fs.writeFileSync(path.join(noW, 'unet', 'config.json'), JSON.stringify({ ...tinyStageI, mid_block_type: 'UNetMidBlock2DCrossAttn' }));
  const r5 = await run(['check', noW]);
  assert.equal(r5.code, 1);
  assert.match(r5.stderr, /mid_block_type = "UNetMidBlock2DCrossAttn" is not supported/);
  for (const r of [r1, r2, r3, r4, r5]) assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});
