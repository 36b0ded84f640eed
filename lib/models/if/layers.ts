/**
 * The layers DeepFloyd IF's UNet is built from, in NHWC TF.js, with diffusers' parameter names
 * (SPEC §3.5, §3.6). Each layer declares its parameters (name, PyTorch shape, layout kind) in a
 * `ParamRegistry` when it is constructed — so a model can be planned without allocating any
 * weights (shape-only mode) — and reads the converted TF.js tensors from a `Weights` map when run.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ParamKind, ParamSpec } from '../../weights/safetensors';

/** Parameter tensors by diffusers name, already in TF.js layout (HWIO convs, [in,out] linears). */
export type Weights = ReadonlyMap<string, tf.Tensor>;

/** Collects the parameters a model declares, in declaration order. */
export class ParamRegistry {
  readonly specs: ParamSpec[] = [];
  private names = new Set<string>();
  add(name: string, shape: number[], kind: ParamKind): string {
    if (this.names.has(name)) throw new Error(`internal: parameter ${name} declared twice`);
    this.names.add(name);
    this.specs.push({ name, shape, kind });
    return name;
  }
}

function get(w: Weights, name: string): tf.Tensor {
  const t = w.get(name);
  if (!t) throw new Error(`weight "${name}" is not loaded`);
  return t;
}

/** Supported activations (diffusers' get_activation names). GELU is the exact erf form (nn.GELU()). */
export type ActName = 'gelu' | 'silu' | 'swish' | 'mish';

export function activation(x: tf.Tensor, act: ActName): tf.Tensor {
  return tf.tidy(() => {
    switch (act) {
      case 'gelu':
        // 0.5·x·(1 + erf(x/√2))
        return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
      case 'silu':
      case 'swish':
        return tf.mul(x, tf.sigmoid(x));
      case 'mish':
        return tf.mul(x, tf.tanh(tf.softplus(x)));
    }
  });
}

/** nn.Conv2d with "same" padding (k−1)/2 and stride 1. x [B,H,W,Cin] → [B,H,W,Cout]. */
export class Conv2d {
  readonly w: string;
  readonly b: string;
  constructor(reg: ParamRegistry, readonly name: string, readonly cin: number, readonly cout: number, readonly k: number) {
    if (k % 2 !== 1) throw new Error(`${name}: kernel size ${k} is not odd; only odd "same" convolutions are supported`);
    this.w = reg.add(`${name}.weight`, [cout, cin, k, k], 'conv');
    this.b = reg.add(`${name}.bias`, [cout], 'vector');
  }
  apply(w: Weights, x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const pad = (this.k - 1) / 2;
      const y = tf.conv2d(x, get(w, this.w) as tf.Tensor4D, 1, pad === 0 ? 'valid' : [[0, 0], [pad, pad], [pad, pad], [0, 0]]);
      return tf.add(y, get(w, this.b)) as tf.Tensor4D;
    });
  }
}

/** nn.Linear on the last axis. x [..., in] → [..., out]. */
export class Linear {
  readonly w: string;
  readonly b?: string;
  constructor(reg: ParamRegistry, readonly name: string, readonly din: number, readonly dout: number, bias = true) {
    this.w = reg.add(`${name}.weight`, [dout, din], 'linear');
    if (bias) this.b = reg.add(`${name}.bias`, [dout], 'vector');
  }
  apply(w: Weights, x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const shape = x.shape;
      const x2 = x.reshape([-1, this.din]) as tf.Tensor2D;
      let y: tf.Tensor = tf.matMul(x2, get(w, this.w) as tf.Tensor2D);
      if (this.b) y = tf.add(y, get(w, this.b));
      return y.reshape([...shape.slice(0, -1), this.dout]);
    });
  }
}

/**
 * nn.GroupNorm(groups, C, eps, affine) on channels-last data: statistics per sample and group over
 * all positions and the group's channels (biased variance, as PyTorch).
 * x [B, ..., C] (image [B,H,W,C] or tokens [B,S,C]) → same shape.
 */
