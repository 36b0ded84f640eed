/**
 * Part B's class-conditioned MNIST UNet (lib/partb/unet.ts, SPEC §2.5) as a Part A Denoiser, so
 * every Part A algorithm runs on any laptop.
 *
 * - Images: [B,28,28,1] in [0,1] (the model's training range, SPEC §2.3; Part A's algorithms are
 *   range-agnostic, see denoiser.ts).
 * - Schedule: the model's DDPM schedule, linear 1e-4 → 0.02 over T = 300 (SPEC §2.4); the network
 *   takes the normalized time (t+1)/T for schedule index t (lib/partb/train.ts's convention).
 * - Variance: by default 'fixed_small', the posterior variance β̃ of the (strided) step, as
 *   diffusers' DDPMScheduler does by default. Part B's Alg. B.2 uses β_t ('fixed_large'); with
 *   a stride of one both work (the DDPM paper), but Part A's strides of 10 make β of the last
 *   step 10 → 0 about 0.005 (σ ≈ 0.07), which stays in the result as visible speckle, while β̃
 *   is about 1e-4 (σ ≈ 0.01). Pass varianceType 'fixed_large' for Alg. B.2's choice.
 * - Prompts name digits: "a handwritten 7", "7" or "seven" (any case) give the one-hot class
 *   vector of 7. The neutral prompt ("a handwritten digit"; "a high quality photo" is accepted as
 *   an alias so IF-minded code runs) and the empty prompt "" give the zero class vector, the
 *   unconditional input the model was trained with (p_uncond = 0.1).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ddpmSchedule, type NoiseSchedule } from './schedule';
import {
  batchItems,
  checkHandle,
  checkImage,
  unknownPromptError,
  type CondHandle,
  type Denoiser,
  type Prediction,
  type PredictItem,
} from './denoiser';
import type { UNet } from '../partb/unet';
import { loadUNetWeights } from '../partb/train';

const WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
export const MNIST_NEUTRAL_PROMPT = 'a handwritten digit';

interface MnistHandle extends CondHandle {
  /** the class vector, length 10: one-hot, or zeros for the neutral/empty prompt */
  c: Float32Array;
  /** digit 0–9, or −1 for the zero vector */
  digit: number;
}

/** The digit a prompt names (0–9), −1 for the neutral/empty prompts, undefined when unknown. */
export function parseDigitPrompt(prompt: string): number | undefined {
  const p = prompt.trim().toLowerCase();
  if (p === '' || p === MNIST_NEUTRAL_PROMPT || p === 'a high quality photo') return -1;
  const m = /^(?:an? (?:handwritten )?)?(?:digit )?([0-9]|zero|one|two|three|four|five|six|seven|eight|nine)$/.exec(p);
  if (!m) return undefined;
  const d = /^[0-9]$/.test(m[1]) ? Number(m[1]) : WORDS.indexOf(m[1]);
  return d;
}

/** The canonical prompt of a digit ("a handwritten 7"). */
export function digitPrompt(d: number): string {
  return `a handwritten ${d}`;
}

export interface MnistDenoiserOptions {
  /** Diffusion steps the model was trained with (default 300). */
  T?: number;
  /** Display name; default from the UNet's D and T. */
  name?: string;
  /** Reverse-step variance (default 'fixed_small'; 'fixed_large' = Alg. B.2's β_t). */
  varianceType?: 'fixed_small' | 'fixed_large';
}

/**
 * Wraps a class-conditioned UNet (kind 'class', eval mode) as a Denoiser.
 * The UNet stays owned by the caller unless dispose() is called on the denoiser.
 */
