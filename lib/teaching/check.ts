/**
 * The notebooks' "your cell against the library" checks. A teaching cell writes an algorithm in a
 * few lines, then `verify` runs the cell's function and the library's on the same inputs (fresh
 * from a factory, so seeded RNGs draw the same noise) and prints one line saying they agree.
 *
 * Two modes:
 *  - notebook (the teaching notebooks, `npm run figures`): a mismatch throws, so a drift between a
 *    notebook and lib/ fails the figures job;
 *  - exercise (notebooks/exercises/, made by `npm run exercises`): a stub's NotImplementedYet, an
 *    error in the student's code or a mismatch prints one line (what differs: shape, value range,
 *    max error) without a stack trace, and later cells fall back to the library's function.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Thrown by an exercise stub: the student has not written this part yet. */
export class NotImplementedYet extends Error {
  constructor(readonly exercise: string) {
    super(`not implemented yet: ${exercise}`);
    this.name = 'NotImplementedYet';
  }
}

let exerciseMode = false;

/** Exercise notebooks switch this on in their first cell (npm run exercises writes that line). */
export function setExerciseMode(on: boolean): void {
  exerciseMode = on;
}

export function isExerciseMode(): boolean {
  return exerciseMode;
}

/**
 * What a check compares: a tensor, a number, or a list / record of them (e.g. a Prediction
 * {eps, variance?}); keys whose library value is undefined are skipped.
 */
export type Checkable = unknown;

export interface Comparison {
  ok: boolean;
  /** Largest |mine − reference| over every number compared. */
  maxError: number;
  /** Where they differ (empty when ok), e.g. "shape [1,28,28,1] vs [1,28,1,28]". */
  problem: string;
  /** Shapes compared, for the success line. */
  shapes: string[];
}

function range(v: Float32Array | Int32Array | Uint8Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return [lo, hi];
}

const fmt = (x: number) =>
  (Math.abs(x) >= 1e-3 && Math.abs(x) < 1e4) || x === 0 ? x.toFixed(4).replace(/\.?0+$/, '') : x.toExponential(2);

/**
 * Compares `mine` with `reference`: same structure and shapes, finite, and every value within
 * atol + rtol·|reference|. Reads tensors synchronously (wasm/cpu; WebGPU notebooks check on the host).
 */
export function compareResults(
  mine: Checkable,
  reference: Checkable,
  opts: { atol?: number; rtol?: number } = {},
  where = 'result',
): Comparison {
  const atol = opts.atol ?? 1e-4;
  const rtol = opts.rtol ?? 1e-4;
  const fail = (problem: string): Comparison => ({ ok: false, maxError: NaN, problem, shapes: [] });
  if (reference instanceof tf.Tensor) {
    if (!(mine instanceof tf.Tensor)) return fail(`${where}: expected a tensor of shape [${reference.shape}], got ${describe(mine)}`);
    if (mine.shape.join(',') !== reference.shape.join(','))
      return fail(`${where}: shape [${mine.shape}] but the library's is [${reference.shape}]`);
    const a = mine.dataSync();
    const b = reference.dataSync();
    let worst = 0;
    let worstAt = -1;
    let bad = 0;
    for (let i = 0; i < a.length; i++) {
      if (!Number.isFinite(a[i])) return fail(`${where}: value ${a[i]} at index ${i} (not finite)`);
      const e = Math.abs(a[i] - b[i]);
      if (e > worst) {
        worst = e;
        worstAt = i;
      }
      if (e > atol + rtol * Math.abs(b[i])) bad++;
    }
    const shapes = [`[${reference.shape}]`];
    if (bad === 0) return { ok: true, maxError: worst, problem: '', shapes };
    const [lo, hi] = range(a);
    const [rlo, rhi] = range(b);
    return {
      ok: false,
      maxError: worst,
      shapes,
      problem: `${where}: ${bad} of ${a.length} values differ; max error ${fmt(worst)} at index ${worstAt} (${fmt(a[worstAt])} vs ${fmt(b[worstAt])}); value range [${fmt(lo)}, ${fmt(hi)}] vs the library's [${fmt(rlo)}, ${fmt(rhi)}]`,
    };
  }
  if (typeof reference === 'number') {
    if (typeof mine !== 'number') return fail(`${where}: expected a number, got ${describe(mine)}`);
    const e = Math.abs(mine - reference);
    const ok = Number.isFinite(mine) && e <= atol + rtol * Math.abs(reference);
    return { ok, maxError: e, shapes: ['number'], problem: ok ? '' : `${where}: ${fmt(mine)} but the library's is ${fmt(reference)}` };
  }
  if (reference === null || typeof reference !== 'object')
    return fail(`${where}: the library returned ${describe(reference)}, which cannot be compared`);
  const keys = Array.isArray(reference)
    ? reference.map((_, i) => i)
    : Object.keys(reference).filter((k) => (reference as Record<string, unknown>)[k] !== undefined);
  if (mine === null || typeof mine !== 'object' || mine instanceof tf.Tensor)
    return fail(`${where}: expected ${Array.isArray(reference) ? 'a list' : 'an object'}, got ${describe(mine)}`);
  if (Array.isArray(reference) && (!Array.isArray(mine) || mine.length !== reference.length)) {
    return fail(`${where}: a list of ${Array.isArray(mine) ? mine.length : '?'} items but the library's has ${reference.length}`);
  }
  let worst = 0;
  const shapes: string[] = [];
  for (const k of keys) {
    const m = (mine as Record<string | number, Checkable | undefined>)[k];
    const r = (reference as Record<string | number, Checkable>)[k];
    const sub = Array.isArray(reference) ? `${where}[${k}]` : `${where}.${k}`;
    if (m === undefined) return fail(`${sub} is missing`);
    const c = compareResults(m, r, opts, sub);
    if (!c.ok) return c;
    worst = Math.max(worst, c.maxError);
    shapes.push(...c.shapes);
  }
  return { ok: true, maxError: worst, problem: '', shapes };
}

