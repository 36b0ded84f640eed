/**
 * The subset of diffusers' UNet2DConditionModel that DeepFloyd IF uses (SPEC §3.2, §3.5), built
 * from the model's own `unet/config.json` — widths, depths, heads and options are never
 * hard-coded, since IF-I-L, IF-I-XL and IF-II-L differ.
 *
 * Construction only plans: it declares every parameter (diffusers state_dict name, PyTorch shape)
 * in `specs` without allocating anything, so the expected key list and parameter count of a 4.3B
 * model cost nothing (shape-only mode). `loadUnet` then streams a safetensors checkpoint into a
 * `Weights` map, tensor by tensor, converting fp16/bf16 to float32 and PyTorch layouts to TF.js.
 *
 * Call: `unet.apply(weights, sample [B,H,W,Cin], t, text [B,S,encoder_hid_dim], classLabels?)`
 * → [B,H,W,out_channels] (IF: 6 = ε and the learned-range variance v).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ActName, activation, AddedKVAttention, Conv2d, GroupNorm, Linear, ParamRegistry, ResnetBlock2D, ResnetOptions, TextTimeEmbedding, timestepEmbedding, TimestepMLP, Weights } from './layers';
import { formatKeyReport, KeyReport, matchKeys, ParamSpec, SafetensorsSource, tfShape, torchToTfLayout } from '../../weights/safetensors';

const DOWN_TYPES = ['ResnetDownsampleBlock2D', 'SimpleCrossAttnDownBlock2D'] as const;
const UP_TYPES = ['ResnetUpsampleBlock2D', 'SimpleCrossAttnUpBlock2D'] as const;
type DownType = (typeof DOWN_TYPES)[number];
type UpType = (typeof UP_TYPES)[number];

/** The config fields this implementation reads, normalized (lists expanded, defaults filled). */
export interface IFUnetConfig {
  sampleSize: number;
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];
  layersPerBlock: number[];
  downBlockTypes: DownType[];
  upBlockTypes: UpType[];
  attentionHeadDim: number[];
  crossAttentionDim: number;
  crossAttentionNorm: 'group_norm' | null;
  encoderHidDim: number | null;
  additionEmbedType: 'text' | null;
  additionEmbedNumHeads: number;
  classEmbedType: 'timestep' | null;
  actFn: ActName;
  timeEmbeddingActFn: ActName | null;
  timeEmbedDim: number;
  flipSinToCos: boolean;
  freqShift: number;
  normNumGroups: number;
  normEps: number;
  resnetTimeScaleShift: 'default' | 'scale_shift';
  resnetSkipTimeAct: boolean;
  resnetOutScaleFactor: number;
  midBlockScaleFactor: number;
  onlyCrossAttention: boolean[];
  midBlockOnlyCrossAttention: boolean;
  convInKernel: number;
  convOutKernel: number;
  centerInputSample: boolean;
}

const ACTS: ActName[] = ['gelu', 'silu', 'swish', 'mish'];

/**
 * Reads a diffusers `unet/config.json` object. Throws one line naming the field, its value and
 * what is supported, for any value this implementation does not handle.
 */
