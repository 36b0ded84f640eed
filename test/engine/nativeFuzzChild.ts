/**
 * The child process of test/engine/nativeFuzz.test.ts: `node nativeFuzzChild.js <addon> <seed> <calls>`
 * loads the oneDNN addon and makes the issue's hostile calls, then `calls` random ones, each
 * either valid, made invalid by one mutation (a missing or extra argument, a value of the wrong
 * type, a number that is not a whole number in range, an array of the wrong kind or length, a
 * size whose arithmetic overflows), or pure chaos (any function, any arguments). Every array it
 * passes is a view into a larger buffer whose guard zones (4 KiB each side) are checked after
 * each call, so a write outside an argument shows even when it does not crash the process.
 *
 * It prints one JSON line: {calls, threw, returned, failures}. A failure is a valid call that
 * threw, an invalid one that returned, an error that is not one line "diffusion_native.<fn>: …",
 * or a guard zone changed. A crash prints nothing: the parent sees the signal or exit status.
 */
import * as fs from 'node:fs';
import { mulberry32 } from '../helpers';

type Fn =
  | 'conv'
  | 'gelu'
  | 'geluGrad'
  | 'bnStats'
  | 'bnApply'
  | 'bnGrad'
  | 'copyChunks'
  | 'channelSum'
  | 'binary'
  | 'adam'
  | 'setThreads'
  | 'threads'
  | 'version'
  | 'cachedPrimitives'
  | 'cacheCapacity'
  | 'clearCache';
const FNS: Fn[] = [
  'conv',
  'gelu',
  'geluGrad',
  'bnStats',
  'bnApply',
  'bnGrad',
  'copyChunks',
  'channelSum',
  'binary',
  'adam',
  'setThreads',
  'threads',
  'version',
  'cachedPrimitives',
  'cacheCapacity',
  'clearCache',
];

/** One call: its arguments and whether they are valid (undefined: not known, chaos). */
interface Case {
  fn: Fn;
  args: unknown[];
  valid: boolean | undefined;
  what: string;
}

const [addonPath, seedArg, callsArg] = process.argv.slice(2);
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a native addon, loaded at run time
const addon = require(addonPath!) as Record<Fn, (...args: unknown[]) => unknown>;
const rng = mulberry32(Number(seedArg));
const CALLS = Number(callsArg);

const GUARD = 1024; // floats each side: 4 KiB
const CANARY = 1234.5;
/** Every guarded buffer made for the current call. */
let guarded: Float32Array[] = [];

/** A Float32Array of n values in [−1, 1), a view into a buffer with guard zones. */
function arr(n: number): Float32Array {
  const whole = new Float32Array(n + 2 * GUARD).fill(CANARY);
  guarded.push(whole);
  const v = whole.subarray(GUARD, GUARD + n);
  for (let i = 0; i < n; i++) v[i] = rng() * 2 - 1;
  return v;
}

function guardsIntact(): boolean {
  for (const w of guarded) {
    for (let i = 0; i < GUARD; i++) if (w[i] !== CANARY || w[w.length - 1 - i] !== CANARY) return false;
  }
  return true;
}

const int = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;

/** A detached Float32Array (its buffer transferred away): length 0, no data. */
function detached(): Float32Array {
  const buf = new ArrayBuffer(16);
  const v = new Float32Array(buf);
  structuredClone(buf, { transfer: [buf] });
  return v;
}

/** Values that are never a valid number argument. */
const NOT_A_WHOLE_NUMBER: Array<() => unknown> = [
  () => NaN,
  () => Infinity,
  () => -Infinity,
  () => -1,
  () => 1.9,
  () => 0.5,
  () => 2 ** 53 + 2,
  () => 2 ** 62 + 2 ** 40,
  () => 2 ** 63,
  () => 1e30,
  () => -1e30,
  () => 'x',
  () => '3',
  () => null,
  () => undefined,
  () => ({}),
  () => [],
  () => true,
  () => 10n,
  () => Symbol('s'),
  () => () => 1,
  () => new Float32Array(1),
];

