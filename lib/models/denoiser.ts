/**
 * The Denoiser interface: what the sampling algorithms (lib/algorithms/) need from a model.
 *
 * Every Part A algorithm (SPEC §1.1–1.9) is written once against this interface and runs
 * unchanged on the MNIST UNets of Part B (lib/models/mnistDenoiser.ts), on
 * DeepFloyd IF, and on the closed-form Gaussian oracle used by the tests. Nothing in the
 * algorithms may know which model it drives.
 *
 * Conventions:
 * - Tensors are NHWC [B,H,W,C], float32.
 * - A timestep is an integer index t in [0, T-1] of `schedule` (lib/schedulers/schedule.ts).
 * - Value range: the algorithms are range-agnostic. They work in the model's own space (the space
 *   the model was trained on, whose forward process is Eq. A.2): [-1,1] for DeepFloyd IF, [0,1]
 *   for Part B's MNIST model (SPEC §2.3: "MNIST is not shifted to [-1, 1]"). Images enter the
 *   model space with `toModelRange` (from [0,1] pixels) and leave it with `toPixelRange`; the
 *   noise ε is N(0, I) in the model space either way.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NoiseSchedule } from '../schedulers/schedule';
import type { PredictionType } from '../schedulers/scheduler';

export type { PredictionType };

/**
 * A conditioning handle made by `Denoiser.encodePrompt`. Opaque to the algorithms: each model
 * extends it with its own payload (a one-hot class vector for MNIST, a [1,77,4096] T5 embedding
 * for IF) and only accepts handles it made itself (check `owner`). A handle conditions every
 * sample of the batch it is used with. Handles live as long as their denoiser (it caches and
 * disposes them); callers never dispose them.
 */
export interface CondHandle {
  /** The prompt text this handle encodes (for captions). */
  readonly prompt: string;
  /** `Denoiser.name` of the model that made it. */
  readonly owner: string;
}

/** One model evaluation. Both tensors are new; the caller owns (and disposes) them. */
export interface Prediction {
  /**
   * The model's output [B,H,W,C], same shape as x_t: the predicted noise ε̂ (epsilon models) or
   * the velocity v̂ (velocity models, Denoiser.prediction). The field keeps its historical name.
   */
  eps: tf.Tensor4D;
  /**
   * Only when `learnedVariance`: the model's raw variance channels v [B,H,W,C] (about [-1,1];
   * IF's output channels 3–5), which a learned_range scheduler turns into the step's variance
   * (formulas.learnedRangeLogVariance). Absent otherwise.
   */
  variance?: tf.Tensor4D;
}

/** One item of a batched evaluation: x_t [B,H,W,C] under one conditioning handle. */
export interface PredictItem {
  xt: tf.Tensor4D;
  cond: CondHandle;
}

export interface Denoiser {
  /** Display name for captions, e.g. "MNIST class-conditioned UNet (D=64, T=300)". */
  readonly name: string;
  /**
   * What predict() returns: 'epsilon' (DDPM models: ε̂, timesteps are integer indices of `schedule`)
   * or 'velocity' (flow-matching models: v̂, timesteps are flow times in [0, 1]). Absent = 'epsilon'.
   * The loop picks the scheduler family from it (lib/algorithms/loops.ts loopScheduler).
   */
  readonly prediction?: PredictionType;
  /**
   * Epsilon models: the noise schedule (ᾱ over the T training steps). Velocity models have none:
   * the flow path is fixed (lib/schedulers/flowMatching.ts). ddpmScheduleOf gives it or says why not.
   */
  readonly schedule?: NoiseSchedule;
  /** [height, width] of the images the model takes. */
  readonly imageSize: [number, number];
  /** Image channels C (1 for MNIST, 3 for IF). */
  readonly channels: number;
  /** Range of clean images in the model's space: [-1, 1] (IF) or [0, 1] (MNIST). */
  readonly valueRange: [number, number];
  /**
   * True when predict() also returns variance channels (IF); the samplers then default to the
   * learned_range variance, else to fixed_small (the variance is the scheduler's choice, see
   * lib/schedulers/ddpm.ts).
   */
  readonly learnedVariance: boolean;
  /**
   * The prompt standing in for unconditional generation (the course's "a high quality photo",
   * SPEC §1.0); for MNIST it is the zero class vector.
   */
  readonly neutralPrompt: string;
  /** The unconditional prompt of CFG (the course's "", SPEC §1.6); zero class vector for MNIST. */
  readonly emptyPrompt: string;
  /** Prompts the model accepts (for error messages and the notebook's menus). */
  readonly prompts: readonly string[];