export function parseUnetConfig(raw: Record<string, unknown>, source = 'unet/config.json'): IFUnetConfig {
  const bad = (field: string, why: string): never => {
    throw new Error(`${source}: ${field} = ${JSON.stringify(raw[field])} is not supported by the IF UNet (${why})`);
  };
  const val = <T>(field: string, def: T): T => (raw[field] === undefined || raw[field] === null ? def : (raw[field] as T));
  const num = (field: string, def?: number): number => {
    const v = raw[field] ?? def;
    if (typeof v !== 'number' || !Number.isFinite(v)) bad(field, 'a number is required');
    return v as number;
  };
  const blockOut = raw.block_out_channels;
  if (!Array.isArray(blockOut) || !blockOut.length || !blockOut.every((c) => Number.isInteger(c) && c > 0)) bad('block_out_channels', 'a list of positive integers is required');
  const nb = (blockOut as number[]).length;
  const perBlock = <T>(field: string, def: T, check: (v: unknown) => boolean): T[] => {
    const v = raw[field] ?? def;
    if (Array.isArray(v)) {
      if (v.length !== nb || !v.every(check)) bad(field, `one valid value per block (${nb}) is required`);
      return v as T[];
    }
    if (!check(v)) bad(field, 'invalid value');
    return Array(nb).fill(v);
  };
  const down = raw.down_block_types;
  if (!Array.isArray(down) || down.length !== nb || !down.every((t) => (DOWN_TYPES as readonly string[]).includes(t))) {
    bad('down_block_types', `IF uses ${DOWN_TYPES.join(' / ')}, one per block_out_channels entry`);
  }
  const up = raw.up_block_types;
  if (!Array.isArray(up) || up.length !== nb || !up.every((t) => (UP_TYPES as readonly string[]).includes(t))) {
    bad('up_block_types', `IF uses ${UP_TYPES.join(' / ')}, one per block_out_channels entry`);
  }
  if (val<string>('mid_block_type', 'UNetMidBlock2DCrossAttn') !== 'UNetMidBlock2DSimpleCrossAttn') bad('mid_block_type', 'only UNetMidBlock2DSimpleCrossAttn');
  if (val('time_embedding_type', 'positional') !== 'positional') bad('time_embedding_type', 'only "positional"');
  const actFn = val('act_fn', 'silu') as ActName;
  if (!ACTS.includes(actFn)) bad('act_fn', `one of ${ACTS.join(', ')}`);
  const teAct = val<ActName | null>('time_embedding_act_fn', null);
  if (teAct !== null && !ACTS.includes(teAct)) bad('time_embedding_act_fn', `null or one of ${ACTS.join(', ')}`);
  const tss = val('resnet_time_scale_shift', 'default');
  if (tss !== 'default' && tss !== 'scale_shift') bad('resnet_time_scale_shift', '"default" or "scale_shift"');
  const cad = raw.cross_attention_dim;
  if (typeof cad !== 'number') bad('cross_attention_dim', 'a single integer');
  const can = val<string | null>('cross_attention_norm', null);
  if (can !== null && can !== 'group_norm') bad('cross_attention_norm', 'null or "group_norm"');
  const encHid = val<number | null>('encoder_hid_dim', null);
  const encHidType = val<string | null>('encoder_hid_dim_type', encHid !== null ? 'text_proj' : null);
  if (encHidType !== null && encHidType !== 'text_proj') bad('encoder_hid_dim_type', 'null or "text_proj"');
  if (encHidType === 'text_proj' && encHid === null) bad('encoder_hid_dim_type', '"text_proj" needs encoder_hid_dim');
  const addType = val<string | null>('addition_embed_type', null);
  if (addType !== null && addType !== 'text') bad('addition_embed_type', 'null or "text"');
  const classType = val<string | null>('class_embed_type', null);
  if (classType !== null && classType !== 'timestep') bad('class_embed_type', 'null or "timestep" (the stage-II noise level)');
  if (val('class_embeddings_concat', false)) bad('class_embeddings_concat', 'only false');
  if (val('dual_cross_attention', false)) bad('dual_cross_attention', 'only false');
  if (val('time_cond_proj_dim', null) !== null) bad('time_cond_proj_dim', 'only null');
  if (val('timestep_post_act', null) !== null) bad('timestep_post_act', 'only null');
  if (val('addition_time_embed_dim', null) !== null) bad('addition_time_embed_dim', 'only null');
  if (val('num_class_embeds', null) !== null) bad('num_class_embeds', 'only null');
  const tlpb = raw.transformer_layers_per_block;
  if (tlpb !== undefined && tlpb !== null && tlpb !== 1 && !(Array.isArray(tlpb) && tlpb.every((x) => x === 1))) bad('transformer_layers_per_block', 'only 1');
  const onlyCross = perBlock<boolean>('only_cross_attention', false, (v) => typeof v === 'boolean');
  const midOnly = val<boolean | null>('mid_block_only_cross_attention', null) ?? (typeof raw.only_cross_attention === 'boolean' ? (raw.only_cross_attention as boolean) : false);
  const convIn = num('conv_in_kernel', 3);
  const convOut = num('conv_out_kernel', 3);
  if (convIn % 2 !== 1) bad('conv_in_kernel', 'an odd kernel size');
  if (convOut % 2 !== 1) bad('conv_out_kernel', 'an odd kernel size');
  const headDim = perBlock<number>('attention_head_dim', 8, (v) => Number.isInteger(v) && (v as number) > 0);
  const cfg: IFUnetConfig = {
    sampleSize: num('sample_size', 64),
    inChannels: num('in_channels', 4),
    outChannels: num('out_channels', 4),
    blockOutChannels: blockOut as number[],
    layersPerBlock: perBlock<number>('layers_per_block', 2, (v) => Number.isInteger(v) && (v as number) > 0),
    downBlockTypes: down as DownType[],
    upBlockTypes: up as UpType[],
    attentionHeadDim: headDim,
    crossAttentionDim: cad as number,
    crossAttentionNorm: can as 'group_norm' | null,
    encoderHidDim: encHid,
    additionEmbedType: addType as 'text' | null,
    additionEmbedNumHeads: num('addition_embed_type_num_heads', 64),
    classEmbedType: classType as 'timestep' | null,
    actFn,
    timeEmbeddingActFn: teAct,
    timeEmbedDim: val<number | null>('time_embedding_dim', null) ?? (blockOut as number[])[0] * 4,
    flipSinToCos: val('flip_sin_to_cos', true),
    freqShift: num('freq_shift', 0),
    normNumGroups: num('norm_num_groups', 32),
    normEps: num('norm_eps', 1e-5),
    resnetTimeScaleShift: tss as 'default' | 'scale_shift',
    resnetSkipTimeAct: val('resnet_skip_time_act', false),
    resnetOutScaleFactor: num('resnet_out_scale_factor', 1),
    midBlockScaleFactor: num('mid_block_scale_factor', 1),
    onlyCrossAttention: onlyCross,
    midBlockOnlyCrossAttention: midOnly,
    convInKernel: convIn,
    convOutKernel: convOut,
    centerInputSample: val('center_input_sample', false),
  };
  return cfg;
}

