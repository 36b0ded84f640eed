/**
 * Loads tfjs-backend-wasm's threaded SIMD build in Node.
 *
 * The stock loader cannot do this in Node: it disables threads when it sees Node, it hands the
 * pthread worker to emscripten as a Blob URL (worker_threads cannot load those), and the C++ side
 * caps XNNPACK's pool at min(requested, 8, logical cores / 2). This loader writes the worker
 * script to a real file, points emscripten at it through `locateFile`, and reports twice the core
 * count to the C++ side so that the pool can reach one thread per core.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';

/** Folder of the published emscripten outputs (factory script, worker script, .wasm binaries). */
function wasmOutDir(): string {
  const pkg = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return path.join(path.dirname(pkg), 'wasm-out');
}

/** Writes the pthread worker script to a temporary file once per process and returns its path. */
function workerScriptPath(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a file of the wasm package, found at run time
  const { wasmWorkerContents } = require(path.join(wasmOutDir(), 'tfjs-backend-wasm-threaded-simd.worker.js')) as {
    wasmWorkerContents: string;
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-wasm-'));
  const file = path.join(dir, 'tfjs-backend-wasm-threaded-simd.worker.js');
  // The published string holds raw newlines inside JS string literals; escape them as the stock loader does.
  fs.writeFileSync(file, wasmWorkerContents.replace(/\n/g, '\\n'));
  return file;
}

/** The subset of the emscripten module that BackendWasm needs (see tfjs-backend-wasm's init()). */
interface EmscriptenModule {
  cwrap: (name: string, ret: string | null, args: string[]) => (...a: number[]) => unknown;
  PThread?: {
    unusedWorkers: Array<{ unref?: () => void }>;
    runningWorkers?: Array<{ unref?: () => void }>;
    pthreads?: Record<string, { unref?: () => void }>;
  };
  tfjs?: Record<string, unknown>;
}

let loadedThreads = 0;

/** Number of XNNPACK threads the last threaded load ended up with (0 when not loaded). */
export function wasmThreadsLoaded(): number {
  return loadedThreads;
}

/**
 * Builds the emscripten module of the threaded SIMD build.
 * @param threads XNNPACK pool size wanted (defaults to the number of cores).
 */
async function instantiateThreaded(threads: number): Promise<EmscriptenModule> {
  const dir = wasmOutDir();
  const factoryPath = path.join(dir, 'tfjs-backend-wasm-threaded-simd.js');
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the package's threaded build, by path
  const factory = require(factoryPath) as (cfg: Record<string, unknown>) => Promise<EmscriptenModule>;
  const worker = workerScriptPath();
  const wasmBinary = fs.readFileSync(path.join(dir, 'tfjs-backend-wasm-threaded-simd.wasm'));
  const config: Record<string, unknown> = {
    locateFile: (p: string, prefix: string) => (p.endsWith('.worker.js') ? worker : path.join(prefix || dir, p)),
    // Workers importScripts() this path to define the factory in their own global scope.
    mainScriptUrlOrBlob: factoryPath,
    instantiateWasm: (
      imports: { env: Record<string, unknown> },
      receive: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
    ) => {
      // The C++ side sizes its pool as min(requested, logical cores / 2); report enough cores.
      imports.env['emscripten_num_logical_cores'] = () => Math.max(2 * threads, 2);
      WebAssembly.instantiate(wasmBinary, imports as unknown as WebAssembly.Imports).then((r) => receive(r.instance, r.module));
      return {};
    },
  };
  const mod = await factory(config);
  mod.tfjs = {
    init: mod.cwrap('init', null, []),
    initWithThreadsCount: mod.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: mod.cwrap('get_threads_count', 'number', []),
    registerTensor: mod.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: mod.cwrap('dispose_data', null, ['number']),
    dispose: mod.cwrap('dispose', null, []),
  };
  return mod;
}

/** Lets the process exit while idle pthread workers exist (they would otherwise keep it alive). */
function unrefWorkers(mod: EmscriptenModule): void {
  const pt = mod.PThread;
  if (!pt) return;
  const all = [...pt.unusedWorkers, ...(pt.runningWorkers ?? []), ...Object.values(pt.pthreads ?? {})];
  for (const w of all) w.unref?.();
}

/**
 * Replaces the 'wasm' backend factory by one that loads the threaded SIMD build.
 * @param threads pool size; defaults to the number of logical cores.
 */
export function registerThreadedWasm(threads = os.cpus().length, priority = 2): void {
  if (tf.findBackendFactory('wasm')) tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      const mod = await instantiateThreaded(threads);
      tfwasm.setThreadsCount(threads);
      const backend = new tfwasm.BackendWasm(mod as never);
      loadedThreads = tfwasm.getThreadsCount();
      unrefWorkers(mod);
      return backend;
    },
    priority,
  );
}
