/**
 * An independent float64 plain-TypeScript reference of IF's UNet, written from diffusers'
 * semantics (SPEC §3.5) and reading parameters in their PyTorch layout (conv OIHW, Linear
 * [out,in]) — so it also checks the layout mapping of the TF.js implementation. Slow loops,
 * for tiny test models only.
 */

/** Parameters by diffusers name, PyTorch layout, float64. */
export type RefParams = Map<string, { shape: number[]; data: Float64Array }>;

/** An NHWC image batch in float64. */
export interface Img {
  B: number;
  H: number;
  W: number;
  C: number;
  d: Float64Array;
}

function p(P: RefParams, name: string): Float64Array {
  const t = P.get(name);
  if (!t) throw new Error(`reference: missing ${name}`);
  return t.data;
}
function pshape(P: RefParams, name: string): number[] {
  return P.get(name)!.shape;
}

/** erf by its Maclaurin series (float64 accurate to ~1e-12 for |x| < 5; ±1 beyond). */
export function erf(x: number): number {
  if (x > 5) return 1;
  if (x < -5) return -1;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

export function act(x: number, name: string): number {
  if (name === 'gelu') return 0.5 * x * (1 + erf(x / Math.SQRT2));
  if (name === 'silu' || name === 'swish') return x / (1 + Math.exp(-x));
  throw new Error(`reference: activation ${name}`);
}

/** rows × in → rows × out with W [out,in] and bias. */
export function linear(P: RefParams, name: string, x: Float64Array, rows: number, bias = true): Float64Array {
  const [out, inn] = pshape(P, `${name}.weight`);
  const w = p(P, `${name}.weight`);
  const b = bias ? p(P, `${name}.bias`) : undefined;
  const y = new Float64Array(rows * out);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < out; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inn; i++) s += w[o * inn + i] * x[r * inn + i];
      y[r * out + o] = s;
    }
  return y;
}

/** GroupNorm over channels-last data [B, N, C] (N = positions). */
export function groupNorm(
  P: RefParams,
  name: string,
  x: Float64Array,
  B: number,
  N: number,
  C: number,
  G: number,
  eps: number,
): Float64Array {
  const g = p(P, `${name}.weight`);
  const bb = p(P, `${name}.bias`);
  const cg = C / G;
  const y = new Float64Array(x.length);
  for (let b = 0; b < B; b++)
    for (let gi = 0; gi < G; gi++) {
      let m = 0;
      for (let n = 0; n < N; n++) for (let c = gi * cg; c < (gi + 1) * cg; c++) m += x[(b * N + n) * C + c];
      m /= N * cg;
      let v = 0;
      for (let n = 0; n < N; n++) for (let c = gi * cg; c < (gi + 1) * cg; c++) v += (x[(b * N + n) * C + c] - m) ** 2;
      v /= N * cg;
      const inv = 1 / Math.sqrt(v + eps);
      for (let n = 0; n < N; n++)
        for (let c = gi * cg; c < (gi + 1) * cg; c++) y[(b * N + n) * C + c] = (x[(b * N + n) * C + c] - m) * inv * g[c] + bb[c];
    }
  return y;
}

export function layerNorm(P: RefParams, name: string, x: Float64Array, rows: number, C: number, eps = 1e-5): Float64Array {
  return groupNorm(P, name, x, rows, 1, C, 1, eps);
}

/** Same-padded stride-1 conv, weight [O,I,k,k]. */
export function conv(P: RefParams, name: string, x: Img): Img {
  const [O, I, k] = pshape(P, `${name}.weight`);
  const w = p(P, `${name}.weight`);
  const b = p(P, `${name}.bias`);
  const pad = (k - 1) / 2;
  const { B, H, W } = x;
  const y = new Float64Array(B * H * W * O);
  for (let n = 0; n < B; n++)
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++)
        for (let o = 0; o < O; o++) {
          let s = b[o];
          for (let dy = 0; dy < k; dy++) {
            const yy = i + dy - pad;
            if (yy < 0 || yy >= H) continue;
            for (let dx = 0; dx < k; dx++) {
              const xx = j + dx - pad;
              if (xx < 0 || xx >= W) continue;
              const base = ((n * H + yy) * W + xx) * I;
              for (let c = 0; c < I; c++) s += w[((o * I + c) * k + dy) * k + dx] * x.d[base + c];
            }
          }
          y[((n * H + i) * W + j) * O + o] = s;
        }
  return { B, H, W, C: O, d: y };
}

function mapImg(x: Img, f: (v: number) => number): Img {
  return { ...x, d: x.d.map(f) };
}