type Block = { kind: 'resnet'; r: ResnetBlock2D } | { kind: 'attn'; a: AddedKVAttention };

interface DownBlock {
  layers: { resnet: ResnetBlock2D; attn?: AddedKVAttention }[];
  downsampler?: ResnetBlock2D;
}
interface UpBlock {
  layers: { resnet: ResnetBlock2D; attn?: AddedKVAttention }[];
  upsampler?: ResnetBlock2D;
}

/** The IF UNet: a plan of layers and parameter specs; weights live in a separate `Weights` map. */
export class IFUnet {
  /** Every parameter with its diffusers name and PyTorch shape, in declaration order. */
  readonly specs: ParamSpec[];
  private readonly convIn: Conv2d;
  private readonly timeMlp: TimestepMLP;
  private readonly classMlp?: TimestepMLP;
  private readonly addEmbedding?: TextTimeEmbedding;
  private readonly encProj?: Linear;
  private readonly down: DownBlock[] = [];
  private readonly mid: Block[] = [];
  private readonly up: UpBlock[] = [];
  private readonly normOut: GroupNorm;
  private readonly convOut: Conv2d;

  constructor(readonly config: IFUnetConfig) {
    const c = config;
    const reg = new ParamRegistry();
    const boc = c.blockOutChannels;
    const td = c.timeEmbedDim;
    this.convIn = new Conv2d(reg, 'conv_in', c.inChannels, boc[0], c.convInKernel);
    this.timeMlp = new TimestepMLP(reg, 'time_embedding', boc[0], td, c.actFn);
    if (c.classEmbedType === 'timestep') this.classMlp = new TimestepMLP(reg, 'class_embedding', boc[0], td, c.actFn);
    if (c.encoderHidDim !== null) this.encProj = new Linear(reg, 'encoder_hid_proj', c.encoderHidDim, c.crossAttentionDim);
    if (c.additionEmbedType === 'text') {
      this.addEmbedding = new TextTimeEmbedding(reg, 'add_embedding', c.encoderHidDim ?? c.crossAttentionDim, td, c.additionEmbedNumHeads);
    }
    const ropt = (scale: number, extra: Partial<ResnetOptions> = {}): ResnetOptions => ({
      groups: c.normNumGroups,
      eps: c.normEps,
      act: c.actFn,
      timeNorm: c.resnetTimeScaleShift,
      outputScale: scale,
      skipTimeAct: c.resnetSkipTimeAct,
      ...extra,
    });
    const attn = (name: string, ch: number, headDim: number, onlyCross: boolean) =>
      new AddedKVAttention(reg, name, ch, headDim, c.crossAttentionDim, c.normNumGroups, 1e-5, onlyCross, c.crossAttentionNorm);

    // Down path (diffusers' UNet2DConditionModel.__init__ order).
    let out = boc[0];
    for (let i = 0; i < boc.length; i++) {
      const inCh = out;
      out = boc[i];
      const last = i === boc.length - 1;
      const p = `down_blocks.${i}`;
      const blk: DownBlock = { layers: [] };
      for (let j = 0; j < c.layersPerBlock[i]; j++) {
        const resnet = new ResnetBlock2D(reg, `${p}.resnets.${j}`, j === 0 ? inCh : out, out, td, ropt(c.resnetOutScaleFactor));
        const a = c.downBlockTypes[i] === 'SimpleCrossAttnDownBlock2D' ? attn(`${p}.attentions.${j}`, out, c.attentionHeadDim[i], c.onlyCrossAttention[i]) : undefined;
        blk.layers.push({ resnet, attn: a });
      }
      if (!last) blk.downsampler = new ResnetBlock2D(reg, `${p}.downsamplers.0`, out, out, td, ropt(c.resnetOutScaleFactor, { down: true }));
      this.down.push(blk);
    }
    // Mid block: resnet → attention → resnet.
    const top = boc[boc.length - 1];
    const hd = c.attentionHeadDim[c.attentionHeadDim.length - 1];
    this.mid.push({ kind: 'resnet', r: new ResnetBlock2D(reg, 'mid_block.resnets.0', top, top, td, ropt(c.midBlockScaleFactor)) });
    this.mid.push({ kind: 'attn', a: attn('mid_block.attentions.0', top, hd, c.midBlockOnlyCrossAttention) });
    this.mid.push({ kind: 'resnet', r: new ResnetBlock2D(reg, 'mid_block.resnets.1', top, top, td, ropt(c.midBlockScaleFactor)) });
    // Up path: reversed channels; each block has layers+1 resnets, each taking one skip.
    const rboc = [...boc].reverse();
    const rlayers = [...c.layersPerBlock].reverse();
    const rhead = [...c.attentionHeadDim].reverse();
    const ronly = [...c.onlyCrossAttention].reverse();
    out = rboc[0];
    for (let i = 0; i < rboc.length; i++) {
      const prev = out;
      out = rboc[i];
      const inCh = rboc[Math.min(i + 1, rboc.length - 1)];
      const last = i === rboc.length - 1;
      const p = `up_blocks.${i}`;
      const blk: UpBlock = { layers: [] };
      const n = rlayers[i] + 1;
      for (let j = 0; j < n; j++) {
        const skipCh = j === n - 1 ? inCh : out;
        const resIn = j === 0 ? prev : out;
        const resnet = new ResnetBlock2D(reg, `${p}.resnets.${j}`, resIn + skipCh, out, td, ropt(c.resnetOutScaleFactor));
        const a = c.upBlockTypes[i] === 'SimpleCrossAttnUpBlock2D' ? attn(`${p}.attentions.${j}`, out, rhead[i], ronly[i]) : undefined;
        blk.layers.push({ resnet, attn: a });
      }
      if (!last) blk.upsampler = new ResnetBlock2D(reg, `${p}.upsamplers.0`, out, out, td, ropt(c.resnetOutScaleFactor, { up: true }));
      this.up.push(blk);
    }
    this.normOut = new GroupNorm(reg, 'conv_norm_out', c.normNumGroups, boc[0], c.normEps);
    this.convOut = new Conv2d(reg, 'conv_out', boc[0], c.outChannels, c.convOutKernel);
    this.specs = reg.specs;
  }

