/** Small shared test helpers. */
import type { MnistSet } from '../lib/data/mnist';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { spawnSync } from 'node:child_process';

/** Seeded uniform [0,1) generator (mulberry32), for test data independent of TF.js. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * In a classic Jupyter Notebook page: opens `url`, waits until its kernel is connected, and runs
 * every cell (the browser tests of the drawing canvas and of kernel comms).
 */
export async function runAllCellsInPage(page: import('playwright-core').Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForFunction(
    () => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const J = (window as any).Jupyter;
      return J?.notebook?.kernel?.is_connected?.() && J.notebook.kernel_selector;
    },
    undefined,
    { timeout: 60_000 },
  );
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  await page.evaluate(() => (window as any).Jupyter.notebook.execute_all_cells());
}

/** n values uniform in [−1, 1) from rng. */
export function randArray(rng: () => number, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng() * 2 - 1;
  return a;
}

/** max |a − b| / max |b|: the error of a against the reference b, relative to b's scale. */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxRelErr: lengths ${a.length} and ${b.length} differ`);
  let m = 0;
  let scale = 1e-6;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m / scale;
}

/**
 * A raw deflate stream of `head` followed by `mib` MiB of zeros, about 1 KB per MiB, built
 * without allocating or compressing the zeros: one MiB of zeros deflated with a sync flush ends
 * on a byte boundary and refers to nothing before it, so copies of it can follow each other; an
 * empty final block ends the stream. (zlib level 9 alone manages ~1000:1 too, but takes ~2 s and
 * the whole input's memory per GiB.) For gzip bombs and zip entries that inflate to a lot.
 */
export function zerosDeflated(mib: number, head: Uint8Array = new Uint8Array()): Buffer {
  const flush = { level: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH };
  const oneMiB = zlib.deflateRawSync(Buffer.alloc(1 << 20), flush);
  const parts = head.length ? [zlib.deflateRawSync(head, flush)] : [];
  for (let i = 0; i < mib; i++) parts.push(oneMiB);
  parts.push(zlib.deflateRawSync(Buffer.alloc(0)));
  return Buffer.concat(parts);
}

/** A gzip file (with its CRC and size) of `head` followed by `mib` MiB of zeros, about 1 KB per MiB: see zerosDeflated. */
export function zerosGzipped(mib: number, head: Uint8Array = new Uint8Array()): Buffer {
  const zeros = Buffer.alloc(1 << 20);
  let crc = zlib.crc32(head);
  for (let i = 0; i < mib; i++) crc = zlib.crc32(zeros, crc);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE((head.length + mib * 2 ** 20) % 2 ** 32, 4);
  return Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]), zerosDeflated(mib, head), trailer]);
}

/**
 * Runs `body` (statements of a CommonJS script, with `m` = require(modulePath)) in a child node
 * and returns what it returns (`result`, as JSON), the message it throws (`error`), and the
 * child's peak resident memory in MB (`maxRssMB`, from process.resourceUsage().maxRSS, which is in
 * kilobytes), with `baseMB`, its resident memory before `body` ran (node + the module).
 */
export function peakRssInChild(
  modulePath: string,
  body: string,
  opts: { dir: string; timeoutMs?: number },
): { error?: string; result?: unknown; maxRssMB: number; baseMB: number } {
  const script = path.join(opts.dir, `probe-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.js`);
  fs.writeFileSync(
    script,
    `const m = require(${JSON.stringify(modulePath)});
const fs = require('node:fs');
const baseMB = process.memoryUsage().rss / 2 ** 20;
let out;
try {
  out = { result: (() => { ${body} })() };
} catch (e) {
  out = { error: String(e && e.message) };
}
process.stdout.write(JSON.stringify({ ...out, baseMB, maxRssMB: process.resourceUsage().maxRSS / 1024 }));
`,
  );
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000 });
  fs.rmSync(script, { force: true });
  if (r.status !== 0)
    throw new Error(`probe child failed (status ${r.status}, signal ${r.signal}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(r.stdout);
}

/** Synthetic digit-like data: N images of a bright bar whose position is the label. */
export function fakeData(n: number, seed = 1): MnistSet {
  const r = mulberry32(seed);
  const images = new Float32Array(n * 784);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 10;
    for (let y = 0; y < 28; y++)
      for (let x = 0; x < 28; x++) {
        images[i * 784 + y * 28 + x] = Math.abs(x - 4 - 2 * labels[i]) < 2 ? 0.9 : 0.05 * r();
      }
  }
  return { images, labels, count: n };
}

/**
 * Makes a page refuse every URL but file: and data: (the report must work offline) and records
 * the refused URLs and the page's script errors.
 */
export async function offlinePage(page: import('playwright-core').Page): Promise<{ errors: string[]; offline: string[] }> {
  const errors: string[] = [];
  const offline: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith('file:') || u.startsWith('data:')) return route.continue();
    offline.push(u);
    return route.abort();
  });
  return { errors, offline };
}

/** A Jupyter server started for a browser test (see startNotebookServer). */
export interface NotebookServer {
  /** http://127.0.0.1:PORT (no token, no password). */
  url: string;
  /** The server's log so far (stdout and stderr), for failure messages. */
  log(): string;
  /** Stops the server and the kernels it started (its process group). */
  stop(): void;
  /** True once the server process has exited. */
  exited(): boolean;
}

