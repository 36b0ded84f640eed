/**
 * The Part B UNets (SPEC §2.1–2.5, Figures 1–2 and 8–9), written on plain tfjs-core.
 *
 * Parameters are tf.Variables in a flat, PyTorch-like name → tensor map ("down1.conv.conv.weight"),
 * so a checkpoint is a flat dict. Layouts are TF.js's, not PyTorch's (documented per op):
 *   Conv2d weight        [kh, kw, Cin, Cout]   (tf.conv2d filter)
 *   ConvTranspose weight [kh, kw, Cout, Cin]   (tf.conv2dTranspose filter)
 *   Linear weight        [Fin, Fout]           (x · W; PyTorch stores the transpose)
 * BatchNorm keeps running statistics as non-trainable buffers (PyTorch semantics: momentum 0.1,
 * eps 1e-5, normalization by the biased batch variance, running variance updated with the
 * unbiased one). Training mode uses batch statistics; eval mode uses the running ones.
 *
 * Tensors are NHWC: images [B,28,28,1]; the normalized time t/T is [B,1]; the class vector is
 * [B,10] (one-hot, or all zeros for the unconditional branch of classifier-free guidance).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../tensor/random';
import { batchNormGeluTrain, batchNormTrain, fusedBatchNormGelu, gelu } from '../tensor/fusedOps';
import { levers } from '../engine/levers';
import { NATIVE_CONV_GELU } from '../engine/native';
import { releasedModelError } from './denoiser';
import type { UNetKind } from '../weights/runConfig';

/** Which of the three Part B networks (defined with the weights headers that store it). */
export type { UNetKind };

export interface UNetConfig {
  /** 'denoiser' = unconditional UNet (§2.2), 'time' = time-conditioned (§2.4), 'class' = time + class (§2.5). */
  kind: UNetKind;
  /** Hidden channels D. */
  D: number;
  /** Number of classes of the class-conditioned UNet (10 for MNIST). */
  numClasses?: number;
  /** Image side (28 for MNIST); must be divisible by 4 so that the bottleneck is 7×7-like. */
  size?: number;
  /**
   * How the time-only UNet injects t (docs/equations.md, UNet conditioning): 'additive' (the 2024 course,
   * unflatten + t1, up1 + t2) or 'multiplicative' (the current course, unflatten · t1, up1 · t2).
   * The class UNet is c·h + t either way. Absent = additive (files written before the variant existed).
   */
  timeConditioning?: TimeConditioning;
}

/** The inputs each UNet kind takes besides the image (Figures 1, 8 and 9 of SPEC.md). */
export const UNET_INPUTS: Readonly<Record<UNetKind, { readonly time: boolean; readonly classes: boolean }>> = {
  denoiser: { time: false, classes: false },
  time: { time: true, classes: false },
  class: { time: true, classes: true },
};

/** The time-only UNet's injection of t: added (2024 course) or multiplied (current course). */
export type TimeConditioning = 'additive' | 'multiplicative';

const BN_MOMENTUM = 0.1;
const BN_EPS = 1e-5;

/** Exact GELU (one definition for the project, in lib/tensor/fusedOps). */
export { gelu };

/**
 * Holds the parameters and buffers of a network and the mode (train/eval).
 * Running-stat updates computed during a training forward pass are queued and applied by
 * commitBatchNorm() after the optimizer step, outside any gradient tape.
 */
export class ParamStore {
  readonly params = new Map<string, tf.Variable>();
  readonly buffers = new Map<string, tf.Variable>();
  training = false;
  /** The kind of every convolution by name (so that foldBatchNorm scales the output-channel axis). */
  readonly convKinds = new Map<string, 'conv2d' | 'convTranspose2d'>();
  /** Eval-mode BatchNorm folding in force for the current forward pass (set by UNet.apply; see foldBatchNorm). */
  folding?: BatchNormFolding;
  /**
   * The last folding computed, kept across eval passes (a sampler calls the network hundreds of
   * times with the same weights), with the tensors it was computed from: every parameter and
   * buffer's dataId, which a Variable replaces on each assign (Adam, EMA swaps, loading weights,
   * running statistics), so a changed weight always refolds.
   */
  private foldCache?: { from: object[]; folding: BatchNormFolding };
  private pending: Array<[tf.Variable, tf.Tensor]> = [];

