/**
 * Untrusted names: every path in a hub folder listing (a fake hub on 127.0.0.1) and every shard in
 * a `*.index.json` must stay inside the target folder — `..`, absolute paths, backslashes, names
 * outside the listed folder and symlinks leading out are refused, the whole listing at the first
 * bad name, with one line naming it, before anything is downloaded; and a shard index read from
 * disk cannot point the reader at a file outside its folder.
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { openSafetensors, writeSafetensors } from '../../lib/weights/safetensors';

const REPO = 'DeepFloyd/IF-I-L-v1.0';
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'if-paths-'));
const script = path.join(__dirname, '..', '..', 'scripts', 'weights.js');
/** What the fake hub lists per folder, and serves per path. */
let listing: Record<string, { type: string; path: string; size: number }[]> = {};
let served: Record<string, string> = {};
const requests: string[] = [];
let server: http.Server;
let endpoint = '';

before(async () => {
  server = http.createServer((req, res) => {
    requests.push(req.url!);
    const api = new RegExp(`^/api/models/${REPO}/tree/main/?(.*)$`).exec(req.url!);
    if (api) {
      const l = listing[decodeURIComponent(api[1])];
      if (!l) res.writeHead(404).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(l));
      return;
    }
    const m = new RegExp(`^/${REPO}/resolve/main/(.*)$`).exec(req.url!);
    const body = m && served[decodeURIComponent(m[1])];
    if (body === undefined || body === null) res.writeHead(404).end();
    else res.writeHead(200, { 'content-length': Buffer.byteLength(body) }).end(body);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

after(() => server?.close());

function download(models: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [script, 'if-i-l'],
      { env: { ...process.env, HF_ENDPOINT: endpoint, HF_TOKEN: 'hf_x', IF_MODELS_DIR: models }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A string as a literal part of a RegExp. */
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

const file = (p: string, body = '{}') => {
  served[p] = body;
  return { type: 'file', path: p, size: Buffer.byteLength(body) };
};

/** Every file under dir (relative), following no symlinks. */
function tree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

test('a listing naming .., an absolute path, a backslash or a file outside its folder is refused whole, before any download', async () => {
  const bad = [
    'unet/../../../evil.json',
    '/etc/evil.json',
    'unet/sub/../../../evil.json',
    'unet\\..\\evil.json',
    'scheduler/config.json',
    'unet//x.json',
    '',
  ];
  for (const name of bad) {
    served = {};
    listing = {
      unet: [file('unet/config.json'), file('unet/diffusion_pytorch_model.fp16.safetensors', 'xx'), { type: 'file', path: name, size: 2 }],
    };
    requests.length = 0;
    const models = path.join(root, `m-${bad.indexOf(name)}`);
    const r = await download(models);
    assert.equal(r.code, 1, `${JSON.stringify(name)}: ${r.stdout}${r.stderr}`);
    const lines = r.stderr
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('note:'));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0],
      new RegExp(`^error: the hub's file list of ${esc(REPO)}/unet names ${esc(JSON.stringify(name))} \\(.+\\); refusing the whole list$`),
    );
    assert.ok(!requests.some((q) => q.includes('/resolve/')), `${JSON.stringify(name)}: nothing downloaded`);
    assert.deepEqual(tree(models), [], 'nothing written');
  }
  assert.ok(!fs.existsSync(path.join(root, 'evil.json')) && !fs.existsSync('/etc/evil.json'));
});

test('a symlink in the target folder that leads outside it is refused', async () => {
  served = {};
  listing = { unet: [file('unet/config.json'), file('unet/diffusion_pytorch_model.fp16.safetensors', 'xx')] };
  const models = path.join(root, 'm-link');
  const outside = path.join(root, 'outside');
  fs.mkdirSync(path.join(models, 'IF-I-L-v1.0'), { recursive: true });
  fs.mkdirSync(outside);
  fs.symlinkSync(outside, path.join(models, 'IF-I-L-v1.0', 'unet'));
  requests.length = 0;
  const r = await download(models);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(
    r.stderr,
    /error: the hub's file list of DeepFloyd\/IF-I-L-v1\.0\/unet names "unet\/config\.json", which a symlink leads outside .*IF-I-L-v1\.0 \(to .*outside.*\); refusing it/,
  );
  assert.deepEqual(fs.readdirSync(outside), [], 'nothing written through the symlink');
  assert.ok(!requests.some((q) => q.includes('/resolve/')));
});

test('a downloaded shard index naming a shard outside its folder is refused before any shard is fetched', async () => {
  for (const shard of ['../../evil.safetensors', '/tmp/evil.safetensors', 'a/../../evil.safetensors']) {
    served = {};
    const index = JSON.stringify({ weight_map: { 'a.weight': 'diffusion_pytorch_model-00001.safetensors', 'b.weight': shard } });
    listing = {
      unet: [
        file('unet/config.json'),
        file('unet/diffusion_pytorch_model.fp16.safetensors.index.json', index),
        file('unet/diffusion_pytorch_model-00001.safetensors', 'xx'),
      ],
    };
    requests.length = 0;
    const r = await download(path.join(root, `m-shard-${shard.length}`));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `error: the shard index diffusion_pytorch_model\\.fp16\\.safetensors\\.index\\.json of ${esc(REPO)} names "${esc(shard)}", which is not a path inside .*; refusing it`,
      ),
    );
    assert.ok(!requests.some((q) => q.includes('00001.safetensors')), 'no shard fetched');
  }
});

test('reading a shard index that points outside its folder (.., absolute, symlink) is refused', () => {
  const dir = path.join(root, 'read', 'unet');
  fs.mkdirSync(dir, { recursive: true });
  const outside = path.join(root, 'read', 'secret.safetensors');
  writeSafetensors(outside, [{ name: 'w', shape: [2], data: new Float32Array([1, 2]) }]);
  fs.symlinkSync(outside, path.join(dir, 'link.safetensors'));
  const idx = path.join(dir, 'm.safetensors.index.json');
  for (const [shard, re] of [
    ['../secret.safetensors', /which is not a path inside .* \(it climbs out with \.\.\)/],
    [outside, /which is not a path inside .* \(it is an absolute path\)/],
    ['link.safetensors', /which a symlink leads outside .* \(to .*secret\.safetensors\)/],
  ] as const) {
    fs.writeFileSync(idx, JSON.stringify({ weight_map: { w: shard } }));
    assert.throws(
      () => openSafetensors(idx),
      (e: Error) => {
        assert.match(e.message, new RegExp(`^m\\.safetensors\\.index\\.json: the shard index names "${esc(shard)}", `));
        assert.match(e.message, re);
        assert.match(e.message, /refusing to read it/);
        return true;
      },
    );
  }
  // A shard beside the index still reads.
  writeSafetensors(path.join(dir, 'ok.safetensors'), [{ name: 'w', shape: [2], data: new Float32Array([3, 4]) }]);
  fs.writeFileSync(idx, JSON.stringify({ weight_map: { w: 'ok.safetensors' } }));
  const src = openSafetensors(idx);
  assert.deepEqual([...src.read('w').data], [3, 4]);
  src.close();
});