function nearest2(x: Img): Img {
  const { B, H, W, C } = x;
  const d = new Float64Array(B * 4 * H * W * C);
  for (let n = 0; n < B; n++)
    for (let i = 0; i < 2 * H; i++)
      for (let j = 0; j < 2 * W; j++)
        for (let c = 0; c < C; c++) d[((n * 2 * H + i) * 2 * W + j) * C + c] = x.d[((n * H + (i >> 1)) * W + (j >> 1)) * C + c];
  return { B, H: 2 * H, W: 2 * W, C, d };
}

function avg2(x: Img): Img {
  const { B, H, W, C } = x;
  const h = H / 2;
  const w = W / 2;
  const d = new Float64Array(B * h * w * C);
  for (let n = 0; n < B; n++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++)
        for (let c = 0; c < C; c++) {
          let s = 0;
          for (const [a, b] of [
            [0, 0],
            [0, 1],
            [1, 0],
            [1, 1],
          ])
            s += x.d[((n * H + 2 * i + a) * W + 2 * j + b) * C + c];
          d[((n * h + i) * w + j) * C + c] = s / 4;
        }
  return { B, H: h, W: w, C, d };
}

export interface RefResnetOpts {
  groups: number;
  eps: number;
  act: string;
  scaleShift: boolean;
  outputScale: number;
  skipTimeAct: boolean;
  up?: boolean;
  down?: boolean;
}

/** diffusers ResnetBlock2D. temb [B, Dt]. */
export function resnet(P: RefParams, name: string, x: Img, temb: Float64Array, o: RefResnetOpts): Img {
  const { B } = x;
  let h = mapImg({ ...x, d: groupNorm(P, `${name}.norm1`, x.d, B, x.H * x.W, x.C, o.groups, o.eps) }, (v) => act(v, o.act));
  let skip = x;
  if (o.up) {
    h = nearest2(h);
    skip = nearest2(x);
  } else if (o.down) {
    h = avg2(h);
    skip = avg2(x);
  }
  h = conv(P, `${name}.conv1`, h);
  const Cout = h.C;
  const tin = o.skipTimeAct ? temb : temb.map((v) => act(v, o.act));
  const t = linear(P, `${name}.time_emb_proj`, tin, B);
  const N = h.H * h.W;
  if (o.scaleShift) {
    const n2 = groupNorm(P, `${name}.norm2`, h.d, B, N, Cout, o.groups, o.eps);
    for (let b = 0; b < B; b++)
      for (let k = 0; k < N; k++)
        for (let c = 0; c < Cout; c++) {
          const i = (b * N + k) * Cout + c;
          n2[i] = n2[i] * (1 + t[b * 2 * Cout + c]) + t[b * 2 * Cout + Cout + c];
        }
    h = { ...h, d: n2 };
  } else {
    const s = h.d.slice();
    for (let b = 0; b < B; b++) for (let k = 0; k < N; k++) for (let c = 0; c < Cout; c++) s[(b * N + k) * Cout + c] += t[b * Cout + c];
    h = { ...h, d: groupNorm(P, `${name}.norm2`, s, B, N, Cout, o.groups, o.eps) };
  }
  h = conv(
    P,
    `${name}.conv2`,
    mapImg(h, (v) => act(v, o.act)),
  );
  if (P.has(`${name}.conv_shortcut.weight`)) skip = conv(P, `${name}.conv_shortcut`, skip);
  return { ...h, d: h.d.map((v, i) => (v + skip.d[i]) / o.outputScale) };
}

function softmaxRows(s: Float64Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, s[r * cols + c]);
    let z = 0;
    for (let c = 0; c < cols; c++) z += s[r * cols + c] = Math.exp(s[r * cols + c] - m);
    for (let c = 0; c < cols; c++) s[r * cols + c] /= z;
  }
}

