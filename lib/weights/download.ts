/**
 * Downloading IF models from Hugging Face: resumable (HTTP Range on a `.part` file), with
 * progress, size verification and (when the hub lists it) SHA-256 verification, then an atomic
 * rename. The endpoint is https://huggingface.co, or HF_ENDPOINT (the hub client's own variable;
 * the tests point it at a local server).
 *
 * DeepFloyd's repositories are gated: accept the license once on the IF-I-XL-v1.0 model card
 * (it covers every IF model) and pass a read token in HF_TOKEN.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UNET_WEIGHT_FILES } from './diffusersLayout';
import { setting } from '../config';

/** Known models: command name → Hugging Face repository. */
export const IF_REPOS: Record<string, string> = {
  'if-i-l': 'DeepFloyd/IF-I-L-v1.0',
  'if-ii-l': 'DeepFloyd/IF-II-L-v1.0',
  'if-i-m': 'DeepFloyd/IF-I-M-v1.0',
  'if-ii-m': 'DeepFloyd/IF-II-M-v1.0',
  'if-i-xl': 'DeepFloyd/IF-I-XL-v1.0',
};

export const LICENSE_URL = 'https://huggingface.co/DeepFloyd/IF-I-XL-v1.0';

export function hfEndpoint(): string {
  return (setting('HF_ENDPOINT') ?? 'https://huggingface.co').replace(/\/+$/, '');
}

/** A file of a repository as listed by the hub. */
export interface HubFile {
  path: string;
  size: number;
  sha256?: string;
}

function authHeaders(token?: string): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function httpError(status: number, what: string, repo: string, token?: string): Error {
  if (status === 401 || status === 403) {
    return new Error(
      `HTTP ${status} for ${what}: ${repo} is gated — accept the DeepFloyd license at ${LICENSE_URL} (logged in), create a read token at https://huggingface.co/settings/tokens and run with HF_TOKEN=hf_… ${token ? '(the token given was refused)' : '(no HF_TOKEN is set)'}`,
    );
  }
  if (status === 404) return new Error(`HTTP 404 for ${what}: not found in ${repo} (check the model name)`);
  return new Error(`HTTP ${status} for ${what}`);
}

/** A path from the hub or a shard index that would land outside the target folder (never skipped). */
export class UnsafePathError extends Error {
  override name = 'UnsafePathError';
}

/**
 * Why a relative path from the hub (or a shard index) is unsafe to join onto a local folder, or
 * undefined when it is a plain relative path: no absolute path, drive letter, backslash, NUL,
 * empty, `.` or `..` segment.
 */
export function unsafeRelativePath(p: unknown): string | undefined {
  if (typeof p !== 'string' || p === '') return 'not a file name';
  if (p.includes('\0')) return 'it contains a NUL byte';
  if (p.includes('\\')) return 'it contains a backslash';
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return 'it is an absolute path';
  const segs = p.split('/');
  if (segs.includes('..')) return 'it climbs out with ..';
  if (segs.some((x) => x === '' || x === '.')) return 'it has an empty or . segment';
  return undefined;
}

/**
 * `rel` (a checked relative path) joined onto `dir`, after making sure it stays inside `dir` on
 * disk too: no existing part of it (the file included) may be a symlink that leads out of `dir`,
 * and its `.part` file may not be a symlink. Throws one line naming the path otherwise.
 */
export function pathInside(dir: string, rel: string, what: string): string {
  const why = unsafeRelativePath(rel);
  if (why) throw new UnsafePathError(`${what} names "${rel}", which is not a path inside ${dir} (${why}); refusing it`);
  const root = path.resolve(dir);
  const dest = path.resolve(root, ...rel.split('/'));
  if (!dest.startsWith(root + path.sep)) throw new UnsafePathError(`${what} names "${rel}", which resolves outside ${dir}; refusing it`);
  // The deepest part that exists must be inside the folder once symlinks are followed.
  const exists = (p: string) => {
    try {
      fs.lstatSync(p);
      return true;
    } catch {
      return false;
    }
  };
  let at = dest;
  while (!exists(at) && at !== root) at = path.dirname(at);
  if (exists(root)) {
    const realRoot = fs.realpathSync(root);
    let realAt: string;
    try {
      realAt = fs.realpathSync(at);
    } catch {
      throw new UnsafePathError(`${what} names "${rel}", but ${at} is a broken symlink; remove it`);
    }
    if (realAt !== realRoot && !realAt.startsWith(realRoot + path.sep)) {
      throw new UnsafePathError(`${what} names "${rel}", which a symlink leads outside ${dir} (to ${realAt}); refusing it`);
    }
  }
  // The partial file is appended to: never through a symlink.
  let partIsLink = false;
  try {
    partIsLink = fs.lstatSync(`${dest}.part`).isSymbolicLink();
  } catch {
    // absent: fine
  }
  if (partIsLink) throw new UnsafePathError(`${what} names "${rel}", but ${dest}.part is a symlink; remove it (downloads never write through symlinks)`);
  return dest;
}