/** "[1,28,28,1]", "a number and 86 tensors", …: what the success line says was compared. */
function describeShapes(shapes: string[]): string {
  const named = shapes.map((s) => (s === '[]' ? 'a scalar' : s === 'number' ? 'a number' : s));
  if (named.length <= 3) return named.join(', ');
  const numbers = named.filter((s) => s === 'a number').length;
  const tensors = named.length - numbers;
  return [numbers ? (numbers === 1 ? 'a number' : `${numbers} numbers`) : '', tensors ? `${tensors} tensors` : '']
    .filter(Boolean)
    .join(' and ');
}

function describe(v: unknown): string {
  if (v instanceof tf.Tensor) return `a tensor of shape [${v.shape}]`;
  if (Array.isArray(v)) return `a list of ${v.length}`;
  return v === null ? 'null' : typeof v;
}

export interface VerifyOptions {
  /** What the cell is compared with, for the printed line (e.g. "A.forward"). */
  against: string;
  atol?: number;
  rtol?: number;
  /** Where the line goes (tests capture it); default console.log. */
  log?: (line: string) => void;
}

/** Outcome of the last verify per exercise name (tests and the exercise summary read it). */
export const verifyLog = new Map<string, 'pass' | 'not implemented' | 'error' | 'differs'>();

/**
 * Runs `mine` and `lib` on inputs from `args()` (called once per side, so each gets its own
 * seeded RNG), compares the results and prints one line. Returns the function later cells should
 * use: the library's (notebook mode: after the check passed, so figures are the library's), or in
 * exercise mode the student's when it passed and the library's otherwise. Every tensor made by the
 * two calls is released; `args()` should return existing tensors or fresh ones it does not keep.
 */
export function verify<A extends unknown[], R>(
  name: string,
  mine: (...a: A) => R,
  lib: (...a: A) => R,
  args: () => NoInfer<A>,
  opts: VerifyOptions,
): (...a: A) => R {
  const log = opts.log ?? ((s: string) => console.log(s));
  let outcome: { kind: 'pass' | 'not implemented' | 'error' | 'differs'; line: string };
  try {
    outcome = tf.tidy(() => {
      let m: R;
      try {
        m = mine(...args());
      } catch (e) {
        if (e instanceof NotImplementedYet)
          return { kind: 'not implemented' as const, line: `… ${e.message} (later cells use ${opts.against})` };
        if (!exerciseMode) throw e;
        return {
          kind: 'error' as const,
          line: `✗ ${name}: your code threw ${(e as Error).name}: ${(e as Error).message} (later cells use ${opts.against})`,
        };
      }
      const c = compareResults(m, lib(...args()), opts);
      if (c.ok)
        return {
          kind: 'pass' as const,
          line: `✓ ${name}: the cell's version equals ${opts.against} (max error ${fmt(c.maxError)} over ${describeShapes(c.shapes)})`,
        };
      return { kind: 'differs' as const, line: `✗ ${name}: differs from ${opts.against}: ${c.problem}` };
    });
  } catch (e) {
    verifyLog.set(name, 'error');
    throw e;
  }
  verifyLog.set(name, outcome.kind);
  if (outcome.kind === 'differs' && !exerciseMode) throw new Error(`${outcome.line}; the notebook and lib/ have drifted apart`);
  log(outcome.line);
  return exerciseMode && outcome.kind === 'pass' ? mine : lib;
}