  constructor(private readonly rng: Rng) {}

  /** Creates a trainable parameter with PyTorch's default init U(-1/√fanIn, 1/√fanIn). */
  param(name: string, shape: number[], fanIn: number, init: 'uniform' | 'ones' | 'zeros' = 'uniform'): tf.Variable {
    let v = this.params.get(name);
    if (v) return v;
    const bound = 1 / Math.sqrt(fanIn);
    const t =
      init === 'ones' ? tf.ones(shape) : init === 'zeros' ? tf.zeros(shape) : tf.randomUniform(shape, -bound, bound, 'float32', this.rng.nextSeed());
    v = tf.variable(t, true);
    t.dispose();
    this.params.set(name, v);
    return v;
  }

  /** Creates a non-trainable buffer (BatchNorm running statistics). */
  buffer(name: string, shape: number[], fill: number): tf.Variable {
    let v = this.buffers.get(name);
    if (v) return v;
    const t = tf.fill(shape, fill);
    v = tf.variable(t, false);
    t.dispose();
    this.buffers.set(name, v);
    return v;
  }

  /** Queues a buffer update (the new value is kept until commitBatchNorm). */
  queue(v: tf.Variable, value: tf.Tensor): void {
    this.pending.push([v, tf.keep(value)]);
  }

  /** Applies the queued running-stat updates of the last training forward pass. */
  commitBatchNorm(): void {
    for (const [v, t] of this.pending) {
      v.assign(t);
      t.dispose();
    }
    this.pending = [];
  }

  /** Drops queued updates (e.g. after a failed step). */
  discardPending(): void {
    for (const [, t] of this.pending) t.dispose();
    this.pending = [];
  }

  /** Every tensor (params then buffers) as a flat name → tensor map. */
  named(): Map<string, tf.Variable> {
    return new Map([...this.params, ...this.buffers]);
  }

