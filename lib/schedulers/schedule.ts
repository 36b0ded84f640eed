/**
 * Noise schedules, in float64 (values are converted to float32 only where tensors need them).
 *
 * Indexing used everywhere in this project: a timestep is an array index t in [0, T-1] and
 * ᾱ_t = alphasCumprod[t]. "Before the first step" is t = -1, where ᾱ = 1. Part B's spec counts
 * t in 1..T; its t corresponds to index t-1 here (SPEC §2.4, gotcha 7).
 */

/** A discrete diffusion schedule of T steps. */
export interface NoiseSchedule {
  /** Number of training timesteps T. */
  T: number;
  /** β_t, length T. */
  betas: Float64Array;
  /** α_t = 1 - β_t, length T. */
  alphas: Float64Array;
  /** ᾱ_t = ∏_{s<=t} α_s, length T. */
  alphasCumprod: Float64Array;
  /** Name for captions and manifests, e.g. "linear(1e-4, 0.02, 300)". */
  name: string;
}

/** ᾱ at index t, with ᾱ_{-1} = 1 (the clean image; used after the last sampling step). */
export function alphaBarAt(schedule: NoiseSchedule, t: number): number {
  if (t < 0) return 1;
  if (!Number.isInteger(t) || t >= schedule.T) {
    throw new Error(`timestep ${t} is outside 0..${schedule.T - 1} of schedule ${schedule.name}`);
  }
  return schedule.alphasCumprod[t];
}

/** Builds a schedule from its betas: α = 1 - β, ᾱ = cumprod(α). */
export function scheduleFromBetas(betas: Float64Array, name: string): NoiseSchedule {
  const T = betas.length;
  const alphas = new Float64Array(T);
  const alphasCumprod = new Float64Array(T);
  let prod = 1;
  for (let i = 0; i < T; i++) {
    alphas[i] = 1 - betas[i];
    prod *= alphas[i];
    alphasCumprod[i] = prod;
  }
  return { T, betas, alphas, alphasCumprod, name };
}

/** β linearly spaced from beta1 to beta2 over T steps, as torch.linspace (SPEC §2.4). */
export function linearSchedule(beta1 = 1e-4, beta2 = 0.02, T = 300): NoiseSchedule {
  const betas = new Float64Array(T);
  for (let i = 0; i < T; i++) betas[i] = T === 1 ? beta1 : beta1 + ((beta2 - beta1) * i) / (T - 1);
  return scheduleFromBetas(betas, `linear(${beta1}, ${beta2}, ${T})`);
}

/**
 * diffusers' "squaredcos_cap_v2" (DeepFloyd IF): ᾱ(s) = cos²((s + 0.008)/1.008 · π/2),
 * β_i = min(1 - ᾱ((i+1)/T) / ᾱ(i/T), maxBeta) (SPEC §1.11).
 */
export function cosineSchedule(T = 1000, maxBeta = 0.999): NoiseSchedule {
  const f = (s: number) => Math.cos(((s + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  const betas = new Float64Array(T);
  for (let i = 0; i < T; i++) betas[i] = Math.min(1 - f((i + 1) / T) / f(i / T), maxBeta);
  return scheduleFromBetas(betas, `squaredcos_cap_v2(${T})`);
}

/** The Part B DDPM schedule of the spec: linear 1e-4 → 0.02 over T = 300. */
export function ddpmSchedule(T = 300): NoiseSchedule {
  return linearSchedule(1e-4, 0.02, T);
}
