/**
 * A closed-form Denoiser for tests and demos: data x₀ ~ N(μ, s²) independently per pixel, with a
 * mean image μ (and spread s) per prompt. For such data the exact (MMSE) noise prediction is
 *   E[ε | x_t] = √(1−ᾱ_t) (x_t − √ᾱ_t μ) / (ᾱ_t s² + 1 − ᾱ_t)
 * (x_t and ε are jointly Gaussian with Cov(x_t, ε) = √(1−ᾱ_t), Var x_t = ᾱ_t s² + 1 − ᾱ_t), so
 * the one-step x̂₀ is the exact posterior mean E[x₀ | x_t]. Everything about the model is
 * configurable (size, channels, schedule, value range, variance type, batching) so the tests can
 * run Part A's algorithms on two very different "models".
 */
import * as tf from '@tensorflow/tfjs-core';
import { alphaBarAt, type NoiseSchedule } from '../schedulers/schedule';
import {
  batchItems,
  checkHandle,
  checkImage,
  unknownPromptError,
  type CondHandle,
  type DDPMDenoiser,
  type Prediction,
  type PredictItem,
} from './denoiser';

/** One prompt's data distribution: mean μ per pixel (a function of h, w, c, or a constant) and std s. */
export interface OracleClass {
  mu: number | ((h: number, w: number, c: number) => number);
  s: number;
}

export interface OracleOptions {
  name?: string;
  schedule: NoiseSchedule;
  /** [H, W]; default [8, 8]. */
  imageSize?: [number, number];
  /** Default 1. */
  channels?: number;
  /** Default [-1, 1]. */
  valueRange?: [number, number];
  /** Default false. When true the oracle also outputs v = varianceChannel(t, h, w, c) (a learned-range model). */
  learnedVariance?: boolean;
  /** The raw variance channel for learned_range models, in [-1, 1]; default 0.6·cos(π t / T). Same for every prompt. */
  varianceChannel?: (t: number, h: number, w: number, c: number) => number;
  /** Prompt → distribution. Must include neutralPrompt and emptyPrompt. */
  classes: Record<string, OracleClass>;
  /** Default 'neutral'. */
  neutralPrompt?: string;
  /** Default ''. */
  emptyPrompt?: string;
  /** Whether to offer predictMany (batched evaluation); default true. */
  batched?: boolean;
}

interface OracleHandle extends CondHandle {
  mu: Float32Array;
  s: number;
}

/** The per-pixel μ map of a class, flattened HWC. */
export function oracleMuMap(cls: OracleClass, h: number, w: number, c: number): Float32Array {
  const m = new Float32Array(h * w * c);
  for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) for (let k = 0; k < c; k++) {
    m[(i * w + j) * c + k] = typeof cls.mu === 'number' ? cls.mu : cls.mu(i, j, k);
  }
  return m;
}

/** Builds the oracle Denoiser. */
export function makeOracleDenoiser(o: OracleOptions): DDPMDenoiser {
  const [H, W] = o.imageSize ?? [8, 8];
  const C = o.channels ?? 1;
  const T = o.schedule.T;
  const vFn = o.varianceChannel ?? ((t: number) => 0.6 * Math.cos((Math.PI * t) / T));
  const name = o.name ?? `Gaussian oracle (${H}×${W}×${C}, ${o.schedule.name}, ${o.learnedVariance ? 'learned variance' : 'no variance output'})`;
  const neutralPrompt = o.neutralPrompt ?? 'neutral';
  const emptyPrompt = o.emptyPrompt ?? '';
  const prompts = Object.keys(o.classes);
  for (const p of [neutralPrompt, emptyPrompt]) {
    if (!(p in o.classes)) throw new Error(`oracle: classes must include the prompt ${JSON.stringify(p)}`);
  }
  const handles = new Map<string, OracleHandle>();

  function encodePrompt(prompt: string): CondHandle {
    let h = handles.get(prompt);
    if (!h) {
      const cls = o.classes[prompt];
      if (!cls || !Object.prototype.hasOwnProperty.call(o.classes, prompt)) throw unknownPromptError(name, prompt, prompts);
      h = { prompt, owner: name, mu: oracleMuMap(cls, H, W, C), s: cls.s };
      handles.set(prompt, h);
    }
    return h;
  }

  function predict(xt: tf.Tensor4D, t: number, cond: CondHandle): Prediction {
    checkImage(den, xt, 'oracle.predict: x_t');
    checkHandle(den, cond);
    const hd = cond as OracleHandle;
    const ab = alphaBarAt(o.schedule, t);
    const gain = Math.sqrt(1 - ab) / (ab * hd.s * hd.s + 1 - ab);
    return tf.tidy(() => {
      const mu = tf.tensor4d(hd.mu, [1, H, W, C]);
      const out: Prediction = { eps: tf.mul(tf.sub(xt, tf.mul(mu, Math.sqrt(ab))), gain) as tf.Tensor4D };
      if (den.learnedVariance) {
        const v = new Float32Array(H * W * C);
        for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) for (let k = 0; k < C; k++) v[(i * W + j) * C + k] = vFn(t, i, j, k);
        out.variance = tf.tile(tf.tensor4d(v, [1, H, W, C]), [xt.shape[0], 1, 1, 1]) as tf.Tensor4D;
      }
      return out as unknown as tf.TensorContainer;
    }) as unknown as Prediction;
  }

  /** Batched evaluation: one concatenated batch, μ and s per row, split back. Same maths as predict. */
  function predictMany(items: PredictItem[], t: number): Prediction[] {
    for (const it of items) {
      checkImage(den, it.xt, 'oracle.predictMany: x_t');
      checkHandle(den, it.cond);
    }
    const ab = alphaBarAt(o.schedule, t);
    return tf.tidy(() => {
      const { xt, sizes } = batchItems(items);
      const mus = tf.concat(
        items.map((it, i) => tf.tile(tf.tensor4d((it.cond as OracleHandle).mu, [1, H, W, C]), [sizes[i], 1, 1, 1])),
        0,
      );
      const gains = tf.tensor1d(
        items.flatMap((it, i) => {
          const s = (it.cond as OracleHandle).s;
          return new Array<number>(sizes[i]).fill(Math.sqrt(1 - ab) / (ab * s * s + 1 - ab));
        }),
      ).reshape([-1, 1, 1, 1]);
      const eps = tf.mul(tf.sub(xt, tf.mul(mus, Math.sqrt(ab))), gains) as tf.Tensor4D;
      const epsParts = tf.split(eps, sizes, 0) as tf.Tensor4D[];
      const singles = den.learnedVariance ? items.map((it) => predict(it.xt, t, it.cond).variance!) : [];
      return epsParts.map((e, i) => (singles.length ? { eps: e, variance: singles[i] } : { eps: e })) as unknown as tf.TensorContainer;
    }) as unknown as Prediction[];
  }

  const den: DDPMDenoiser = {
    name,
    schedule: o.schedule,
    imageSize: [H, W],
    channels: C,
    valueRange: o.valueRange ?? [-1, 1],
    learnedVariance: o.learnedVariance ?? false,
    neutralPrompt,
    emptyPrompt,
    prompts,
    encodePrompt,
    predict,
    ...(o.batched === false ? {} : { predictMany }),
  };
  return den;
}