export class GroupNorm {
  readonly w: string;
  readonly b: string;
  constructor(reg: ParamRegistry, readonly name: string, readonly groups: number, readonly c: number, readonly eps: number) {
    if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0) {
      throw new Error(`${name}: ${c} channels cannot be split into ${groups} groups (norm_num_groups must divide every channel count)`);
    }
    this.w = reg.add(`${name}.weight`, [c], 'vector');
    this.b = reg.add(`${name}.bias`, [c], 'vector');
  }
  apply<T extends tf.Tensor>(w: Weights, x: T): T {
    return tf.tidy(() => {
      const shape = x.shape;
      const B = shape[0];
      const g = x.reshape([B, -1, this.groups, this.c / this.groups]);
      const { mean, variance } = tf.moments(g, [1, 3], true);
      const n = tf.mul(tf.sub(g, mean), tf.rsqrt(tf.add(variance, this.eps))).reshape(shape);
      return tf.add(tf.mul(n, get(w, this.w)), get(w, this.b)) as T;
    });
  }
}

/** nn.LayerNorm(C, eps) over the last axis. x [..., C] → same. */
export class LayerNorm {
  readonly w: string;
  readonly b: string;
  constructor(reg: ParamRegistry, readonly name: string, readonly c: number, readonly eps = 1e-5) {
    this.w = reg.add(`${name}.weight`, [c], 'vector');
    this.b = reg.add(`${name}.bias`, [c], 'vector');
  }
  apply<T extends tf.Tensor>(w: Weights, x: T): T {
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true);
      const n = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.eps)));
      return tf.add(tf.mul(n, get(w, this.w)), get(w, this.b)) as T;
    });
  }
}

/**
 * Sinusoidal timestep features, diffusers' get_timestep_embedding (computed in float64):
 * half = dim/2, f_i = exp(−ln(10000)·i/(half − shift)), e = [sin(t·f), cos(t·f)] (or [cos, sin]
 * when flipSinToCos), zero-padded to an odd dim. Returns [N, dim] float64 rows.
 */
export function timestepFeatures(ts: readonly number[], dim: number, flipSinToCos: boolean, shift: number, maxPeriod = 10000): Float64Array[] {
  const half = Math.floor(dim / 2);
  return ts.map((t) => {
    const row = new Float64Array(dim);
    for (let i = 0; i < half; i++) {
      const a = t * Math.exp((-Math.log(maxPeriod) * i) / (half - shift));
      const s = Math.sin(a);
      const c = Math.cos(a);
      row[i] = flipSinToCos ? c : s;
      row[half + i] = flipSinToCos ? s : c;
    }
    return row;
  });
}

/** timestepFeatures as a float32 tensor [N, dim]. */
export function timestepEmbedding(ts: readonly number[], dim: number, flipSinToCos: boolean, shift: number): tf.Tensor2D {
  const rows = timestepFeatures(ts, dim, flipSinToCos, shift);
  const data = new Float32Array(ts.length * dim);
  rows.forEach((r, i) => data.set(r, i * dim));
  return tf.tensor2d(data, [ts.length, dim]);
}

/** diffusers' TimestepEmbedding: linear_1 → act → linear_2. [N, in] → [N, out]. */
export class TimestepMLP {
  readonly l1: Linear;
  readonly l2: Linear;
  constructor(reg: ParamRegistry, name: string, din: number, dout: number, readonly act: ActName) {
    this.l1 = new Linear(reg, `${name}.linear_1`, din, dout);
    this.l2 = new Linear(reg, `${name}.linear_2`, dout, dout);
  }
  apply(w: Weights, x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => this.l2.apply(w, activation(this.l1.apply(w, x), this.act)) as tf.Tensor2D);
  }
}

/**
 * diffusers' AttentionPooling: the class token mean(x) + positional_embedding is prepended to the
 * tokens; one query from the class token attends over all tokens per head, with q and k each
 * scaled by d_head^(−1/4) (SPEC §3.5 step 3). x [B,S,D] → [B,D].
 */