  /** Total number of parameters (from the plan; nothing is allocated). */
  get paramCount(): number {
    return this.specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
  }

  /** Bytes the weights take as float32 in TF.js. */
  get float32Bytes(): number {
    return this.paramCount * 4;
  }

  /**
   * The forward pass (SPEC §3.5).
   * @param sample x_t [B,H,W,in_channels] (stage II: noisy image and upscaled image concatenated); H, W divisible by 2^(blocks−1)
   * @param t timestep (one for the batch, or one per sample)
   * @param text raw T5 states [B,S,encoder_hid_dim] (or [B,S,cross_attention_dim] without encoder_hid_proj)
   * @param classLabels stage II's noise level(s) (class_embed_type "timestep"), one or one per sample
   * @returns [B,H,W,out_channels]
   */
  apply(w: Weights, sample: tf.Tensor4D, t: number | number[], text: tf.Tensor3D, classLabels?: number | number[]): tf.Tensor4D {
    const c = this.config;
    const [B, H, W, C] = sample.shape;
    const f = 2 ** (c.blockOutChannels.length - 1);
    if (C !== c.inChannels) throw new Error(`IF UNet: sample has ${C} channels but the config's in_channels is ${c.inChannels}`);
    if (H % f || W % f) throw new Error(`IF UNet: sample size ${H}×${W} must be divisible by ${f} (2^(number of blocks − 1))`);
    const encDim = c.encoderHidDim ?? c.crossAttentionDim;
    if (text.rank !== 3 || text.shape[0] !== B || text.shape[2] !== encDim) {
      throw new Error(`IF UNet: text embeddings have shape [${text.shape.join(',')}] but [${B},S,${encDim}] is needed (one [77,${encDim}] T5 embedding per sample)`);
    }
    const perSample = (v: number | number[], what: string) => {
      const a = typeof v === 'number' ? Array(B).fill(v) : v;
      if (a.length !== B) throw new Error(`IF UNet: ${a.length} ${what} values for a batch of ${B}`);
      return a;
    };
    if (this.classMlp && classLabels === undefined) throw new Error('IF UNet: this model (class_embed_type "timestep", stage II) needs classLabels = the noise level (e.g. 250)');
    return tf.tidy(() => {
      // 1–3. time, class and text-pooled embeddings, summed.
      const tproj = timestepEmbedding(perSample(t, 'timestep'), c.blockOutChannels[0], c.flipSinToCos, c.freqShift);
      let emb = this.timeMlp.apply(w, tproj);
      if (this.classMlp) {
        const cproj = timestepEmbedding(perSample(classLabels!, 'class label'), c.blockOutChannels[0], c.flipSinToCos, c.freqShift);
        emb = tf.add(emb, this.classMlp.apply(w, cproj));
      }
      if (this.addEmbedding) emb = tf.add(emb, this.addEmbedding.apply(w, text));
      if (c.timeEmbeddingActFn) emb = activation(emb, c.timeEmbeddingActFn) as tf.Tensor2D;
      // 4. text projection to cross_attention_dim.
      const enc = this.encProj ? (this.encProj.apply(w, text) as tf.Tensor3D) : text;
      // 5–6. conv_in and the down path, keeping every skip.
      let h = c.centerInputSample ? (tf.sub(tf.mul(sample, 2), 1) as tf.Tensor4D) : sample;
      h = this.convIn.apply(w, h);
      const skips: tf.Tensor4D[] = [h];
      for (const blk of this.down) {
        for (const l of blk.layers) {
          h = l.resnet.apply(w, h, emb);
          if (l.attn) h = l.attn.apply(w, h, enc);
          skips.push(h);
        }
        if (blk.downsampler) {
          h = blk.downsampler.apply(w, h, emb);
          skips.push(h);
        }
      }
      // 8. mid block.
      for (const m of this.mid) h = m.kind === 'resnet' ? m.r.apply(w, h, emb) : m.a.apply(w, h, enc);
      // 9. up path: concatenate the latest skip before each resnet.
      for (const blk of this.up) {
        for (const l of blk.layers) {
          h = tf.concat([h, skips.pop()!], 3);
          h = l.resnet.apply(w, h, emb);
          if (l.attn) h = l.attn.apply(w, h, enc);
        }
        if (blk.upsampler) h = blk.upsampler.apply(w, h, emb);
      }
      // 10. output head.
      h = activation(this.normOut.apply(w, h), c.actFn) as tf.Tensor4D;
      return this.convOut.apply(w, h);
    });
  }
}

