/**
 * Part B's MNIST UNets (lib/models/unet.ts, SPEC §2.4–2.5) as Denoisers, so every sampling
 * algorithm (Part A's on any laptop, and Part B's own Algorithms B.2/B.4) runs on them.
 *
 * - Images: [B,28,28,1] in [0,1] (the model's training range, SPEC §2.3; the algorithms are
 *   range-agnostic, see denoiser.ts).
 * - DDPM models (prediction 'epsilon'): the linear schedule 1e-4 → 0.02 over T = 300 (SPEC §2.4); the
 *   network takes timeInput(t, T) = (t+1)/T (lib/models/conditioning.ts).
 * - Flow models (prediction 'velocity', mnistFlowDenoiser): no schedule; predict takes a flow time
 *   t ∈ [0, 1] and returns the velocity v̂ (the network's time input is t itself, flowTimeInputs).
 * - No variance output: the sampler chooses the variance (Part A's loops default to the posterior
 *   β̃, "fixed_small"; Part B's Alg. B.2 uses β_t, "fixed_large": see lib/algorithms/ddpmSampling.ts).
 * - Prompts (class model) name digits: "a handwritten 7", "7" or "seven" (any case) give the
 *   one-hot class vector of 7. The neutral prompt ("a handwritten digit"; "a high quality photo" is
 *   accepted as an alias so IF-minded code runs) and the empty prompt "" give the zero class
 *   vector, the unconditional input the model was trained with (p_uncond = 0.1). `encodeLabels`
 *   makes one handle holding a digit per sample (Part B's class grids). The time-conditioned model
 *   takes only the neutral and the empty prompt.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ddpmSchedule, type NoiseSchedule } from '../schedulers/schedule';
import {
  batchItems,
  checkHandle,
  checkImage,
  releasedModelError,
  unknownPromptError,
  type CondHandle,
  type Denoiser,
  type Prediction,
  type PredictItem,
} from './denoiser';
import { oneHot, timeInputs } from './conditioning';
import { flowTimeInputs } from '../schedulers/flowMatching';
import type { PredictionType } from '../schedulers/scheduler';
import type { UNet } from './unet';

const WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
export const MNIST_NEUTRAL_PROMPT = 'a handwritten digit';

interface MnistHandle extends CondHandle {
  /** class rows: K values (the whole batch), or n·K (one row per sample, from encodeLabels) */
  c: Float32Array;
  /** samples the rows are for (0 = any batch size) */
  n: number;
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
  /** Display name; default from the UNet's D and T (and `source`). */
  name?: string;
  /** Where the weights came from (a file name), added to the default name. */
  source?: string;
}

/** A Denoiser over an MNIST UNet, with per-sample class handles. */
export interface MnistDenoiser extends Denoiser {
  /** One handle conditioning sample i on digit labels[i] (class model only; −1 = unconditional). */
  encodeLabels(labels: ArrayLike<number>): CondHandle;
}

/** An MNIST DDPM: it has its noise schedule. */
export type MnistDDPMDenoiser = MnistDenoiser & { readonly schedule: NoiseSchedule };

/**
 * Wraps a time- or class-conditioned DDPM UNet (eval mode) as a Denoiser predicting ε̂.
 * The UNet stays owned by the caller unless dispose() is called on the denoiser.
 */
export function mnistDenoiser(net: UNet, opts: MnistDenoiserOptions = {}): MnistDDPMDenoiser {
  return makeMnistDenoiser(net, 'epsilon', opts) as MnistDDPMDenoiser;
}

/** Wraps a time- or class-conditioned flow-matching UNet (eval mode) as a Denoiser predicting the velocity v̂. */
export function mnistFlowDenoiser(net: UNet, opts: Omit<MnistDenoiserOptions, 'T'> = {}): MnistDenoiser {
  return makeMnistDenoiser(net, 'velocity', opts);
}