export class AttentionPooling {
  readonly pos: string;
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  constructor(reg: ParamRegistry, name: string, readonly heads: number, readonly dim: number) {
    if (dim % heads !== 0) throw new Error(`${name}: embedding dim ${dim} is not divisible by ${heads} heads (addition_embed_type_num_heads)`);
    this.pos = reg.add(`${name}.positional_embedding`, [1, dim], 'raw');
    this.k = new Linear(reg, `${name}.k_proj`, dim, dim);
    this.q = new Linear(reg, `${name}.q_proj`, dim, dim);
    this.v = new Linear(reg, `${name}.v_proj`, dim, dim);
  }
  apply(w: Weights, x: tf.Tensor3D): tf.Tensor2D {
    return tf.tidy(() => {
      const [B, S, D] = x.shape;
      const h = this.heads;
      const dh = D / h;
      const cls = tf.add(tf.mean(x, 1, true), get(w, this.pos)) as tf.Tensor3D; // [B,1,D]
      const all = tf.concat([cls, x], 1); // [B,S+1,D]
      const split = (t: tf.Tensor, n: number) => t.reshape([B, n, h, dh]).transpose([0, 2, 1, 3]); // [B,h,n,dh]
      const scale = 1 / Math.sqrt(Math.sqrt(dh));
      const q = tf.mul(split(this.q.apply(w, cls), 1), scale);
      const k = tf.mul(split(this.k.apply(w, all), S + 1), scale);
      const v = split(this.v.apply(w, all), S + 1);
      const att = tf.softmax(tf.matMul(q, k, false, true)); // [B,h,1,S+1]
      return tf.matMul(att, v).transpose([0, 2, 1, 3]).reshape([B, D]) as tf.Tensor2D;
    });
  }
}

/** diffusers' TextTimeEmbedding: LayerNorm → AttentionPooling → Linear → LayerNorm. [B,S,De] → [B,Dt]. */
export class TextTimeEmbedding {
  readonly norm1: LayerNorm;
  readonly pool: AttentionPooling;
  readonly proj: Linear;
  readonly norm2: LayerNorm;
  constructor(reg: ParamRegistry, name: string, encDim: number, timeDim: number, heads: number) {
    this.norm1 = new LayerNorm(reg, `${name}.norm1`, encDim);
    this.pool = new AttentionPooling(reg, `${name}.pool`, heads, encDim);
    this.proj = new Linear(reg, `${name}.proj`, encDim, timeDim);
    this.norm2 = new LayerNorm(reg, `${name}.norm2`, timeDim);
  }
  apply(w: Weights, x: tf.Tensor3D): tf.Tensor2D {
    return tf.tidy(() => this.norm2.apply(w, this.proj.apply(w, this.pool.apply(w, this.norm1.apply(w, x)))) as tf.Tensor2D);
  }
}

/** Options of a ResnetBlock2D (diffusers' names). */
export interface ResnetOptions {
  groups: number;
  eps: number;
  act: ActName;
  timeNorm: 'default' | 'scale_shift';
  outputScale: number;
  skipTimeAct: boolean;
  up?: boolean;
  down?: boolean;
}

/**
 * diffusers' ResnetBlock2D (SPEC §3.5 step 6): norm1 → act → [up/down both paths] → conv1 →
 * time conditioning (add, or GroupNorm then ×(1+scale)+shift) → act → conv2, plus the 1×1
 * conv_shortcut when channels change, all ÷ output_scale_factor.
 * x [B,H,W,Cin], temb [B,Dt] → [B,H',W',Cout] (H' = 2H with up, H/2 with down).
 */
export class ResnetBlock2D {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly timeProj: Linear;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  readonly shortcut?: Conv2d;
  constructor(reg: ParamRegistry, name: string, readonly cin: number, readonly cout: number, tembDim: number, readonly o: ResnetOptions) {
    this.norm1 = new GroupNorm(reg, `${name}.norm1`, o.groups, cin, o.eps);
    this.conv1 = new Conv2d(reg, `${name}.conv1`, cin, cout, 3);
    this.timeProj = new Linear(reg, `${name}.time_emb_proj`, tembDim, o.timeNorm === 'scale_shift' ? 2 * cout : cout);
    this.norm2 = new GroupNorm(reg, `${name}.norm2`, o.groups, cout, o.eps);
    this.conv2 = new Conv2d(reg, `${name}.conv2`, cout, cout, 3);
    if (cin !== cout) this.shortcut = new Conv2d(reg, `${name}.conv_shortcut`, cin, cout, 1);
  }
  private resample(x: tf.Tensor4D): tf.Tensor4D {
    if (this.o.up) return tf.image.resizeNearestNeighbor(x, [x.shape[1] * 2, x.shape[2] * 2]);
    if (this.o.down) return tf.avgPool(x, 2, 2, 'valid');
    return x;
  }
  apply(w: Weights, x: tf.Tensor4D, temb: tf.Tensor2D): tf.Tensor4D {
    return tf.tidy(() => {
      let h = activation(this.norm1.apply(w, x), this.o.act) as tf.Tensor4D;
      let skip = x;
      if (this.o.up || this.o.down) {
        h = this.resample(h);
        skip = this.resample(x);
      }
      h = this.conv1.apply(w, h);
      const t = this.timeProj.apply(w, this.o.skipTimeAct ? temb : activation(temb, this.o.act));
      const B = x.shape[0];
      if (this.o.timeNorm === 'scale_shift') {
        const [scale, shift] = tf.split(t, 2, 1);
        h = this.norm2.apply(w, h);
        h = tf.add(tf.mul(h, tf.add(scale.reshape([B, 1, 1, this.cout]), 1)), shift.reshape([B, 1, 1, this.cout]));
      } else {
        h = this.norm2.apply(w, tf.add(h, t.reshape([B, 1, 1, this.cout])));
      }
      h = this.conv2.apply(w, activation(h, this.o.act) as tf.Tensor4D);
      if (this.shortcut) skip = this.shortcut.apply(w, skip);
      const out = tf.add(skip, h);
      return (this.o.outputScale === 1 ? out : tf.div(out, this.o.outputScale)) as tf.Tensor4D;
    });
  }
}

