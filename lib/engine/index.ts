/**
 * The engine: one call picks and initializes the best available TensorFlow.js backend.
 *
 * Order of preference (see README "Choosing an engine"):
 *   1. tfjs-node-gpu / tfjs-node, when they resolve (optional; never installed by default)
 *   2. WebGPU through Dawn's Node bindings (npm `webgpu`), on a hardware adapter only
 *   3. wasm, threaded SIMD build, one thread per core, plus the training kernels it lacks
 *      (./kernels; their speed switches are the levers of ./levers)
 *   4. the pure-JS cpu backend, as a last resort
 * `initEngine({ engine })` or the environment variable DIFFUSION_ENGINE forces one.
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's own gradient and chained-op registrations are ES modules that a CommonJS build
// cannot load; the union package's Node bundle registers both (and re-uses this tfjs-core).
import '@tensorflow/tfjs';
import type {} from '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerThreadedWasm, wasmThreadsLoaded } from './wasmThreaded';
import { registerWasmTrainingKernels } from './kernels';
import { nativeStatus, nativeWanted, registerNativeKernels, setNativePrecision, type Precision } from './native';
import { setLevers, type Levers } from './levers';
import { describeAdapter, type AdapterReport } from './webgpu';
import { setting } from '../config';

export { DEFAULT_LEVERS, LEVER_NAMES, levers, withLevers, type Levers } from './levers';
export type { Precision } from './native';

export type EngineName = 'node' | 'node-gpu' | 'webgpu' | 'wasm' | 'cpu';
export type EngineChoice = EngineName | 'auto';

/** What initEngine chose, for the first line of every notebook and command. */
export interface EngineInfo {
  /** Engine name as chosen ('wasm', 'webgpu', ...). */
  name: EngineName;
  /** TF.js backend name actually active (tf.getBackend()). */
  backend: string;
  /** Worker threads used by the backend's kernels (1 for single-threaded engines). */
  threads: number;
  /** GPU adapter description, for WebGPU (vendor, architecture, device, description, limits). */
  adapter?: AdapterReport;
  /** Why a more preferred engine was skipped, one short line each. */
  skipped: string[];
  /** The wasm kernels' own threads when fewer than `threads` (with the addon: 1, see tryWasm). */
  wasmThreads?: number;
  /** The DIFFUSION_THREADS value the wasm thread count came from, when it was set. */
  threadsSetting?: string;
  /** 'oneDNN 2.6.3' when the native addon runs the convolutions (wasm and cpu engines). */
  native?: string;
  /** Why the native addon does not run them, one line (wasm and cpu engines). */
  nativeOff?: string;
  /** The convolutions' precision: 'bf16' only with the addon on a CPU with bf16 (setNativePrecision). */
  precision: Precision;
  /** Why bf16 was asked for and fp32 runs, one line. */
  precisionOff?: string;
}

export interface EngineOptions {
  /** Force an engine; defaults to DIFFUSION_ENGINE (lib/config.ts), then 'auto'. */
  engine?: EngineChoice;
  /** wasm thread count; defaults to DIFFUSION_THREADS, then the number of logical cores. */
  threads?: number;
  /** Skip the one-line report (default false: the report is printed). */
  quiet?: boolean;
  /**
   * Performance levers to set process-wide (the rest stay as they are; all on by default). To
   * change them for one piece of code only, use withLevers from lib/engine/levers.
   */
  levers?: Partial<Levers>;
  /** Convolution precision on the CPU engines; defaults to DIFFUSION_PRECISION, then 'fp32'. */
  precision?: Precision;
}

const ENGINES: EngineChoice[] = ['auto', 'node', 'node-gpu', 'webgpu', 'wasm', 'cpu'];
let current: EngineInfo | undefined;

/** The engine chosen by the last initEngine call, if any. */
export function engineInfo(): EngineInfo | undefined {
  return current;
}

/**
 * One line, e.g. "engine: wasm + oneDNN 2.6.3 (backend wasm, 2 threads)" or
 * "engine: wasm (backend wasm, 2 threads)".
 */
