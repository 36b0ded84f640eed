/**
 * Timestep lists, one convention for all of them: a list is strictly decreasing schedule indices
 * (t ∈ [0, T−1], lib/schedulers/schedule.ts) and a reverse loop steps from each entry to the next.
 * −1 stands for the clean image (ᾱ = 1): a list that ends in −1 takes a last step to x₀, as
 * diffusers' pipelines and Alg. B.2 do; the course's strided loops end at 0 instead (SPEC §1.4).
 */

/**
 * §1.4's strided list: start, start − stride, …, 0. For T = 1000 the course's 990 → 0 by 30
 * (34 entries). Defaults for other T keep that shape: stride = 3% of T, rounded to the nearest
 * multiple of 10 when that is ≥ 5 (T = 300 → 10), else to an integer ≥ 1; start = the largest
 * multiple of the stride ≤ T − 1 (T = 300 → 290, 30 entries).
 */
export function stridedTimesteps(T: number, opts: { start?: number; stride?: number } = {}): number[] {
  if (!Number.isInteger(T) || T < 1) throw new Error(`stridedTimesteps: T = ${T} must be a positive integer`);
  let stride = opts.stride;
  if (stride === undefined) {
    const raw = 0.03 * T;
    stride = raw >= 5 ? Math.round(raw / 10) * 10 : Math.max(1, Math.round(raw));
  }
  if (!Number.isInteger(stride) || stride < 1) throw new Error(`stridedTimesteps: stride ${stride} must be a positive integer`);
  const start = opts.start ?? Math.floor((T - 1) / stride) * stride;
  if (!Number.isInteger(start) || start < 0 || start > T - 1) {
    throw new Error(`stridedTimesteps: start ${start} must be an integer in 0..${T - 1}`);
  }
  const ts: number[] = [];
  for (let t = start; t > 0; t -= stride) ts.push(t);
  ts.push(0);
  return ts;
}

/**
 * diffusers' set_timesteps(n) with "leading" spacing (its default, and IF's):
 * ratio = ⌊T/n⌋, timesteps = [(n−1)·ratio, …, ratio, 0] + stepsOffset. n = 20 gives [950, 900, …, 0].
 */
export function leadingTimesteps(n: number, T = 1000, stepsOffset = 0): number[] {
  if (!Number.isInteger(n) || n < 1 || n > T) throw new Error(`num_inference_steps must be an integer in 1..${T}, got ${n}`);
  const r = Math.floor(T / n);
  return Array.from({ length: n }, (_, i) => (n - 1 - i) * r + stepsOffset);
}

/** The full chain T−1, …, 0 of Alg. B.2 (the spec's t = T … 1), T entries. */
export function fullChainTimesteps(T: number): number[] {
  if (!Number.isInteger(T) || T < 1) throw new Error(`fullChainTimesteps: T = ${T} must be a positive integer`);
  return Array.from({ length: T }, (_, i) => T - 1 - i);
}

/** A list followed by −1: the loop then takes a last step to the clean image (ᾱ = 1, no noise). */
export function toClean(timesteps: readonly number[]): number[] {
  return [...timesteps, -1];
}

/**
 * diffusers' previous_timestep for a list: the next entry after t, −1 after the last (then ᾱ = 1).
 * Throws if t is not in the list (SPEC §1.4, gotcha 3).
 */
export function previousTimestep(timesteps: readonly number[], t: number): number {
  const i = timesteps.indexOf(t);
  if (i < 0) throw new Error(`timestep ${t} is not in the scheduler's timestep list [${timesteps.slice(0, 4).join(', ')}, …]`);
  return i + 1 < timesteps.length ? timesteps[i + 1] : -1;
}

/**
 * Throws one line unless `ts` is a strictly decreasing list of integers in 0..T−1 (a last −1
 * allowed) and iStart indexes one of its entries before the last.
 */
export function checkTimesteps(ts: readonly number[], T: number, iStart: number, fn: string): void {
  if (ts.length < 1) throw new Error(`${fn}: timesteps is empty`);
  for (let i = 0; i < ts.length; i++) {
    const last = i === ts.length - 1 && i > 0;
    const ok = Number.isInteger(ts[i]) && ts[i] >= (last ? -1 : 0) && ts[i] <= T - 1 && (i === 0 || ts[i] < ts[i - 1]);
    if (!ok) throw new Error(`${fn}: timesteps must be strictly decreasing integers in 0..${T - 1} (entry ${i} is ${ts[i]})`);
  }
  if (!Number.isInteger(iStart) || iStart < 0 || iStart > ts.length - 1) {
    throw new Error(`${fn}: i_start ${iStart} must be an integer in 0..${ts.length - 1} (${ts.length} strided timesteps)`);
  }
}