export function mnistDenoiser(net: UNet, opts: MnistDenoiserOptions = {}): Denoiser {
  if (net.config.kind !== 'class') {
    throw new Error(`the MNIST Denoiser needs the class-conditioned UNet (kind 'class'), got kind '${net.config.kind}': load the class model's weights`);
  }
  const T = opts.T ?? 300;
  const schedule: NoiseSchedule = ddpmSchedule(T);
  const size = net.config.size;
  const K = net.config.numClasses;
  const name = opts.name ?? `MNIST class-conditioned UNet (D=${net.config.D}, T=${T})`;
  const prompts = [...Array.from({ length: K }, (_, d) => digitPrompt(d)), MNIST_NEUTRAL_PROMPT, ''];
  const handles = new Map<string, MnistHandle>();

  function encodePrompt(prompt: string): CondHandle {
    if (typeof prompt !== 'string') throw new Error(`prompt must be a string, got ${typeof prompt}`);
    const d = parseDigitPrompt(prompt);
    if (d === undefined || d >= K) {
      const e = unknownPromptError(name, prompt, prompts);
      e.message += ' (or just "7" / "seven")';
      throw e;
    }
    let h = handles.get(prompt);
    if (!h) {
      const c = new Float32Array(K);
      if (d >= 0) c[d] = 1;
      h = { prompt, owner: name, c, digit: d };
      handles.set(prompt, h);
    }
    return h;
  }

  /** One UNet call on a concatenated batch: time (t+1)/T, class rows per item. */
  function evalBatch(xt: tf.Tensor4D, t: number, rows: Float32Array): tf.Tensor4D {
    if (!Number.isInteger(t) || t < 0 || t >= T) throw new Error(`timestep ${t} is outside 0..${T - 1} of ${name}`);
    const B = xt.shape[0];
    return tf.tidy(() =>
      net.apply({ x: xt, t: tf.fill([B, 1], (t + 1) / T) as tf.Tensor2D, c: tf.tensor2d(rows, [B, K]) }, false),
    );
  }

  function rowsFor(items: Array<{ n: number; cond: CondHandle }>): Float32Array {
    const total = items.reduce((s, it) => s + it.n, 0);
    const rows = new Float32Array(total * K);
    let r = 0;
    for (const it of items) {
      checkHandle(den, it.cond);
      for (let i = 0; i < it.n; i++, r++) rows.set((it.cond as MnistHandle).c, r * K);
    }
    return rows;
  }

  function predict(xt: tf.Tensor4D, t: number, cond: CondHandle): Prediction {
    checkImage(den, xt, 'MNIST predict: x_t');
    return { eps: evalBatch(xt, t, rowsFor([{ n: xt.shape[0], cond }])) };
  }

  function predictMany(items: PredictItem[], t: number): Prediction[] {
    for (const it of items) checkImage(den, it.xt, 'MNIST predictMany: x_t');
    const rows = rowsFor(items.map((it) => ({ n: it.xt.shape[0], cond: it.cond })));
    return tf.tidy(() => {
      const { xt, sizes } = batchItems(items);
      const eps = evalBatch(xt, t, rows);
      return (tf.split(eps, sizes, 0) as tf.Tensor4D[]).map((e) => ({ eps: e }));
    });
  }

  const den: Denoiser = {
    name,
    schedule,
    imageSize: [size, size],
    channels: 1,
    valueRange: [0, 1],
    varianceType: opts.varianceType ?? 'fixed_small',
    neutralPrompt: MNIST_NEUTRAL_PROMPT,
    emptyPrompt: '',
    prompts,
    encodePrompt,
    predict,
    predictMany,
    dispose: () => net.dispose(),
  };
  return den;
}

/** Loads Part B weights (a 'class' model's .weights file) as a Denoiser; T comes from the file. */
export function loadMnistDenoiser(file: string, opts: Pick<MnistDenoiserOptions, 'varianceType'> = {}): Denoiser {
  const { net, meta } = loadUNetWeights(file);
  const T = Number(meta?.config?.T ?? 300);
  return mnistDenoiser(net, { ...opts, T, name: `MNIST class-conditioned UNet (D=${net.config.D}, T=${T}, ${file.split('/').pop()})` });
}