/**
 * diffusers' Attention with AttnAddedKVProcessor (SPEC §3.5 step 7): GroupNorm'ed image tokens
 * give q (and self k/v unless onlyCross); the text states, GroupNorm'ed by norm_cross, give
 * add_k_proj/add_v_proj keys/values, placed before the self ones; softmax(q·kᵀ/√d) v → to_out.0
 * → + residual. x [B,H,W,C], enc [B,S,Dc] → [B,H,W,C].
 */
export class AddedKVAttention {
  readonly groupNorm: GroupNorm;
  readonly toQ: Linear;
  readonly toK?: Linear;
  readonly toV?: Linear;
  readonly addK: Linear;
  readonly addV: Linear;
  readonly normCross?: GroupNorm;
  readonly toOut: Linear;
  readonly heads: number;
  constructor(
    reg: ParamRegistry,
    name: string,
    readonly c: number,
    readonly headDim: number,
    crossDim: number,
    groups: number,
    eps: number,
    readonly onlyCross: boolean,
    crossNorm: 'group_norm' | null,
  ) {
    if (c % headDim !== 0) throw new Error(`${name}: ${c} channels are not divisible by attention_head_dim ${headDim}`);
    this.heads = c / headDim;
    const inner = this.heads * headDim;
    this.groupNorm = new GroupNorm(reg, `${name}.group_norm`, groups, c, eps);
    this.toQ = new Linear(reg, `${name}.to_q`, c, inner);
    if (!onlyCross) {
      this.toK = new Linear(reg, `${name}.to_k`, c, inner);
      this.toV = new Linear(reg, `${name}.to_v`, c, inner);
    }
    this.addK = new Linear(reg, `${name}.add_k_proj`, crossDim, inner);
    this.addV = new Linear(reg, `${name}.add_v_proj`, crossDim, inner);
    // diffusers: norm_cross = GroupNorm(num_groups=32, added_kv_proj_dim) (cross_attention_norm_num_groups default)
    if (crossNorm === 'group_norm') this.normCross = new GroupNorm(reg, `${name}.norm_cross`, 32, crossDim, 1e-5);
    this.toOut = new Linear(reg, `${name}.to_out.0`, inner, c);
  }
  apply(w: Weights, x: tf.Tensor4D, enc: tf.Tensor3D): tf.Tensor4D {
    return tf.tidy(() => {
      const [B, H, W, C] = x.shape;
      const N = H * W;
      const S = enc.shape[1];
      const h = this.heads;
      const d = this.headDim;
      const e = this.normCross ? this.normCross.apply(w, enc) : enc;
      const xn = this.groupNorm.apply(w, x).reshape([B, N, C]);
      const split = (t: tf.Tensor, n: number) => t.reshape([B, n, h, d]).transpose([0, 2, 1, 3]); // [B,h,n,d]
      const q = split(this.toQ.apply(w, xn), N);
      let k = split(this.addK.apply(w, e), S);
      let v = split(this.addV.apply(w, e), S);
      if (this.toK && this.toV) {
        k = tf.concat([k, split(this.toK.apply(w, xn), N)], 2);
        v = tf.concat([v, split(this.toV.apply(w, xn), N)], 2);
      }
      const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(d)));
      const o = tf.matMul(att, v).transpose([0, 2, 1, 3]).reshape([B, N, h * d]);
      return tf.add(this.toOut.apply(w, o).reshape([B, H, W, C]), x) as tf.Tensor4D;
    });
  }
}