/**
 * Lists a folder of a repository via the hub API (sizes and LFS SHA-256). Every listed path must
 * be a plain relative path under `folder`: the whole listing is refused, naming the first bad one.
 */
export async function listRepoFolder(repo: string, folder: string, token?: string): Promise<HubFile[]> {
  const url = `${hfEndpoint()}/api/models/${repo}/tree/main${folder ? `/${folder}` : ''}`;
  let res: Response;
  try {
    res = await fetch(url, { headers: authHeaders(token) });
  } catch (e) {
    throw new Error(`cannot reach ${hfEndpoint()} (${(e as Error).cause ?? (e as Error).message}): check the network or HF_ENDPOINT`);
  }
  if (!res.ok) throw httpError(res.status, `the file list of ${repo}/${folder}`, repo, token);
  const items = (await res.json()) as { type: string; path: string; size: number; lfs?: { oid?: string; sha256?: string; size?: number } }[];
  if (!Array.isArray(items)) throw new Error(`the file list of ${repo}/${folder} from ${hfEndpoint()} is not a list; check HF_ENDPOINT`);
  for (const i of items) {
    const p = (i as { path?: unknown })?.path;
    const why = unsafeRelativePath(p) ?? (folder && !(p as string).startsWith(`${folder}/`) ? `it is not under ${folder}/` : undefined);
    if (why) throw new UnsafePathError(`the hub's file list of ${repo}/${folder} names ${JSON.stringify(p)} (${why}); refusing the whole list`);
    if (i.type === 'file' && !(Number.isSafeInteger(i.lfs?.size ?? i.size) && (i.lfs?.size ?? i.size) >= 0)) {
      throw new UnsafePathError(`the hub's file list of ${repo}/${folder} gives ${JSON.stringify(p)} no valid size; refusing the whole list`);
    }
  }
  return items.filter((i) => i.type === 'file').map((i) => ({ path: i.path, size: i.lfs?.size ?? i.size, sha256: i.lfs?.oid ?? i.lfs?.sha256 }));
}

/** Progress of one file: bytes done (including a resumed prefix) and total. */
export type ProgressFn = (file: string, done: number, total: number) => void;

/**
 * Downloads `url` to `dest`, resuming from `dest.part` with a Range request. Verifies the final
 * size against `expected.size` (or the server's Content-Length / Content-Range) and, when given,
 * the SHA-256; renames into place only when both match. A complete `dest` of the right size is
 * left alone.
 * @returns 'skipped' | 'downloaded' | 'resumed'
 */
export async function downloadFile(
  url: string,
  dest: string,
  o: { token?: string; expected?: { size?: number; sha256?: string }; onProgress?: ProgressFn; repo?: string } = {},
): Promise<'skipped' | 'downloaded' | 'resumed'> {
  const name = path.basename(dest);
  if (fs.existsSync(dest) && o.expected?.size !== undefined && fs.statSync(dest).size === o.expected.size) return 'skipped';
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  let have = fs.existsSync(part) ? fs.statSync(part).size : 0;
  if (o.expected?.size !== undefined && have > o.expected.size) {
    fs.rmSync(part);
    have = 0;
  }
  let total = o.expected?.size;
  let resumed = false;
  if (!(total !== undefined && have === total)) {
    const headers: Record<string, string> = { ...authHeaders(o.token) };
    if (have > 0) headers.Range = `bytes=${have}-`;
    let res: Response;
    try {
      res = await fetch(url, { headers, redirect: 'follow' });
    } catch (e) {
      throw new Error(`cannot download ${name} (${(e as Error).cause ?? (e as Error).message}); run the command again to resume`);
    }
    if (res.status === 416 && have > 0) {
      // Range not satisfiable: the part file already holds everything the server has.
      total = total ?? have;
    } else {
      if (!res.ok) throw httpError(res.status, name, o.repo ?? url, o.token);
      if (res.status === 206) {
        resumed = true;
        const cr = /\/(\d+)\s*$/.exec(res.headers.get('content-range') ?? '');
        if (cr) total = total ?? Number(cr[1]);
      } else {
        have = 0; // the server ignored the Range: start over
        const len = res.headers.get('content-length');
        if (len !== null) total = total ?? Number(len);
      }
      const out = fs.openSync(part, have > 0 ? 'a' : 'w');
      let done = have;
      try {
        const reader = res.body!.getReader();
        for (;;) {
          const { done: end, value } = await reader.read();
          if (end) break;
          fs.writeSync(out, value);
          done += value.length;
          o.onProgress?.(name, done, total ?? done);
        }
      } catch (e) {
        throw new Error(`download of ${name} was interrupted at ${done} bytes (${(e as Error).message}); run the command again to resume`);
      } finally {
        fs.closeSync(out);
      }
    }
  }
  const size = fs.statSync(part).size;
  if (total !== undefined && size !== total) {
    throw new Error(`${name}: got ${size} of ${total} bytes; run the command again to resume`);
  }
  if (o.expected?.sha256) {
    const sha = await sha256File(part);
    if (sha !== o.expected.sha256) {
      fs.rmSync(part);
      throw new Error(`${name}: SHA-256 ${sha} does not match the hub's ${o.expected.sha256}; the partial file was removed, run the command again`);
    }
  }
  fs.renameSync(part, dest);
  return resumed ? 'resumed' : 'downloaded';
}