/** Values that are never a valid Float32Array argument. */
const NOT_FLOATS: Array<(n: number) => unknown> = [
  (n) => new Float64Array(n),
  (n) => new Int32Array(n),
  (n) => new Uint8Array(n * 4),
  (n) => Array.from({ length: n }, () => 0),
  (n) => new ArrayBuffer(n * 4),
  (n) => new DataView(new ArrayBuffer(n * 4)),
  () => 'x',
  () => 3,
  () => null,
  () => undefined,
  () => ({ length: 4 }),
  () => 10n,
];

/** A valid convolution: a small geometry, arrays of the lengths it needs. */
function convCase(): Case {
  const op = int(0, 2);
  const [n, h, w, ci, co] = [int(1, 2), int(1, 6), int(1, 6), int(1, 3), int(1, 3)];
  const [fh, fw, sh, sw, dh, dw] = [int(1, 3), int(1, 3), int(1, 2), int(1, 2), int(1, 2), int(1, 2)];
  const extH = (fh - 1) * dh + 1;
  const extW = (fw - 1) * dw + 1;
  const pads = [int(0, extH - 1), int(0, extW - 1), int(0, extH - 1), int(0, extW - 1)]; // top, left, bottom, right
  if (h + pads[0]! + pads[2]! < extH) pads[2] = extH - h - pads[0]!; // the filter fits the padded input
  if (w + pads[1]! + pads[3]! < extW) pads[3] = extW - w - pads[1]!;
  if (pads[2]! >= extH || pads[3]! >= extW) return convCase();
  const ho = Math.floor((h + pads[0]! + pads[2]! - extH) / sh) + 1;
  const wo = Math.floor((w + pads[1]! + pads[3]! - extW) / sw) + 1;
  const geom = Int32Array.from([n, h, w, ci, ho, wo, co, fh, fw, sh, sw, dh, dw, pads[0]!, pads[1]!, pads[2]!, pads[3]!]);
  const src = n * h * w * ci;
  const dst = n * ho * wo * co;
  const wei = fh * fw * ci * co;
  const [a, b, out] = op === 0 ? [src, wei, dst] : op === 1 ? [dst, wei, src] : [src, dst, wei];
  const bias = op === 0 && rng() < 0.5 ? arr(co) : null;
  const act = op === 0 ? int(0, 2) : 0;
  // oneDNN 2.6.3 corrupts the heap in this one case, so the addon refuses it (native.ts falls back).
  const unsafe = op === 2 && fh === 1 && fw === 1 && (sh > 1 || sw > 1);
  return {
    fn: 'conv',
    args: [op, arr(a), arr(b), bias, arr(out), geom, act],
    valid: !unsafe,
    what: unsafe ? 'conv: a 1×1 strided backward filter (refused)' : 'valid conv',
  };
}