function makeMnistDenoiser(net: UNet, prediction: PredictionType, opts: MnistDenoiserOptions): MnistDenoiser {
  const kind = net.config.kind;
  if (!net.hasTimeInput) {
    throw new Error(`an MNIST Denoiser needs a time- or class-conditioned UNet, got kind '${kind}': load the time or class model's weights`);
  }
  const flow = prediction === 'velocity';
  const T = opts.T ?? 300;
  const schedule: NoiseSchedule | undefined = flow ? undefined : ddpmSchedule(T);
  const size = net.config.size;
  const K = net.classCount;
  const from = opts.source ? `, ${opts.source}` : '';
  const name =
    opts.name ?? (flow ? `MNIST ${kind}-conditioned flow UNet (D=${net.config.D}${from})` : `MNIST ${kind}-conditioned UNet (D=${net.config.D}, T=${T}${from})`);
  const prompts = [...Array.from({ length: K }, (_, d) => digitPrompt(d)), MNIST_NEUTRAL_PROMPT, ''];
  const handles = new Map<string, MnistHandle>();

  let released = false;
  /** Every method that needs the network calls this first. */
  function live(): void {
    if (released || net.released) throw releasedModelError(name);
  }

  function encodePrompt(prompt: string): CondHandle {
    live();
    if (typeof prompt !== 'string') throw new Error(`prompt must be a string, got ${typeof prompt}`);
    const d = parseDigitPrompt(prompt);
    if (d === undefined || d >= K) {
      const e = unknownPromptError(name, prompt, prompts);
      e.message += ' (or just "7" / "seven")';
      throw e;
    }
    let h = handles.get(prompt);
    if (!h) {
      h = { prompt, owner: name, c: oneHot([d], K), n: 0 };
      handles.set(prompt, h);
    }
    return h;
  }

  function encodeLabels(labels: ArrayLike<number>): CondHandle {
    live();
    if (K === 0) throw new Error(`${name} is not class-conditioned: it takes no digit labels`);
    return { prompt: `digits [${Array.from(labels).join(',')}]`, owner: name, c: oneHot(labels, K), n: labels.length } as MnistHandle;
  }

  /** One UNet call on a concatenated batch: time input timeInput(t, T) (flow: t itself), class rows per item. */
  function evalBatch(xt: tf.Tensor4D, t: number, rows: Float32Array): tf.Tensor4D {
    if (flow) {
      if (!(Number.isFinite(t) && t >= 0 && t <= 1)) throw new Error(`flow time ${t} is outside [0, 1] of ${name}`);
    } else if (!Number.isInteger(t) || t < 0 || t >= T) throw new Error(`timestep ${t} is outside 0..${T - 1} of ${name}`);
    const B = xt.shape[0];
    return tf.tidy(() => {
      const tIn = flow ? flowTimeInputs(t, B) : timeInputs(t, T, B);
      return net.apply({ x: xt, t: tIn, c: K ? tf.tensor2d(rows, [B, K]) : undefined }, false);
    });
  }

  function rowsFor(items: Array<{ n: number; cond: CondHandle }>): Float32Array {
    const total = items.reduce((s, it) => s + it.n, 0);
    const rows = new Float32Array(total * K);
    let r = 0;
    for (const it of items) {
      checkHandle(den, it.cond);
      const h = it.cond as MnistHandle;
      if (h.n) {
        if (h.n !== it.n) throw new Error(`${h.prompt}: ${h.n} labels for a batch of ${it.n} images`);
        rows.set(h.c, r * K);
        r += it.n;
      } else for (let i = 0; i < it.n; i++, r++) rows.set(h.c, r * K);
    }
    return rows;
  }

  function predict(xt: tf.Tensor4D, t: number, cond: CondHandle): Prediction {
    live();
    checkImage(den, xt, 'MNIST predict: x_t');
    return { eps: evalBatch(xt, t, rowsFor([{ n: xt.shape[0], cond }])) };
  }

  function predictMany(items: PredictItem[], t: number): Prediction[] {
    live();
    for (const it of items) checkImage(den, it.xt, 'MNIST predictMany: x_t');
    const rows = rowsFor(items.map((it) => ({ n: it.xt.shape[0], cond: it.cond })));
    return tf.tidy(() => {
      const { xt, sizes } = batchItems(items);
      const eps = evalBatch(xt, t, rows);
      return (tf.split(eps, sizes, 0) as tf.Tensor4D[]).map((e) => ({ eps: e }));
    });
  }

  const den: MnistDenoiser = {
    name,
    prediction,
    ...(schedule ? { schedule } : {}),
    imageSize: [size, size],
    channels: 1,
    valueRange: [0, 1],
    learnedVariance: false,
    neutralPrompt: MNIST_NEUTRAL_PROMPT,
    emptyPrompt: '',
    prompts,
    encodePrompt,
    encodeLabels,
    predict,
    predictMany,
    get released() {
      return released || net.released;
    },
    dispose: () => {
      released = true;
      net.dispose();
    },
  };
  return den;
}
