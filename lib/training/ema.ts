/**
 * Exponential moving average of the weights (Polyak averaging), as diffusers' EMAModel and
 * lucidrains' ema-pytorch keep it for sampling: after every optimizer step
 *   θ_ema ← d·θ_ema + (1 − d)·θ,   d = min(decay, (1 + n)/(10 + n)),
 * where n is the number of EMA updates before this one (n = 0 gives d = 0: the first update copies θ).
 * The warm-up keeps the average from being dominated by the random initial weights. Only trainable
 * parameters are averaged; BatchNorm running statistics are taken from the live model when the
 * EMA copy is saved (ema-pytorch's default), since they are already running averages.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UNet } from '../models/unet';

/** The decay of update number n (0-based) for a target decay: diffusers' EMAModel.get_decay with update_after_step = 0. */
export function emaDecayAt(decay: number, n: number): number {
  if (n <= 0) return 0;
  return Math.min(decay, (1 + n) / (10 + n));
}

export class Ema {
  readonly shadow = new Map<string, tf.Variable>();
  /** Updates taken so far (n of the next update). */
  updates = 0;

  /** Starts from a copy of params. decay ∈ [0, 1). */
  constructor(
    params: Map<string, tf.Variable>,
    readonly decay: number,
  ) {
    if (!(decay >= 0 && decay < 1)) throw new Error(`EMA decay must be in [0, 1), got ${decay}`);
    // tidy frees the clones the variables were made from.
    for (const [name, p] of params)
      this.shadow.set(
        name,
        tf.tidy(() => tf.variable(p.clone(), false)),
      );
  }

  /** One EMA update from the current params (call after each optimizer step). */
  update(params: Map<string, tf.Variable>): void {
    const d = emaDecayAt(this.decay, this.updates);
    for (const [name, s] of this.shadow) {
      const p = params.get(name);
      if (!p) throw new Error(`EMA: the model has no parameter "${name}"`);
      // θ_ema + (1−d)(θ − θ_ema): one fused form, exact copy when d = 0.
      tf.tidy(() => s.assign(d === 0 ? p : tf.add(s, tf.mul(tf.sub(p, s), 1 - d))));
    }
    this.updates++;
  }

  dispose(): void {
    for (const v of this.shadow.values()) v.dispose();
    this.shadow.clear();
  }
}

/**
 * Runs fn with the network to sample from: `net` itself without an EMA, else a temporary copy of it
 * holding the EMA parameters (`ema.shadow`, by parameter name) and net's BatchNorm statistics
 * (what Trainer.saveWeights writes for an EMA run). The copy is disposed when fn's promise settles;
 * net and the EMA are left as they were.
 */
export async function withEmaWeights<T>(
  net: UNet,
  ema: { shadow: Map<string, tf.Variable> } | null | undefined,
  fn: (net: UNet) => T | Promise<T>,
): Promise<T> {
  if (!ema) return await fn(net);
  const copy = new UNet(net.config);
  try {
    for (const [name, v] of copy.store.params) {
      const s = ema.shadow.get(name);
      if (!s) throw new Error(`withEmaWeights: the EMA has no parameter "${name}"`);
      v.assign(s);
    }
    for (const [name, v] of copy.store.buffers) {
      const b = net.store.buffers.get(name);
      if (!b) throw new Error(`withEmaWeights: the network has no buffer "${name}"`);
      v.assign(b);
    }
    return await fn(copy);
  } finally {
    copy.dispose();
  }
}