/**
 * The JupyterLab and Notebook 7 the browser tests run (pinned; README "Front-ends"), installed by
 * scripts/setup.sh into this virtual environment with scripts/pip-venv.sh.
 */
export const FRONTENDS_VENV = path.resolve(__dirname, '..', '..', '.venv', 'frontends');
export const FRONTENDS_REQUIREMENTS = ['jupyterlab==4.6.4', 'notebook==7.6.3'];

/**
 * The Jupyter front-ends a browser test can start: Debian's classic Notebook 6.4, and JupyterLab 4
 * and Notebook 7 from FRONTENDS_VENV.
 */
export type FrontEnd = 'classic' | 'lab' | 'notebook7';

/** Why `frontEnd` cannot run here (not installed, or the tslab kernel invisible to it), or false. */
export function frontEndMissing(frontEnd: FrontEnd): string | false {
  const jupyter = frontEnd === 'classic' ? '/usr/bin/jupyter' : path.join(FRONTENDS_VENV, 'bin', 'jupyter');
  if (!fs.existsSync(jupyter)) return `${jupyter} missing (run scripts/setup.sh)`;
  const specs = spawnSync(jupyter, ['kernelspec', 'list'], {
    encoding: 'utf8',
    env: { ...process.env, PYDEVD_DISABLE_FILE_VALIDATION: '1' },
  });
  if (!/^\s*tslab\s/m.test(specs.stdout ?? '')) return `the tslab kernel is not registered for ${jupyter} (run scripts/setup.sh)`;
  return false;
}

/**
 * Starts a Jupyter server on 127.0.0.1 (a free port, no token) serving `notebookDir`, with
 * node_modules/.bin on PATH (the tslab kernelspec runs `tslab` by name), and waits until it
 * answers: Debian's classic Jupyter Notebook (the default), or JupyterLab 4 / Notebook 7 from
 * FRONTENDS_VENV, with their own empty configuration, settings and workspaces (the user's are
 * neither read nor written; news and update checks off), and with `--expose-app-in-browser` when
 * `exposeApp` (window.jupyterapp: the way an output script gets a kernel comm there). `env` adds
 * variables for the kernels.
 */
export async function startNotebookServer(
  notebookDir: string,
  env: Record<string, string> = {},
  opts: { frontEnd?: FrontEnd; exposeApp?: boolean } = {},
): Promise<NotebookServer> {
  const { spawn } = await import('node:child_process');
  const net = await import('node:net');
  const root = path.resolve(__dirname, '..', '..');
  const frontEnd = opts.frontEnd ?? 'classic';
  const port = await new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as import('node:net').AddressInfo).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
  const runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'jupyter-runtime-'));
  const common = ['--no-browser', '--ip=127.0.0.1', `--port=${port}`, ...(process.getuid?.() === 0 ? ['--allow-root'] : [])];
  let command: string;
  let args: string[];
  const extraEnv: Record<string, string> = {};
  if (frontEnd === 'classic') {
    command = fs.existsSync('/usr/bin/jupyter') ? '/usr/bin/jupyter' : 'jupyter';
    args = ['notebook', ...common, '--NotebookApp.token=', '--NotebookApp.password=', `--notebook-dir=${notebookDir}`];
  } else {
    command = path.join(FRONTENDS_VENV, 'bin', 'jupyter');
    args = [
      frontEnd === 'lab' ? 'lab' : 'notebook',
      ...common,
      '--ServerApp.token=',
      '--ServerApp.password=',
      `--ServerApp.root_dir=${notebookDir}`,
      ...(opts.exposeApp ? ['--expose-app-in-browser'] : []),
    ];
    // Configuration, settings and workspaces of this server only (under the runtime folder).
    const settings = path.join(runtime, 'settings');
    fs.mkdirSync(path.join(settings, '@jupyterlab', 'apputils-extension'), { recursive: true });
    fs.writeFileSync(
      path.join(settings, '@jupyterlab', 'apputils-extension', 'notification.jupyterlab-settings'),
      JSON.stringify({ fetchNews: 'false', checkForUpdates: false }),
    );
    Object.assign(extraEnv, {
      JUPYTER_CONFIG_DIR: path.join(runtime, 'config'),
      JUPYTERLAB_SETTINGS_DIR: settings,
      JUPYTERLAB_WORKSPACES_DIR: path.join(runtime, 'workspaces'),
    });
  }
  const server = spawn(command, args, {
    env: {
      ...process.env,
      PATH: `${path.join(root, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH ?? ''}`,
      JUPYTER_RUNTIME_DIR: runtime,
      PYDEVD_DISABLE_FILE_VALIDATION: '1',
      ...extraEnv,
      ...env,
    },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  server.stdout!.on('data', (d) => (log += d));
  server.stderr!.on('data', (d) => (log += d));
  let exited = false;
  server.on('exit', () => (exited = true));
  const handle: NotebookServer = {
    url: `http://127.0.0.1:${port}`,
    log: () => log,
    exited: () => exited,
    stop: () => {
      if (server.pid && !exited) {
        try {
          process.kill(-server.pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
      fs.rmSync(runtime, { recursive: true, force: true });
    },
  };
  const end = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`the Jupyter server exited:\n${log.slice(-2000)}`);
    try {
      if ((await fetch(`${handle.url}/api`)).ok) return handle;
    } catch {
      // not up yet
    }
    if (Date.now() > end) {
      handle.stop();
      throw new Error(`the Jupyter server did not answer within 60 s:\n${log.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}