/** A valid call of any function. */
function validCase(): Case {
  const fn = pick(FNS);
  const v = (args: unknown[]): Case => ({ fn, args, valid: true, what: `valid ${fn}` });
  switch (fn) {
    case 'conv':
      return convCase();
    case 'gelu': {
      const n = int(0, 300);
      return v([arr(n), arr(n)]);
    }
    case 'geluGrad': {
      const n = int(0, 300);
      return v([arr(n), arr(n), arr(n)]);
    }
    case 'bnStats': {
      const [c, rows] = [int(1, 8), int(1, 6)];
      return v([arr(rows * c), c, arr(c), arr(c)]);
    }
    case 'bnApply': {
      const [c, rows] = [int(1, 8), int(0, 6)];
      return v([arr(rows * c), c, arr(c), arr(c), arr(c), arr(c), arr(rows * c)]);
    }
    case 'bnGrad': {
      const [c, rows] = [int(1, 8), int(1, 6)];
      return v([arr(rows * c), arr(rows * c), c, arr(c), arr(c), arr(c), arr(rows * c), arr(c), arr(c)]);
    }
    case 'copyChunks': {
      const [outer, chunk] = [int(0, 5), int(0, 5)];
      const [ss, ds] = [chunk + int(0, 3), chunk + int(0, 3)];
      const [so, dof] = [int(0, 3), int(0, 3)];
      const need = (stride: number, off: number) => (outer > 0 ? (outer - 1) * stride + off + chunk : 0);
      return v([arr(need(ss, so) + int(0, 3)), ss, so, arr(need(ds, dof) + int(0, 3)), ds, dof, chunk, outer]);
    }
    case 'channelSum': {
      const [c, rows] = [int(1, 8), int(0, 6)];
      return v([arr(rows * c), c, arr(c)]);
    }
    case 'binary': {
      const [outer, inner, c] = [int(1, 4), int(1, 4), int(1, 5)];
      const len = (kind: number) => [outer * inner * c, outer * c, c, 1][kind]!;
      const [ka, kb] = [int(0, 3), int(0, 3)];
      return v([int(0, 2), arr(len(ka)), ka, arr(len(kb)), kb, arr(outer * inner * c), outer, inner, c]);
    }
    case 'adam': {
      const n = int(0, 300);
      return v([arr(n), arr(n), arr(n), arr(n), 0.9, 0.999, 1e-8, rng() * 1e-2, 0.5 + rng() / 2, arr(n), arr(n), arr(n)]);
    }
    case 'setThreads':
      return v([int(1, 3)]);
    default:
      return v([]);
  }
}

/** Indices of a function's number and Float32Array arguments. */
const NUMBER_ARGS: Partial<Record<Fn, number[]>> = {
  conv: [0, 6],
  bnStats: [1],
  bnApply: [1],
  bnGrad: [2],
  copyChunks: [1, 2, 4, 5, 6, 7],
  channelSum: [1],
  binary: [0, 2, 4, 6, 7, 8],
  setThreads: [0],
};
const FLOAT_ARGS: Partial<Record<Fn, number[]>> = {
  conv: [1, 2, 4],
  gelu: [0, 1],
  geluGrad: [0, 1, 2],
  bnStats: [0, 2, 3],
  bnApply: [0, 2, 3, 4, 5, 6],
  bnGrad: [0, 1, 3, 4, 5, 6, 7, 8],
  copyChunks: [0, 3],
  channelSum: [0, 2],
  binary: [1, 3, 5],
  adam: [0, 1, 2, 3, 9, 10, 11],
};
/** Indices of a function's finite-number (not whole-number) arguments. */
const REAL_ARGS: Partial<Record<Fn, number[]>> = { adam: [4, 5, 6, 7, 8] };