  /** Total number of trainable scalars. */
  countParams(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  /**
   * The BatchNorm folding of the current weights (foldBatchNorm): the cached one while no parameter
   * or buffer has been assigned since it was computed, otherwise a new one (the old one is freed).
   * The tensors belong to the store (kept out of every tidy; freed by dispose).
   */
  currentFolding(): BatchNormFolding {
    const from = [...this.params.values(), ...this.buffers.values()].map((v) => v.dataId);
    const cached = this.foldCache;
    if (cached && cached.from.length === from.length && cached.from.every((id, i) => id === from[i])) return cached.folding;
    this.dropFolding();
    let folding: BatchNormFolding | undefined;
    tf.tidy(() => {
      // The tidy frees the intermediates (scales, shifts); the folded weights and biases are kept.
      folding = foldBatchNorm(this);
      for (const c of folding.convs.values()) {
        tf.keep(c.weight);
        tf.keep(c.bias);
      }
    });
    // Not cached before the first forward pass has named the convolutions (UNet.build's pass).
    if (this.convKinds.size > 0) this.foldCache = { from, folding: folding! };
    return folding!;
  }

  /** Frees the cached folding (dispose, or weights that changed). */
  private dropFolding(): void {
    if (!this.foldCache) return;
    for (const c of this.foldCache.folding.convs.values()) tf.dispose([c.weight, c.bias]);
    this.foldCache = undefined;
  }

  dispose(): void {
    this.dropFolding();
    this.discardPending();
    for (const v of this.params.values()) v.dispose();
    for (const v of this.buffers.values()) v.dispose();
    this.params.clear();
    this.buffers.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Simple ops (Figure 2, ops 1–6). Each takes the store, a name prefix and NHWC input.

/** BatchNorm2d over N,H,W per channel. x [B,H,W,C] → same. */
export function batchNorm(s: ParamStore, name: string, x: tf.Tensor4D): tf.Tensor4D {
  if (s.folding?.bns.has(name)) return x; // already folded into the preceding convolution
  const C = x.shape[3];
  const gamma = s.param(`${name}.weight`, [C], 1, 'ones');
  const beta = s.param(`${name}.bias`, [C], 1, 'zeros');
  const rMean = s.buffer(`${name}.running_mean`, [C], 0);
  const rVar = s.buffer(`${name}.running_var`, [C], 1);
  if (s.training) {
    // Fused BN (hand-written gradient through the batch statistics): 3x faster on wasm.
    const { y, mean, variance } = batchNormTrain(x, gamma as tf.Tensor1D, beta as tf.Tensor1D, BN_EPS);
    queueRunningStats(s, name, x, mean, variance);
    return y;
  }
  return tf.batchNorm(x, rMean as tf.Tensor1D, rVar as tf.Tensor1D, beta, gamma, BN_EPS) as tf.Tensor4D;
}

/** Queues the running-statistics update of BatchNorm `name` from a training batch x's statistics. */
function queueRunningStats(s: ParamStore, name: string, x: tf.Tensor4D, mean: tf.Tensor1D, variance: tf.Tensor1D): void {
  const C = x.shape[3];
  const rMean = s.buffer(`${name}.running_mean`, [C], 0);
  const rVar = s.buffer(`${name}.running_var`, [C], 1);
  const n = x.shape[0] * x.shape[1] * x.shape[2];
  // Running stats use the unbiased variance, as PyTorch does; no gradient flows through them.
  const unbiased = n > 1 ? tf.mul(variance, n / (n - 1)) : variance;
  s.queue(rMean, tf.add(tf.mul(rMean, 1 - BN_MOMENTUM), tf.mul(mean, BN_MOMENTUM)));
  s.queue(rVar, tf.add(tf.mul(rVar, 1 - BN_MOMENTUM), tf.mul(unbiased, BN_MOMENTUM)));
}

/** What a convolution adds to its output: its bias, nothing (a fused BatchNorm takes the bias), or its bias then GELU. */
type Epilogue = 'bias' | 'none' | 'bias+gelu';

/**
 * GELU(BatchNorm `P.bn`(convolution `P.conv`)), ops 1, 2, 3 and 5: `conv(epilogue)` runs the
 * convolution. In training with the addon's fused kernels (fusedBatchNormGelu) the convolution
 * runs without its bias, which the fused BN+GELU takes (its gradient comes out of the BN
 * gradient's pass). In eval with the BN folded into the convolution, the convolution's bias and
 * GELU in one kernel where the addon has one. Otherwise gelu(batchNorm(conv with its bias)).
 */
function convBatchNormGelu(s: ParamStore, name: string, conv: (epilogue: Epilogue) => tf.Tensor4D): tf.Tensor4D {
  const bn = `${name}.bn`;
  if (!s.training && s.folding?.bns.has(bn)) return conv('bias+gelu');
  if (!s.training || !fusedBatchNormGelu()) return gelu(batchNorm(s, bn, conv('bias')));
  const y = conv('none');
  const C = y.shape[3];
  const bias = s.params.get(`${name}.conv.bias`)!;
  const gamma = s.param(`${bn}.weight`, [C], 1, 'ones');
  const beta = s.param(`${bn}.bias`, [C], 1, 'zeros');
  const { z, mean, variance } = batchNormGeluTrain(y, bias as tf.Tensor1D, gamma as tf.Tensor1D, beta as tf.Tensor1D, BN_EPS);
  queueRunningStats(s, bn, y, mean, variance);
  return z;
}

/**
 * Plain Conv2d(k, stride, pad) with bias. x [B,H,W,Cin] → [B,H',W',Cout]; weight [k,k,Cin,Cout].
 * `epilogue` 'none': the bias is created but not added (a fused BatchNorm after it takes it);
 * 'bias+gelu': GELU of the output.
 */
export function conv2d(
  s: ParamStore,
  name: string,
  x: tf.Tensor4D,
  cout: number,
  k: number,
  stride: number,
  pad: number,
  epilogue: Epilogue = 'bias',
): tf.Tensor4D {
  const folded = s.folding?.convs.get(name);
  if (folded) return conv2dWith(x, folded.weight, folded.bias, stride, pad, epilogue === 'bias+gelu');
  s.convKinds.set(name, 'conv2d');
  const cin = x.shape[3];
  const w = s.param(`${name}.weight`, [k, k, cin, cout], cin * k * k);
  const b = s.param(`${name}.bias`, [cout], cin * k * k);
  return conv2dWith(x, w as tf.Tensor4D, epilogue === 'none' ? null : (b as tf.Tensor1D), stride, pad, epilogue === 'bias+gelu');
}

/**
 * Conv2d with explicit weight [k,k,Cin,Cout] and bias [Cout] (or none); the bias add is fused into
 * the convolution (lever fusedBias; off = a separate add); `gelu`: then GELU, in the same oneDNN
 * primitive when the addon serves the backend and no gradient is being recorded (lever fusedConvGelu).
 */
function conv2dWith(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D | null, stride: number, pad: number, withGelu = false): tf.Tensor4D {
  const padding = [
    [0, 0],
    [pad, pad],
    [pad, pad],
    [0, 0],
  ] as unknown as Parameters<typeof tf.conv2d>[3];
  if (withGelu && b !== null && levers().fusedConvGelu && levers().native && !tf.engine().isTapeOn() && tf.getKernel(NATIVE_CONV_GELU, tf.getBackend()))
    return tf.engine().runKernel(NATIVE_CONV_GELU, { x, filter: w, bias: b }, {
      strides: [stride, stride],
      pad: padding,
      dataFormat: 'NHWC',
      dilations: [1, 1],
      dimRoundingMode: undefined,
      activation: 'linear',
    } as never) as tf.Tensor4D;
  let y: tf.Tensor4D;
  if (b === null) y = tf.conv2d(x, w, stride, padding);
  else if (!levers().fusedBias) y = tf.add(tf.conv2d(x, w, stride, padding), b);
  else y = tf.fused.conv2d({ x, filter: w, strides: stride, pad: padding, bias: b }) as tf.Tensor4D;
  return withGelu ? gelu(y) : y;
}

// ---------------------------------------------------------------------------------------------
// Eval-mode BatchNorm folding, an inference-time transform (lever foldBatchNorm; training needs
// the batch statistics): with a = γ/√(running_var + eps), BN(conv(x; W, b)) = conv(x; W·a, (b − μ)·a + β),
// a scaled copy of the weight per output channel. Saves the BN pass and the separate bias add.

/** A convolution with its BatchNorm folded in: weight W·a (same layout as W) and bias (b − μ)·a + β. */
export interface FoldedConv {
  weight: tf.Tensor4D;
  bias: tf.Tensor1D;
}

/** The folded convolutions of a store by convolution name, and the names of the BatchNorms folded into them. */
export interface BatchNormFolding {
  convs: Map<string, FoldedConv>;
  bns: Set<string>;
}

/**
 * Folds every BatchNorm `P.bn` into the convolution `P.conv` whose output it normalizes (the
 * naming of ops 1–3 and 5 below), from the current weights and running statistics. While a
 * store's `folding` is set, conv2d/convTranspose2d use the folded weights and batchNorm passes
 * its input through. The tensors are new (the caller disposes them, e.g. by a tf.tidy).
 */
export function foldBatchNorm(s: ParamStore): BatchNormFolding {
  const folding: BatchNormFolding = { convs: new Map(), bns: new Set() };
  for (const [conv, kind] of s.convKinds) {
    if (!conv.endsWith('.conv')) continue;
    const bn = `${conv.slice(0, -'.conv'.length)}.bn`;
    const w = s.params.get(`${conv}.weight`);
    const b = s.params.get(`${conv}.bias`);
    if (!w || !b || !s.params.has(`${bn}.weight`)) continue;
    const cout = b.shape[0];
    const [a, shift] = foldedBN(s, bn, b as tf.Tensor1D);
    // Conv2d weight [k,k,Cin,Cout] is scaled on its last axis, ConvTranspose2d weight [k,k,Cout,Cin] on axis 2.
    const weight = (kind === 'conv2d' ? tf.mul(w, a) : tf.mul(w, a.reshape([cout, 1]))) as tf.Tensor4D;
    folding.convs.set(conv, { weight, bias: shift });
    folding.bns.add(bn);
  }
  return folding;
}

/** Folded per-output-channel scale a [C] and shift (b − μ)·a + β [C] of the BN called `bn`. */
function foldedBN(s: ParamStore, bn: string, bias: tf.Tensor1D): [tf.Tensor1D, tf.Tensor1D] {
  const C = bias.shape[0];
  const gamma = s.param(`${bn}.weight`, [C], 1, 'ones');
  const beta = s.param(`${bn}.bias`, [C], 1, 'zeros');
  const rMean = s.buffer(`${bn}.running_mean`, [C], 0);
  const rVar = s.buffer(`${bn}.running_var`, [C], 1);
  const a = tf.mul(gamma, tf.rsqrt(tf.add(rVar, BN_EPS))) as tf.Tensor1D;
  return [a, tf.add(tf.mul(tf.sub(bias, rMean), a), beta) as tf.Tensor1D];
}

/**
 * Runs fn (a forward pass on s) with the store's BatchNorms folded when `fold` is set: the folded
 * weights of the weights as they are now, computed once and reused until a weight changes
 * (ParamStore.currentFolding).
 */
function withFoldedBatchNorm<T>(s: ParamStore, fold: boolean, fn: () => T): T {
  if (!fold) return fn();
  s.folding = s.currentFolding();
  try {
    return fn();
  } finally {
    s.folding = undefined;
  }
}

/**
 * ConvTranspose2d(k, stride, pad) with bias, output side (H−1)·s − 2p + k as PyTorch.
 * x [B,H,W,Cin] → [B,H',W',Cout]; weight [k,k,Cout,Cin]. PyTorch's fan-in for the init is Cout·k·k.
 */
export function convTranspose2d(
  s: ParamStore,
  name: string,
  x: tf.Tensor4D,
  cout: number,
  k: number,
  stride: number,
  pad: number,
  epilogue: Epilogue = 'bias',
): tf.Tensor4D {
  const folded = s.folding?.convs.get(name);
  let y: tf.Tensor4D;
  if (folded) y = convTranspose2dWith(x, folded.weight, folded.bias, stride, pad);
  else {
    s.convKinds.set(name, 'convTranspose2d');
    const cin = x.shape[3];
    const w = s.param(`${name}.weight`, [k, k, cout, cin], cout * k * k);
    const b = s.param(`${name}.bias`, [cout], cout * k * k);
    y = convTranspose2dWith(x, w as tf.Tensor4D, epilogue === 'none' ? null : (b as tf.Tensor1D), stride, pad);
  }
  return epilogue === 'bias+gelu' ? gelu(y) : y;
}

/** ConvTranspose2d with explicit weight [k,k,Cout,Cin] and bias [Cout] (or none). */
function convTranspose2dWith(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D | null, stride: number, pad: number): tf.Tensor4D {
  const [B, H, W] = x.shape;
  const [k, , cout] = w.shape;
  const Ho = (H - 1) * stride - 2 * pad + k;
  const Wo = (W - 1) * stride - 2 * pad + k;
  // The only paddings used are (k=4,s=2,p=1) and (k=7,s=7,p=0); TF's 'same' resp. 'valid' give
  // exactly PyTorch's output size and alignment for them.
  let mode: 'same' | 'valid';
  if (pad === 0 && Ho === (H - 1) * stride + k) mode = 'valid';
  else if (Ho === H * stride && k - stride === 2 * pad) mode = 'same';
  else throw new Error(`convTranspose2d(k=${k}, s=${stride}, p=${pad}) is not supported`);
  const y = tf.conv2dTranspose(x, w, [B, Ho, Wo, cout], stride, mode);
  return b === null ? y : tf.add(y, b);
}

/** (1) Conv: Conv2d(3,1,1) + BN + GELU. [B,H,W,Din] → [B,H,W,Dout]. */
export function convOp(s: ParamStore, name: string, x: tf.Tensor4D, dout: number): tf.Tensor4D {
  return convBatchNormGelu(s, name, (epilogue) => conv2d(s, `${name}.conv`, x, dout, 3, 1, 1, epilogue));
}

/** (2) DownConv: Conv2d(3,2,1) + BN + GELU. [B,H,W,Din] → [B,H/2,W/2,Dout]. */
export function downConv(s: ParamStore, name: string, x: tf.Tensor4D, dout: number): tf.Tensor4D {
  return convBatchNormGelu(s, name, (epilogue) => conv2d(s, `${name}.conv`, x, dout, 3, 2, 1, epilogue));
}

/** (3) UpConv: ConvTranspose2d(4,2,1) + BN + GELU. [B,H,W,Din] → [B,2H,2W,Dout]. */
export function upConv(s: ParamStore, name: string, x: tf.Tensor4D, dout: number): tf.Tensor4D {
  return convBatchNormGelu(s, name, (epilogue) => convTranspose2d(s, `${name}.conv`, x, dout, 4, 2, 1, epilogue));
}

/** (4) Flatten: AvgPool2d(7) + GELU. [B,7,7,D] → [B,1,1,D] (the pool covers the whole 7×7 map). */
export function flatten(x: tf.Tensor4D): tf.Tensor4D {
  if (x.shape[1] !== 7 || x.shape[2] !== 7) throw new Error(`Flatten expects a 7×7 map, got ${x.shape[1]}×${x.shape[2]}`);
  return gelu(tf.mean(x, [1, 2], true) as tf.Tensor4D);
}

/** (5) Unflatten: ConvTranspose2d(7,7,0) + BN + GELU. [B,1,1,D] → [B,7,7,D]. */
export function unflatten(s: ParamStore, name: string, x: tf.Tensor4D, dout: number): tf.Tensor4D {
  return convBatchNormGelu(s, name, (epilogue) => convTranspose2d(s, `${name}.conv`, x, dout, 7, 7, 0, epilogue));
}

/** (6) Concat along channels: [B,H,W,D1], [B,H,W,D2] → [B,H,W,D1+D2] (first argument first). */
export function concat(a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor4D {
  return tf.concat([a, b], 3);
}

// Composed ops (Figure 2, ops 7–10).

/** (7) ConvBlock: Conv(Din→Dout), Conv(Dout→Dout). */
export function convBlock(s: ParamStore, name: string, x: tf.Tensor4D, dout: number): tf.Tensor4D {
  return convOp(s, `${name}.conv2`, convOp(s, `${name}.conv1`, x, dout), dout);
}

/** (8) DownBlock: DownConv(Din→Dout), ConvBlock(Dout→Dout). [B,H,W,Din] → [B,H/2,W/2,Dout]. */
export function downBlock(s: ParamStore, name: string, x: tf.Tensor4D, dout: number): tf.Tensor4D {
  return convBlock(s, `${name}.block`, downConv(s, `${name}.down`, x, dout), dout);
}

/** (9) UpBlock: UpConv(Din→Dout), ConvBlock(Dout→Dout). [B,H,W,Din] → [B,2H,2W,Dout]. */
export function upBlock(s: ParamStore, name: string, x: tf.Tensor4D, dout: number): tf.Tensor4D {
  return convBlock(s, `${name}.block`, upConv(s, `${name}.up`, x, dout), dout);
}

/** Linear layer: x [B,Fin] → [B,Fout]; weight [Fin,Fout]. */
export function linear(s: ParamStore, name: string, x: tf.Tensor2D, fout: number): tf.Tensor2D {
  const fin = x.shape[1];
  const w = s.param(`${name}.weight`, [fin, fout], fin);
  const b = s.param(`${name}.bias`, [fout], fin);
  return tf.add(tf.matMul(x, w as tf.Tensor2D), b);
}

/** (10) FCBlock: Linear(Fin→Fout) + GELU, Linear(Fout→Fout) (no activation after). [B,Fin] → [B,Fout]. */
export function fcBlock(s: ParamStore, name: string, x: tf.Tensor2D, fout: number): tf.Tensor2D {
  return linear(s, `${name}.fc2`, gelu(linear(s, `${name}.fc1`, x, fout)), fout);
}

// ---------------------------------------------------------------------------------------------

/** Inputs of a forward pass. */
export interface UNetInputs {
  /** Images [B,28,28,1]. */
  x: tf.Tensor4D;
  /** Normalized time t/T in [0,1], [B,1] (time and class models). */
  t?: tf.Tensor2D;
  /** Class vectors [B,numClasses] (class model): one-hot, or zeros for "unconditional". */
  c?: tf.Tensor2D;
}

/**
 * The UNet of Figure 1, with the time / class injections of Figures 8–9 when configured.
 * Parameters are created on the first call (build()).
 */
export class UNet {
  readonly store: ParamStore;
  readonly config: Required<UNetConfig>;
  private isReleased = false;

  /** @param seed initialization seed (PyTorch-like uniform init) */
  constructor(config: UNetConfig, seed = 0) {
    this.config = { numClasses: 10, size: 28, timeConditioning: 'additive', ...config };
    if (!Object.hasOwn(UNET_INPUTS, config.kind)) throw new Error(`unknown UNet kind "${config.kind}": use ${Object.keys(UNET_INPUTS).join(', ')}`);
    if (this.config.timeConditioning !== 'additive' && this.config.timeConditioning !== 'multiplicative')
      throw new Error(`unknown time conditioning "${String(this.config.timeConditioning)}": use additive or multiplicative`);
    if (!(Number.isInteger(config.D) && config.D > 0)) throw new Error(`UNet hidden size D must be a positive integer, got ${config.D}`);
    this.store = new ParamStore(new Rng(seed));
    this.build();
    // The eval-mode folding is held by the model from the start (and refolded in place when the
    // weights change), so that a sampling loop's tensor count stays flat from its first call.
    if (levers().foldBatchNorm) this.store.currentFolding();
  }

  /** Creates every parameter by running one eval pass on a dummy batch of one. */
  private build(): void {
    const { size, numClasses, kind } = this.config;
    tf.tidy(() => {
      const x = tf.zeros([1, size, size, 1]) as tf.Tensor4D;
      const t = UNET_INPUTS[kind].time ? (tf.zeros([1, 1]) as tf.Tensor2D) : undefined;
      const c = UNET_INPUTS[kind].classes ? (tf.zeros([1, numClasses]) as tf.Tensor2D) : undefined;
      this.apply({ x, t, c }, false);
    });
  }

  /** Checks input shapes; throws a one-line error naming the problem. */
  checkInputs({ x, t, c }: UNetInputs): void {
    const { size, numClasses, kind } = this.config;
    if (x.rank !== 4 || x.shape[1] !== size || x.shape[2] !== size || x.shape[3] !== 1) {
      throw new Error(`UNet expects images of shape [B,${size},${size},1] (NHWC grayscale), got [${x.shape.join(',')}]; reshape MNIST batches to [B,28,28,1]`);
    }
    const B = x.shape[0];
    if (UNET_INPUTS[kind].time && (!t || t.rank !== 2 || t.shape[0] !== B || t.shape[1] !== 1)) {
      throw new Error(`the ${kind}-conditioned UNet needs t of shape [${B},1] (t/T in [0,1]), got ${t ? `[${t.shape.join(',')}]` : 'none'}`);
    }
    if (UNET_INPUTS[kind].classes && (!c || c.rank !== 2 || c.shape[0] !== B || c.shape[1] !== numClasses)) {
      throw new Error(`the class-conditioned UNet needs c of shape [${B},${numClasses}] (one-hot or zeros), got ${c ? `[${c.shape.join(',')}]` : 'none'}`);
    }
  }

  /**
   * Forward pass. @param training BatchNorm mode (batch stats + queued running-stat updates).
   * Returns [B,28,28,1]: the denoised image (denoiser) or the predicted noise ε̂ (DDPMs).
   * In eval mode, with lever foldBatchNorm on, the BatchNorms are folded into their
   * convolutions for this pass (foldBatchNorm), from the current weights.
   */
  apply(inputs: UNetInputs, training = false): tf.Tensor4D {
    // After dispose() the store is empty and a pass would make fresh random weights (param()).
    if (this.released) throw releasedModelError(`the ${this.config.kind} UNet (D=${this.config.D})`);
    this.checkInputs(inputs);
    const s = this.store;
    s.training = training;
    const D = this.config.D;
    const multiplicative = this.config.timeConditioning === 'multiplicative';
    const { x, t, c } = inputs;
    return tf.tidy(() => withFoldedBatchNorm(s, !training && levers().foldBatchNorm, () => {
      const e1 = convBlock(s, 'conv_in', x, D); // D×28×28
      const e2 = downBlock(s, 'down1', e1, D); // D×14×14
      const e3 = downBlock(s, 'down2', e2, 2 * D); // 2D×7×7
      const flat = flatten(e3); // 2D×1×1
      let u0 = unflatten(s, 'unflatten', flat, 2 * D); // 2D×7×7
      if (t) {
        const t1 = fcBlock(s, 'fc1_t', t, 2 * D).reshape([-1, 1, 1, 2 * D]);
        if (c) {
          const c1 = fcBlock(s, 'fc1_c', c, 2 * D).reshape([-1, 1, 1, 2 * D]);
          u0 = tf.add(tf.mul(c1, u0), t1); // §2.5: unflatten = c1·unflatten + t1
        } else if (multiplicative) {
          u0 = tf.mul(u0, t1); // current course §2.1: unflatten = unflatten · t1
        } else {
          u0 = tf.add(u0, t1); // §2.4: unflatten = unflatten + t1
        }
      }
      let u1 = upBlock(s, 'up1', concat(e3, u0), D); // D×14×14
      if (t) {
        const t2 = fcBlock(s, 'fc2_t', t, D).reshape([-1, 1, 1, D]);
        if (c) {
          const c2 = fcBlock(s, 'fc2_c', c, D).reshape([-1, 1, 1, D]);
          u1 = tf.add(tf.mul(c2, u1), t2); // §2.5: up1 = c2·up1 + t2 (the spec's "+ t1" is a typo)
        } else if (multiplicative) {
          u1 = tf.mul(u1, t2); // current course §2.1: up1 = up1 · t2
        } else {
          u1 = tf.add(u1, t2); // §2.4: up1 = up1 + t2
        }
      }
      const u2 = upBlock(s, 'up2', concat(e2, u1), D); // D×28×28
      const h = convBlock(s, 'conv_out', concat(e1, u2), D); // D×28×28
      return conv2d(s, 'out', h, 1, 3, 1, 1); // 1×28×28, no BN/GELU
    }));
  }

  /** Whether the network takes a time input (every kind but the denoiser). */
  get hasTimeInput(): boolean {
    return UNET_INPUTS[this.config.kind].time;
  }

  /** Classes of its one-hot class input; 0 for networks without one. */
  get classCount(): number {
    return UNET_INPUTS[this.config.kind].classes ? this.config.numClasses : 0;
  }

  /** True once dispose() has freed the weights; apply then throws. */
  get released(): boolean {
    return this.isReleased;
  }

  dispose(): void {
    this.isReleased = true;
    this.store.dispose();
  }
}