export function describeEngine(info: EngineInfo): string {
  let s = `engine: ${info.name}${info.native ? ` + ${info.native}` : ''} (backend ${info.backend}, ${info.threads} thread${info.threads === 1 ? '' : 's'}`;
  if (info.threadsSetting !== undefined) s += ` from DIFFUSION_THREADS=${info.threadsSetting}`;
  if (info.wasmThreads !== undefined) s += `, wasm kernels on ${info.wasmThreads}`;
  if (info.precision === 'bf16') s += ', bf16 convolutions';
  if (info.adapter) {
    const a = info.adapter;
    s += `, adapter ${a.vendor || '?'} ${a.architecture || ''} ${a.device || a.description || ''}`.trimEnd();
    if (a.isSoftware) s += ' [software]';
  }
  s += ')';
  return s;
}

function parseChoice(raw: string | undefined): EngineChoice {
  const v = (raw ?? 'auto').trim().toLowerCase() as EngineChoice;
  if (!ENGINES.includes(v)) {
    throw new Error(`Unknown engine "${raw}": use one of ${ENGINES.join(', ')} (option engine or DIFFUSION_ENGINE).`);
  }
  return v;
}

async function tryNode(gpu: boolean): Promise<EngineInfo> {
  const pkg = gpu ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- an optional package, resolved at run time
  require(pkg); // registers the 'tensorflow' backend; throws when the package or libtensorflow is missing
  if (!(await tf.setBackend('tensorflow'))) throw new Error(`${pkg} loaded but its backend failed to start`);
  return { name: gpu ? 'node-gpu' : 'node', backend: 'tensorflow', threads: os.cpus().length, skipped: [], precision: 'fp32' };
}

async function tryWebgpu(allowSoftware: boolean): Promise<EngineInfo> {
  const { initWebgpu } = await import('./webgpu.js');
  const adapter = await initWebgpu(allowSoftware);
  return { name: 'webgpu', backend: tf.getBackend(), threads: 1, adapter, skipped: [], precision: 'fp32' };
}

/** The oneDNN convolutions on a CPU backend, over the kernels registered now (./native). */
function withNative(info: EngineInfo, backend: 'wasm' | 'cpu', threads: number): EngineInfo {
  const r = registerNativeKernels(backend, threads);
  if (r.version) info.native = `oneDNN ${r.version}`;
  else info.nativeOff = r.why;
  return info;
}

async function tryWasm(threads: number): Promise<EngineInfo> {
  // With the addon, the heavy kernels run on oneDNN's OpenMP threads, which spin for a while after
  // each call; wasm kernels with worker threads of their own then wait for a free core (on 2 cores a
  // 0.05 ms multiply took 0.8 ms right after a convolution). So the wasm kernels, light once the
  // addon takes the heavy ones, run on the calling thread alone, and only oneDNN has `threads`.
  const withAddon = nativeStatus().addon !== undefined;
  registerThreadedWasm(withAddon ? 1 : threads);
  registerWasmTrainingKernels();
  if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend failed to start');
  const loaded = wasmThreadsLoaded();
  const info = withNative(
    { name: 'wasm', backend: 'wasm', threads: loaded, skipped: [], precision: 'fp32' },
    'wasm',
    withAddon ? threads : loaded,
  );
  if (info.native && loaded !== threads) {
    info.threads = threads;
    info.wasmThreads = loaded;
  }
  return info;
}

async function tryCpu(threads: number): Promise<EngineInfo> {
  await tf.setBackend('cpu');
  const info = withNative({ name: 'cpu', backend: 'cpu', threads: 1, skipped: [], precision: 'fp32' }, 'cpu', threads);
  if (info.native) info.threads = threads; // the convolutions run on oneDNN's threads
  return info;
}

/** Largest wasm thread count accepted (XNNPACK's pool is far smaller in practice). */
const MAX_THREADS = 1024;

/**
 * The wasm thread count: the option, else DIFFUSION_THREADS, else one per core. A value that is
 * not a whole number 1..1024 is an error (not NaN threads, nor a silent fall back to cpu).
 */
function threadCount(option: number | undefined): { threads: number; fromSetting?: string } {
  const cores = os.cpus().length;
  if (option !== undefined) {
    if (!(Number.isInteger(option) && option >= 1 && option <= MAX_THREADS))
      throw new Error(`initEngine: threads must be a whole number 1..${MAX_THREADS}, got ${option}`);
    return { threads: option };
  }
  const raw = setting('DIFFUSION_THREADS');
  if (raw === undefined) return { threads: cores };
  const n = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || n < 1 || n > MAX_THREADS) {
    throw new Error(
      `DIFFUSION_THREADS="${raw}" is not a thread count: set a whole number 1..${MAX_THREADS} (e.g. DIFFUSION_THREADS=${cores}), or unset it for one thread per core (${cores})`,
    );
  }
  return { threads: n, fromSetting: raw.trim() };
}