/** Attention with AttnAddedKVProcessor. enc [B, S, Dc] (already projected). */
export function addedKVAttention(
  P: RefParams,
  name: string,
  x: Img,
  enc: Float64Array,
  S: number,
  headDim: number,
  groups: number,
  onlyCross: boolean,
): Img {
  const { B, H, W, C } = x;
  const N = H * W;
  const Dc = enc.length / (B * S);
  const heads = C / headDim;
  const e = P.has(`${name}.norm_cross.weight`) ? groupNorm(P, `${name}.norm_cross`, enc, B, S, Dc, 32, 1e-5) : enc;
  const xn = groupNorm(P, `${name}.group_norm`, x.d, B, N, C, groups, 1e-5);
  const out = new Float64Array(x.d.length);
  for (let b = 0; b < B; b++) {
    const xb = xn.subarray(b * N * C, (b + 1) * N * C);
    const eb = e.subarray(b * S * Dc, (b + 1) * S * Dc);
    const q = linear(P, `${name}.to_q`, xb, N);
    const ks = [linear(P, `${name}.add_k_proj`, eb, S)];
    const vs = [linear(P, `${name}.add_v_proj`, eb, S)];
    let L = S;
    if (!onlyCross) {
      ks.push(linear(P, `${name}.to_k`, xb, N));
      vs.push(linear(P, `${name}.to_v`, xb, N));
      L += N;
    }
    const k = new Float64Array(L * C);
    const v = new Float64Array(L * C);
    k.set(ks[0]);
    v.set(vs[0]);
    if (!onlyCross) {
      k.set(ks[1], S * C);
      v.set(vs[1], S * C);
    }
    const o = new Float64Array(N * C);
    for (let hh = 0; hh < heads; hh++) {
      const s = new Float64Array(N * L);
      for (let i = 0; i < N; i++)
        for (let j = 0; j < L; j++) {
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += q[i * C + hh * headDim + d] * k[j * C + hh * headDim + d];
          s[i * L + j] = dot / Math.sqrt(headDim);
        }
      softmaxRows(s, N, L);
      for (let i = 0; i < N; i++)
        for (let d = 0; d < headDim; d++) {
          let acc = 0;
          for (let j = 0; j < L; j++) acc += s[i * L + j] * v[j * C + hh * headDim + d];
          o[i * C + hh * headDim + d] = acc;
        }
    }
    const y = linear(P, `${name}.to_out.0`, o, N);
    for (let i = 0; i < N * C; i++) out[b * N * C + i] = y[i] + x.d[b * N * C + i];
  }
  return { B, H, W, C, d: out };
}

/** AttentionPooling: x [B,S,D] → [B,D]. */
export function attentionPooling(
  P: RefParams,
  name: string,
  x: Float64Array,
  B: number,
  S: number,
  D: number,
  heads: number,
): Float64Array {
  const pos = p(P, `${name}.positional_embedding`);
  const dh = D / heads;
  const out = new Float64Array(B * D);
  for (let b = 0; b < B; b++) {
    const toks = new Float64Array((S + 1) * D);
    for (let d = 0; d < D; d++) {
      let m = 0;
      for (let s = 0; s < S; s++) m += x[(b * S + s) * D + d];
      toks[d] = m / S + pos[d];
    }
    toks.set(x.subarray(b * S * D, (b + 1) * S * D), D);
    const q = linear(P, `${name}.q_proj`, toks.subarray(0, D), 1);
    const k = linear(P, `${name}.k_proj`, toks, S + 1);
    const v = linear(P, `${name}.v_proj`, toks, S + 1);
    for (let h = 0; h < heads; h++) {
      // (q·s)(k·s) with s = dh^(-1/4) is q·k/√dh
      const w = new Float64Array(S + 1);
      for (let j = 0; j <= S; j++) {
        let dot = 0;
        for (let d = 0; d < dh; d++) dot += q[h * dh + d] * k[j * D + h * dh + d];
        w[j] = dot / Math.sqrt(dh);
      }
      softmaxRows(w, 1, S + 1);
      for (let d = 0; d < dh; d++) {
        let acc = 0;
        for (let j = 0; j <= S; j++) acc += w[j] * v[j * D + h * dh + d];
        out[b * D + h * dh + d] = acc;
      }
    }
  }
  return out;
}

/** Sinusoidal embedding, written from the closed form 10000^(−i/(half−shift)). */
export function sinusoid(t: number, dim: number, flip: boolean, shift: number): Float64Array {
  const half = dim / 2;
  const r = new Float64Array(dim);
  for (let i = 0; i < half; i++) {
    const arg = t / Math.pow(10000, i / (half - shift));
    r[flip ? i : half + i] = Math.cos(arg);
    r[flip ? half + i : i] = Math.sin(arg);
  }
  return r;
}