  /**
   * Turns a prompt into a conditioning handle (cached; the same prompt gives the same handle).
   * An unknown prompt throws one line naming the prompt and listing the valid ones.
   */
  encodePrompt(prompt: string): CondHandle;

  /**
   * ε̂ (and v, for learned_range) for x_t [B,H,W,C] at timestep t, every sample under `cond`.
   * Throws a clear error for a wrong shape or a handle of another model. Does not keep xt.
   */
  predict(xt: tf.Tensor4D, t: number, cond: CondHandle): Prediction;

  /**
   * Optional batched evaluation of several (x_t, cond) items at the same t in one model call
   * (CFG's cond+uncond pair, the anagram's four branches). Must equal calling `predict` on each
   * item; returns one Prediction per item, in order.
   */
  predictMany?(items: PredictItem[], t: number): Prediction[];

  /**
   * Frees the model's weights and cached handles. Afterwards every method that needs them throws
   * `releasedModelError` (a released network would otherwise compute with whatever its weights
   * became: noise, and no error).
   */
  dispose?(): void;

  /** True once dispose() has run (models that can be released). */
  readonly released?: boolean;
}

/** The one-line error of a model used after dispose(). */
export function releasedModelError(name: string): Error {
  return new Error(`${name}: this model was released; run the cell that loads it again`);
}

/** A DDPM (epsilon) model: one with a noise schedule (DeepFloyd IF, the MNIST DDPMs, the oracle). */
export type DDPMDenoiser = Denoiser & { readonly schedule: NoiseSchedule };

/** The noise schedule of a DDPM model; one line naming the model for a flow model. */
export function ddpmScheduleOf(den: Denoiser, fn: string): NoiseSchedule {
  if (den.prediction === 'velocity' || !den.schedule)
    throw new Error(`${fn} needs a DDPM model with a noise schedule; ${den.name} is a flow-matching model (use the flow scheduler's grid)`);
  return den.schedule;
}

/** The model as a DDPM model (one with a noise schedule); one line naming it for a flow model. */
export function requireDDPM(den: Denoiser, fn: string): DDPMDenoiser {
  ddpmScheduleOf(den, fn);
  return den as DDPMDenoiser;
}

/** Evaluates every item, batched when the model supports it (same results as one by one). */
export function predictAll(den: Denoiser, items: PredictItem[], t: number): Prediction[] {
  if (den.predictMany && items.length > 1) return den.predictMany(items, t);
  return items.map((it) => den.predict(it.xt, t, it.cond));
}

/** Concatenates items along the batch axis and splits the results back: a helper for predictMany implementations. */
export function batchItems(items: PredictItem[]): { xt: tf.Tensor4D; sizes: number[] } {
  const sizes = items.map((it) => it.xt.shape[0]);
  return { xt: items.length === 1 ? items[0].xt.clone() : tf.concat(items.map((it) => it.xt), 0), sizes };
}

/**
 * Throws a one-line error unless x is [B,H,W,C] with the model's size and channels.
 * @param what the argument's name for the message, e.g. "inpaint: mask"
 * @param channels expected channels (default the model's; 1 allowed for masks by the caller)
 */
export function checkImage(den: Denoiser, x: tf.Tensor, what: string, channels = den.channels): void {
  const [h, w] = den.imageSize;
  const s = x.shape;
  if (s.length !== 4 || s[1] !== h || s[2] !== w || s[3] !== channels) {
    throw new Error(
      `${what} has shape [${s.join(',')}] but ${den.name} needs [B,${h},${w},${channels}] (NHWC): ` +
        `resize to ${h}×${w} and use ${channels} channel${channels === 1 ? '' : 's'} (lib/image loaders do both)`,
    );
  }
}

/** Maps images in [0,1] (pixels, as loaded from PNG) to the model's value range. [B,H,W,C] → same. */
export function toModelRange(den: Denoiser, img01: tf.Tensor4D): tf.Tensor4D {
  const [lo, hi] = den.valueRange;
  return tf.tidy(() => tf.add(tf.mul(img01, hi - lo), lo) as tf.Tensor4D);
}