/** Builds the plan from a config.json object (no weights are allocated). */
export function planUnet(rawConfig: Record<string, unknown>, source?: string): IFUnet {
  return new IFUnet(parseUnetConfig(rawConfig, source));
}

/** Checks a checkpoint's names and shapes against the plan without reading tensor data. */
export function checkUnetKeys(unet: IFUnet, src: SafetensorsSource): KeyReport {
  return matchKeys(unet.specs, src.tensors);
}

/**
 * Loads every parameter from `src`, strictly: any missing, unexpected or misshaped tensor throws
 * the key report before anything is allocated. Streams one tensor at a time (read, convert to
 * float32, reorder to TF.js layout, upload), so peak host memory is one tensor beyond the model.
 * @param onProgress called after each tensor with (done, total)
 */
export function loadUnetWeights(unet: IFUnet, src: SafetensorsSource, onProgress?: (done: number, total: number) => void): Map<string, tf.Tensor> {
  const report = checkUnetKeys(unet, src);
  if (!report.ok) throw new Error(formatKeyReport(report, 'UNet checkpoint'));
  const weights = new Map<string, tf.Tensor>();
  try {
    unet.specs.forEach((s, i) => {
      const t = src.read(s.name);
      weights.set(s.name, tf.tensor(torchToTfLayout(t.data, s.shape, s.kind), tfShape(s), 'float32'));
      onProgress?.(i + 1, unet.specs.length);
    });
  } catch (e) {
    for (const t of weights.values()) t.dispose();
    throw e;
  }
  return weights;
}

/** Frees a Weights map. */
export function disposeWeights(w: Map<string, tf.Tensor>): void {
  for (const t of w.values()) t.dispose();
  w.clear();
}