export async function sha256File(file: string): Promise<string> {
  const h = crypto.createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    fs.createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve())
      .on('error', reject);
  });
  return h.digest('hex');
}

/**
 * Downloads what the TF.js port needs of an IF repository into `dir`: unet/config.json, the UNet
 * weights (fp16 variant preferred, SPEC §3.6; shards when the repo is sharded),
 * scheduler/scheduler_config.json and model_index.json when present.
 */
export async function downloadIFModel(repo: string, dir: string, o: { token?: string; onProgress?: ProgressFn; log?: (s: string) => void } = {}): Promise<string[]> {
  const log = o.log ?? (() => {});
  const unet = await listRepoFolder(repo, 'unet', o.token);
  for (const f of unet) pathInside(dir, f.path, `the hub's file list of ${repo}/unet`);
  const byName = new Map(unet.map((f) => [f.path.slice('unet/'.length), f]));
  const config = byName.get('config.json');
  if (!config) throw new Error(`${repo} has no unet/config.json: is it a diffusers IF repository?`);
  const weightName = UNET_WEIGHT_FILES.find((f) => byName.has(f));
  if (!weightName) throw new Error(`${repo}/unet has none of ${UNET_WEIGHT_FILES.join(', ')}`);
  const files: HubFile[] = [config, byName.get(weightName)!];
  if (weightName.endsWith('.index.json')) {
    // Fetch the index first to learn the shard names.
    await fetchOne(repo, byName.get(weightName)!, dir, o, log);
    const idxFile = path.join(dir, 'unet', weightName);
    let idx: { weight_map?: Record<string, unknown> };
    try {
      idx = JSON.parse(fs.readFileSync(idxFile, 'utf8'));
    } catch (e) {
      throw new Error(`${repo}: the shard index ${weightName} is not readable JSON (${(e as Error).message}); delete ${idxFile} and run again`);
    }
    if (!idx.weight_map || typeof idx.weight_map !== 'object') throw new Error(`${repo}: the shard index ${weightName} has no "weight_map"`);
    const shards = new Set(Object.values(idx.weight_map));
    // Every shard name is checked before any is downloaded.
    for (const shard of shards) pathInside(path.join(dir, 'unet'), shard as string, `the shard index ${weightName} of ${repo}`);
    for (const shard of shards as Set<string>) {
      const f = byName.get(shard);
      if (!f) throw new Error(`${repo}: the shard index names ${shard}, which the hub does not list`);
      files.push(f);
    }
  }
  for (const folder of ['scheduler', '']) {
    try {
      const list = folder ? await listRepoFolder(repo, folder, o.token) : (await listRepoFolder(repo, '', o.token)).filter((f) => f.path === 'model_index.json');
      files.push(...list.filter((f) => f.path.endsWith('.json')));
    } catch (e) {
      // Optional files; but a listing with a bad name is refused, not skipped.
      if (e instanceof UnsafePathError) throw e;
    }
  }
  for (const f of files) pathInside(dir, f.path, `the hub's file list of ${repo}`);
  const done: string[] = [];
  for (const f of files) done.push(await fetchOne(repo, f, dir, o, log));
  return done;
}

async function fetchOne(repo: string, f: HubFile, dir: string, o: { token?: string; onProgress?: ProgressFn }, log: (s: string) => void): Promise<string> {
  const dest = pathInside(dir, f.path, `the hub's file list of ${repo}`);
  const url = `${hfEndpoint()}/${repo}/resolve/main/${f.path.split('/').map(encodeURIComponent).join('/')}`;
  const r = await downloadFile(url, dest, { token: o.token, expected: { size: f.size, sha256: f.sha256 }, onProgress: o.onProgress, repo });
  log(`${r === 'skipped' ? 'already complete' : r}: ${f.path} (${(f.size / 2 ** 20).toFixed(1)} MiB)`);
  return dest;
}