/** A valid call made invalid by one mutation that no reading of the arguments can accept. */
function invalidCase(): Case {
  const c = validCase();
  const args = [...c.args];
  const nums = NUMBER_ARGS[c.fn] ?? [];
  const floats = FLOAT_ARGS[c.fn] ?? [];
  const reals = REAL_ARGS[c.fn] ?? [];
  const kinds = [
    'drop',
    'extra',
    ...(nums.length ? ['number', 'number'] : []),
    ...(floats.length ? ['floats', 'floats'] : []),
    ...(reals.length ? ['real'] : []),
  ];
  if (c.fn === 'conv') kinds.push('geom', 'geom', 'range');
  if (c.fn === 'copyChunks' && (args[7] as number) > 0 && (args[6] as number) > 0) kinds.push('overflow', 'overflow', 'past');
  if (c.fn === 'setThreads') kinds.push('range');
  if (c.fn === 'bnStats' || c.fn === 'bnGrad') kinds.push('empty');
  const kind = pick(kinds);
  const out = (what: string): Case => ({ fn: c.fn, args, valid: false, what: `${c.fn}: ${what}` });
  switch (kind) {
    case 'drop':
      if (args.length === 0) return { fn: c.fn, args: [0], valid: false, what: `${c.fn}: an argument too many` };
      args.pop();
      return out('the last argument missing');
    case 'extra':
      args.push(pick([0, undefined, null, arr(1)]));
      return out('an argument too many');
    case 'number': {
      const i = pick(nums);
      const bad = pick(NOT_A_WHOLE_NUMBER)();
      args[i] = bad;
      return out(`argument ${i} = ${typeof bad === 'number' ? bad : typeof bad}`);
    }
    case 'real': {
      const i = pick(reals);
      args[i] = pick([NaN, Infinity, -Infinity, '0.9', undefined, null, arr(1)]);
      return out(`argument ${i} not a finite number`);
    }
    case 'floats': {
      const i = pick(floats);
      const n = (args[i] as Float32Array).length;
      // Another kind of value; or a Float32Array one value too long, or detached, where its
      // length must equal another argument's or the geometry's (bnStats' and channelSum's x may hold any number
      // of rows, even none, and copyChunks' arrays may be longer than the copies need).
      const r = rng();
      if (r < 0.6) args[i] = pick(NOT_FLOATS)(n);
      else if (r < 0.9 && c.fn !== 'copyChunks' && !((c.fn === 'bnStats' || c.fn === 'channelSum') && i === 0)) args[i] = arr(n + 1);
      else if (n > 0 && c.fn !== 'copyChunks' && !(c.fn === 'channelSum' && i === 0)) args[i] = detached();
      else args[i] = pick(NOT_FLOATS)(n);
      return out(`argument ${i} not a Float32Array of the right length`);
    }
    case 'geom': {
      const g = Int32Array.from(args[5] as Int32Array);
      const r = rng();
      if (r < 0.5) {
        const i = int(0, 16);
        g[i] = i < 13 ? pick([0, -1, -(2 ** 31)]) : -1; // sizes, strides, dilations ≥ 1; pads ≥ 0
        args[5] = g;
      } else if (r < 0.7) {
        g[int(13, 16)] = 2 ** 31 - 1; // a pad beyond the filter
        args[5] = g;
      } else if (r < 0.85)
        args[5] = pick([new Int32Array(16), new Int32Array(18), Float32Array.from(g), Uint32Array.from(g), Array.from(g)]);
      else {
        g[int(0, 3)] = 2 ** 31 - 1; // a size the arrays do not hold
        args[5] = g;
      }
      return out('a bad geometry');
    }
    case 'range':
      if (c.fn === 'setThreads') args[0] = pick([0, 257, 2 ** 31, 1e9]);
      else if (rng() < 0.5) args[0] = pick([3, 4, 2 ** 32, 2 ** 32 + 1]);
      else args[6] = (args[0] as number) === 0 ? pick([3, 4, 2 ** 32]) : pick([1, 2]); // relu and gelu: forward only
      return out('a number out of range');
    case 'overflow':
      // A stride or offset whose product with outer, or sum with the chunk, would wrap in 64
      // bits or land far past the array: 2^53 is the largest whole number a double holds.
      args[pick([1, 4])] = pick([2 ** 53, 2 ** 52 + 1, 2 ** 40]);
      args[7] = Math.max(2, args[7] as number);
      return out('a stride past the array');
    case 'past':
      args[pick([2, 5])] = pick([2 ** 53, 2 ** 53 - 1, 2 ** 32]);
      return out('an offset past the array');
    case 'empty':
      // No rows: BatchNorm statistics of nothing.
      args[0] = arr(0);
      if (c.fn === 'bnGrad') args[1] = arr(0);
      return out('no rows');
    default:
      throw new Error(`unknown mutation ${kind}`);
  }
}

/** Values of every kind, for chaos calls. */
const CHAOS: Array<() => unknown> = [
  ...NOT_A_WHOLE_NUMBER,
  () => 0,
  () => 1,
  () => 2,
  () => 3,
  () => 7,
  () => 17,
  () => 2 ** 31,
  () => 2 ** 53,
  () => arr(int(0, 64)),
  () => arr(17),
  () => Int32Array.from({ length: 17 }, () => int(-2, 8)),
  () => detached(),
  () => new Float64Array(8),
  () => new Uint8Array(16),
];

function chaosCase(): Case {
  const fn = pick(FNS);
  const args = Array.from({ length: int(0, 10) }, () => pick(CHAOS)());
  return { fn, args, valid: undefined, what: `chaos ${fn}(${args.length} arguments)` };
}