/** The precision asked for: the option, else DIFFUSION_PRECISION, else fp32; anything else is an error. */
function precisionChoice(option: Precision | undefined): Precision {
  const raw = option ?? setting('DIFFUSION_PRECISION')?.trim() ?? 'fp32';
  if (raw !== 'fp32' && raw !== 'bf16')
    throw new Error(`precision "${raw}" is not fp32 or bf16 (option precision, --precision or DIFFUSION_PRECISION)`);
  return raw;
}

/** Sets the convolutions' precision on the chosen engine and records it in info (bf16: CPU engines with the addon only). */
function applyPrecision(info: EngineInfo, want: Precision): void {
  const r = info.native
    ? setNativePrecision(want)
    : {
        precision: 'fp32' as const,
        why:
          want === 'bf16'
            ? `bf16 is an option of the oneDNN addon on the wasm and cpu engines, not of ${info.name}: running fp32`
            : undefined,
      };
  info.precision = r.precision;
  if (r.why) info.precisionOff = r.why;
  else delete info.precisionOff;
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0];
}

/**
 * Initializes the best available backend (or the forced one) and reports it.
 * Calling it again returns the engine already chosen unless a different one is forced (and
 * reports it again, unless quiet).
 */
export async function initEngine(opts: EngineOptions = {}): Promise<EngineInfo> {
  const choice = parseChoice(opts.engine ?? setting('DIFFUSION_ENGINE'));
  const { threads, fromSetting } = threadCount(opts.threads);
  nativeWanted(); // a bad DIFFUSION_NATIVE is an error before any engine starts, not a silent fallback
  const precision = precisionChoice(opts.precision);
  if (opts.levers) setLevers(opts.levers);
  if (current && (choice === 'auto' || choice === current.name)) {
    applyPrecision(current, precision);
    // Reported again, so a notebook run a second time without a restart still says what it runs on.
    if (!opts.quiet) {
      console.log(`${describeEngine(current)} (already started in this process)`);
      if (current.precisionOff) console.log(`bf16 off: ${current.precisionOff}`);
    }
    return current;
  }

  let info: EngineInfo | undefined;
  const skipped: string[] = [];
  const attempts: Array<[EngineName, () => Promise<EngineInfo>]> =
    choice === 'auto'
      ? [
          ['node-gpu', () => tryNode(true)],
          ['node', () => tryNode(false)],
          ['webgpu', () => tryWebgpu(false)],
          ['wasm', () => tryWasm(threads)],
          ['cpu', () => tryCpu(threads)],
        ]
      : [
          [
            choice,
            () =>
              choice === 'node' || choice === 'node-gpu'
                ? tryNode(choice === 'node-gpu')
                : choice === 'webgpu'
                  ? tryWebgpu(true)
                  : choice === 'wasm'
                    ? tryWasm(threads)
                    : tryCpu(threads),
          ],
        ];
  for (const [name, attempt] of attempts) {
    try {
      info = await attempt();
      break;
    } catch (e) {
      if (choice !== 'auto') throw new Error(`Engine "${name}" could not start: ${firstLine(e)}`);
      skipped.push(`${name}: ${firstLine(e)}`);
    }
  }
  if (!info) throw new Error(`No TF.js engine could start:\n  ${skipped.join('\n  ')}`);
  await tf.ready();
  info.skipped = skipped;
  if ((info.name === 'wasm' || info.native) && fromSetting !== undefined) info.threadsSetting = fromSetting;
  applyPrecision(info, precision);
  current = info;
  if (!opts.quiet) {
    console.log(describeEngine(info));
    if (info.adapter) console.log(describeAdapter(info.adapter)); // vendor, architecture, limits
    if (info.nativeOff) console.log(`oneDNN convolutions off: ${info.nativeOff}`);
    if (info.precisionOff) console.log(`bf16 off: ${info.precisionOff}`);
  }
  return info;
}