/** Maps model-space images back to [0,1] pixels, clipped, for display and PNGs. [B,H,W,C] → same. */
export function toPixelRange(den: Denoiser, x: tf.Tensor4D): tf.Tensor4D {
  const [lo, hi] = den.valueRange;
  return tf.tidy(() => tf.clipByValue(tf.div(tf.sub(x, lo), hi - lo), 0, 1) as tf.Tensor4D);
}

/** The one-line error for an unknown prompt, shared by every model. */
export function unknownPromptError(modelName: string, prompt: string, valid: readonly string[]): Error {
  const list = valid.map((p) => JSON.stringify(p)).join(', ');
  return new Error(`${modelName} has no prompt ${JSON.stringify(prompt)}: use one of ${list}`);
}

/** Throws unless the handle was made by this model's encodePrompt. */
export function checkHandle(den: Denoiser, cond: CondHandle): void {
  if (!cond || cond.owner !== den.name) {
    throw new Error(
      `conditioning handle for ${JSON.stringify(cond?.prompt)} was made by ${cond?.owner ?? 'nothing'}, not ${den.name}: ` +
        `make it with this model's encodePrompt`,
    );
  }
}

/** A prompt given as text or as a handle from den.encodePrompt. */
export type PromptLike = string | CondHandle;

/** The handle of a prompt (encoding text with the model's encodePrompt). */
export function resolvePrompt(den: Denoiser, p: PromptLike): CondHandle {
  return typeof p === 'string' ? den.encodePrompt(p) : p;
}

/** tf.tidy for a function returning a Prediction: keeps eps and variance, frees the rest. */
export function tidyPrediction(fn: () => Prediction): Prediction {
  return tf.tidy(() => fn() as unknown as tf.TensorContainer) as unknown as Prediction;
}

/** The variance type a sampler uses for this model unless told otherwise. */
export function defaultVarianceType(den: Denoiser): 'learned_range' | 'fixed_small' {
  return den.learnedVariance ? 'learned_range' : 'fixed_small';
}

/**
 * Any unconditional noise predictor ε̂(x_t, t) as a Denoiser (one prompt, the empty one): for
 * oracles in tests and quick experiments. @param size [H, W, C]; @param valueRange of clean images
 */
export function functionDenoiser(
  name: string,
  schedule: NoiseSchedule,
  size: [number, number, number],
  predictEps: (xt: tf.Tensor4D, t: number) => tf.Tensor4D,
  valueRange: [number, number] = [0, 1],
): DDPMDenoiser {
  return makeFunctionDenoiser(name, schedule, size, predictEps, valueRange) as DDPMDenoiser;
}

/**
 * Any unconditional velocity field v(x_t, t), t a flow time in [0, 1], as a flow Denoiser (one
 * prompt, the empty one): Part B's Euler sampling of a bare field, tests' closed-form fields.
 */
export function velocityFunctionDenoiser(
  name: string,
  size: [number, number, number],
  velocity: (xt: tf.Tensor4D, t: number) => tf.Tensor4D,
  valueRange: [number, number] = [0, 1],
): Denoiser {
  return makeFunctionDenoiser(name, undefined, size, velocity, valueRange);
}

function makeFunctionDenoiser(
  name: string,
  schedule: NoiseSchedule | undefined,
  size: [number, number, number],
  predictFn: (xt: tf.Tensor4D, t: number) => tf.Tensor4D,
  valueRange: [number, number],
): Denoiser {
  const handle: CondHandle = { prompt: '', owner: name };
  const den: Denoiser = {
    name,
    prediction: schedule ? 'epsilon' : 'velocity',
    ...(schedule ? { schedule } : {}),
    imageSize: [size[0], size[1]],
    channels: size[2],
    valueRange,
    learnedVariance: false,
    neutralPrompt: '',
    emptyPrompt: '',
    prompts: [''],
    encodePrompt: (p) => {
      if (p !== '') throw unknownPromptError(name, p, ['']);
      return handle;
    },
    predict: (xt, t, cond) => {
      checkImage(den, xt, `${name}: x_t`);
      checkHandle(den, cond);
      return { eps: predictFn(xt, t) };
    },
  };
  return den;
}