/** The issue's reports, each a call that must throw. */
function reported(): Case[] {
  const f = (n: number) => arr(n);
  const bad = (fn: Fn, what: string, args: unknown[]): Case => ({ fn, args, valid: false, what });
  const geom = Int32Array.from([1, 4, 4, 2, 4, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1]);
  return [
    bad('copyChunks', 'a stride of 2^62 + 2^40', [f(16), 2 ** 62 + 2 ** 40, 0, f(16), 4, 0, 4, 2]),
    bad('copyChunks', 'off + chunk = 2^63', [f(16), 0, 0, f(16), 0, 2 ** 63 - 4, 4, 1]),
    bad('copyChunks', 'a stride of 1e30', [f(16), 1e30, 0, f(16), 4, 0, 4, 2]),
    bad('copyChunks', 'a stride of 1.9', [f(16), 1.9, 0, f(16), 1, 0, 1, 2]),
    bad('copyChunks', 'NaN', [f(16), NaN, 0, f(16), 1, 0, 1, 2]),
    bad('copyChunks', 'Infinity', [f(16), Infinity, 0, f(16), 1, 0, 1, 2]),
    bad('bnStats', '0 rows', [f(0), 8, f(8), f(8)]),
    bad('bnGrad', '0 rows', [f(0), f(0), 8, f(8), f(8), f(8), f(0), f(8), f(8)]),
    bad('setThreads', 'no argument', []),
    bad('setThreads', 'a string', ['x']),
    bad('conv', 'a string op', ['x', f(32), f(54), null, f(48), geom, 0]),
    bad('conv', 'op NaN', [NaN, f(32), f(54), null, f(48), geom, 0]),
    bad('conv', 'op 2^32', [2 ** 32, f(32), f(54), null, f(48), geom, 0]),
    bad('gelu', 'no arguments', []),
    bad('geluGrad', 'dx missing', [f(4), f(4)]),
  ];
}

/** An argument as the trace shows it. */
function show(v: unknown): string {
  if (ArrayBuffer.isView(v))
    return `${v.constructor.name}(${(v as Float32Array).length ?? v.byteLength})${v instanceof Int32Array ? ` [${v.join(',')}]` : ''}`;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  return typeof v === 'object' ? (Array.isArray(v) ? `Array(${v.length})` : 'object') : typeof v;
}

const failures: string[] = [];
let threw = 0;
let returned = 0;
const cases = reported();
let made = 0;
function next(): Case | undefined {
  if (cases.length) return cases.shift();
  if (made++ >= CALLS) return undefined;
  const r = rng();
  return r < 0.3 ? validCase() : r < 0.8 ? invalidCase() : chaosCase();
}
let calls = 0;
for (let c = next(); c; c = next()) {
  calls++;
  let error: unknown;
  let ok = false;
  // Each call named on stderr before it is made (synchronously): after a crash the parent shows the last.
  fs.writeSync(2, `${c.what}: ${c.fn}(${c.args.map(show).join(', ')})\n`);
  try {
    addon[c.fn](...c.args);
    ok = true;
  } catch (e) {
    error = e;
  }
  if (ok) returned++;
  else threw++;
  if (ok && c.valid === false) failures.push(`${c.what}: returned instead of throwing`);
  if (!ok && c.valid === true) failures.push(`${c.what}: threw ${String((error as Error)?.message ?? error)}`);
  if (!ok) {
    const msg = error instanceof Error ? error.message : undefined;
    if (msg === undefined || !msg.startsWith(`diffusion_native.${c.fn}: `) || msg.includes('\n'))
      failures.push(`${c.what}: threw ${String(error)}, not one line "diffusion_native.${c.fn}: …"`);
  }
  if (!guardsIntact()) failures.push(`${c.what}: wrote outside its arrays`);
  guarded = [];
}
process.stdout.write(`${JSON.stringify({ calls, threw, returned, failures: failures.slice(0, 20), failed: failures.length })}\n`);