/** The whole UNet from a raw config.json object. sample [B,H,W,Cin] NHWC, text [B,S,De]. */
export function refUnet(
  cfg: Record<string, any>,
  P: RefParams,
  sample: Img,
  t: number,
  text: Float64Array,
  S: number,
  classLabel?: number,
): Img {
  const B = sample.B;
  const boc: number[] = cfg.block_out_channels;
  const nb = boc.length;
  const lpb: number[] = Array.isArray(cfg.layers_per_block) ? cfg.layers_per_block : Array(nb).fill(cfg.layers_per_block);
  const hd: number = cfg.attention_head_dim;
  const G: number = cfg.norm_num_groups;
  const eps: number = cfg.norm_eps;
  const a: string = cfg.act_fn;
  const De: number = cfg.encoder_hid_dim;
  const rows = (f: (b: number) => Float64Array, dim: number) => {
    const r = new Float64Array(B * dim);
    for (let b = 0; b < B; b++) r.set(f(b), b * dim);
    return r;
  };
  const mlp = (name: string, x: Float64Array) =>
    linear(
      P,
      `${name}.linear_2`,
      linear(P, `${name}.linear_1`, x, B).map((v) => act(v, a)),
      B,
    );
  let emb = mlp(
    'time_embedding',
    rows(() => sinusoid(t, boc[0], cfg.flip_sin_to_cos, cfg.freq_shift), boc[0]),
  );
  const Dt = emb.length / B;
  if (cfg.class_embed_type === 'timestep') {
    const ce = mlp(
      'class_embedding',
      rows(() => sinusoid(classLabel!, boc[0], cfg.flip_sin_to_cos, cfg.freq_shift), boc[0]),
    );
    emb = emb.map((v, i) => v + ce[i]);
  }
  const pooled = attentionPooling(
    P,
    'add_embedding.pool',
    layerNorm(P, 'add_embedding.norm1', text, B * S, De),
    B,
    S,
    De,
    cfg.addition_embed_type_num_heads,
  );
  const aug = layerNorm(P, 'add_embedding.norm2', linear(P, 'add_embedding.proj', pooled, B), B, Dt);
  emb = emb.map((v, i) => v + aug[i]);
  if (cfg.time_embedding_act_fn) emb = emb.map((v) => act(v, cfg.time_embedding_act_fn));
  const enc = linear(P, 'encoder_hid_proj', text, B * S);
  const ro = (scale: number, extra = {}): RefResnetOpts => ({
    groups: G,
    eps,
    act: a,
    scaleShift: cfg.resnet_time_scale_shift === 'scale_shift',
    outputScale: scale,
    skipTimeAct: !!cfg.resnet_skip_time_act,
    ...extra,
  });
  const rs = cfg.resnet_out_scale_factor ?? 1;
  let h = conv(P, 'conv_in', sample);
  const skips: Img[] = [h];
  for (let i = 0; i < nb; i++) {
    for (let j = 0; j < lpb[i]; j++) {
      h = resnet(P, `down_blocks.${i}.resnets.${j}`, h, emb, ro(rs));
      if (cfg.down_block_types[i] === 'SimpleCrossAttnDownBlock2D')
        h = addedKVAttention(P, `down_blocks.${i}.attentions.${j}`, h, enc, S, hd, G, false);
      skips.push(h);
    }
    if (i < nb - 1) {
      h = resnet(P, `down_blocks.${i}.downsamplers.0`, h, emb, ro(rs, { down: true }));
      skips.push(h);
    }
  }
  const ms = cfg.mid_block_scale_factor ?? 1;
  h = resnet(P, 'mid_block.resnets.0', h, emb, ro(ms));
  h = addedKVAttention(P, 'mid_block.attentions.0', h, enc, S, hd, G, false);
  h = resnet(P, 'mid_block.resnets.1', h, emb, ro(ms));
  for (let i = 0; i < nb; i++) {
    const n = lpb[nb - 1 - i] + 1;
    for (let j = 0; j < n; j++) {
      const s = skips.pop()!;
      const cat = new Float64Array(B * h.H * h.W * (h.C + s.C));
      for (let q = 0; q < B * h.H * h.W; q++) {
        cat.set(h.d.subarray(q * h.C, (q + 1) * h.C), q * (h.C + s.C));
        cat.set(s.d.subarray(q * s.C, (q + 1) * s.C), q * (h.C + s.C) + h.C);
      }
      h = resnet(P, `up_blocks.${i}.resnets.${j}`, { ...h, C: h.C + s.C, d: cat }, emb, ro(rs));
      if (cfg.up_block_types[i] === 'SimpleCrossAttnUpBlock2D')
        h = addedKVAttention(P, `up_blocks.${i}.attentions.${j}`, h, enc, S, hd, G, false);
    }
    if (i < nb - 1) h = resnet(P, `up_blocks.${i}.upsamplers.0`, h, emb, ro(rs, { up: true }));
  }
  h = mapImg({ ...h, d: groupNorm(P, 'conv_norm_out', h.d, B, h.H * h.W, h.C, G, eps) }, (v) => act(v, a));
  return conv(P, 'conv_out', h);
}
