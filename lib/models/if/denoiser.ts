/**
 * DeepFloyd IF as a Denoiser (64×64 stage I, [-1,1], learned-range variance, cosine schedule), so
 * every sampling algorithm runs on it. Prompts are the keys of the course's embeddings file. A
 * stage-II view (`withImage`) conditions the same prompts on an upscaled, noised stage-I image
 * (diffusers' IFSuperResolutionPipeline, SPEC §3.3).
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { checkHandle, checkImage, releasedModelError, unknownPromptError, type CondHandle, type Denoiser, type Prediction, type PredictItem } from '../denoiser';
import { ifSchedule } from '../../schedulers/ddpm';
import type { PromptEmbeddings } from '../../weights/embeddings';
import type { IFModel } from './model';

/** Embeddings [1,S,D] tensors kept per prompt, uploaded once. */
class EmbeddingTable {
  private cache = new Map<string, tf.Tensor3D>();
  constructor(readonly emb: PromptEmbeddings) {}
  has(p: string): boolean {
    return this.emb.byPrompt.has(p);
  }
  get(p: string): tf.Tensor3D {
    let t = this.cache.get(p);
    if (!t) {
      const d = this.emb.byPrompt.get(p);
      if (!d) throw new Error(`no embedding for ${JSON.stringify(p)}`);
      // kept: handles outlive any tf.tidy the first encodePrompt call happens in
      t = tf.keep(tf.tensor3d(d, [1, this.emb.seqLen, this.emb.dim]));
      this.cache.set(p, t);
    }
    return t;
  }
  dispose(): void {
    for (const t of this.cache.values()) t.dispose();
    this.cache.clear();
  }
}

/** IF's conditioning handle: one prompt for the whole batch, or one prompt per sample. */
export interface IFCond extends CondHandle {
  /** The prompts: length 1 (any batch size) or one per sample. */
  readonly perSample: readonly string[];
}

/** Stage II's extra input: the upscaled, noised stage-I image [B,H,W,3] and its noise level (class_labels). */
export interface StageIIImage {
  image: tf.Tensor4D;
  noiseLevel: number;
}

export class IFDenoiser implements Denoiser {
  readonly name: string;
  readonly schedule = ifSchedule();
  readonly imageSize: [number, number];
  readonly channels: number;
  readonly valueRange: [number, number] = [-1, 1];
  readonly learnedVariance = true;
  readonly neutralPrompt = 'a high quality photo';
  readonly emptyPrompt = '';
  readonly prompts: readonly string[];
  private readonly table: EmbeddingTable;
  private readonly ownsTable: boolean;
  private readonly handles = new Map<string, IFCond>();
  /** The stage-I denoiser a stage-II view shares its prompts with (withImage). */
  private readonly parent?: IFDenoiser;
  private releasedSelf = false;

  /**
   * @param model a loaded IF UNet (stage I, or stage II for a view made by withImage)
   * @param embeddings the prompt table, or (internally) the stage-I denoiser whose table to share
   */
  constructor(
    readonly model: IFModel,
    embeddings: PromptEmbeddings | IFDenoiser,
    name = `DeepFloyd IF stage I (${path.basename(model.dir)})`,
    private readonly extra?: StageIIImage,
  ) {
    const c = model.unet.config;
    const emb = embeddings instanceof IFDenoiser ? embeddings.table.emb : embeddings;
    const encDim = c.encoderHidDim ?? c.crossAttentionDim;
    if (emb.dim !== encDim) throw new Error(`prompt embeddings are ${emb.dim}-dimensional but ${name} expects ${encDim} (T5-XXL states)`);
    const inC = extra ? c.inChannels / 2 : c.inChannels;
    if (c.outChannels !== 2 * inC) throw new Error(`${name}: out_channels ${c.outChannels} is not 2 × ${inC} image channels (ε and learned variance)`);
    this.name = name;
    this.imageSize = [c.sampleSize, c.sampleSize];
    this.channels = inC;
    this.table = embeddings instanceof IFDenoiser ? embeddings.table : new EmbeddingTable(emb);
    this.ownsTable = !(embeddings instanceof IFDenoiser);
    if (embeddings instanceof IFDenoiser) this.parent = embeddings;
    this.prompts = [...emb.byPrompt.keys()];
  }

  private checkPrompt(prompt: string): void {
    if (this.table.has(prompt)) return;
    const e = unknownPromptError(this.name, prompt, this.prompts);
    e.message +=
      '. To add a prompt, compute its T5 embedding once in Python (SPEC §1.0b: text_pipe.encode_prompt) and save {prompt: tensor} with torch.save or safetensors, then load that file too';
    throw e;
  }

  /** True once this denoiser (or, for a stage-II view, its stage-I parent) was disposed. */
  get released(): boolean {
    return this.releasedSelf || (this.parent?.released ?? false);
  }

  /** Every method that needs the weights or the prompt table calls this first. */
  private live(): void {
    if (this.released) throw releasedModelError(this.name);
  }

  encodePrompt(prompt: string): IFCond {
    this.live();
    let h = this.handles.get(prompt);
    if (!h) {
      this.checkPrompt(prompt);
      this.table.get(prompt);
      h = { prompt, owner: this.name, perSample: [prompt] };
      this.handles.set(prompt, h);
    }
    return h;
  }

  /** One handle conditioning sample i on prompts[i] (Part 0's three prompts in one batch). */
  encodePrompts(prompts: readonly string[]): IFCond {
    this.live();
    for (const p of prompts) this.checkPrompt(p);
    return { prompt: prompts.join(' | '), owner: this.name, perSample: [...prompts] };
  }

  /**
   * A stage-II view: the stage-II model conditioned on `extra.image` (concatenated on channels to
   * x_t, SPEC §3.3) with class_labels = noise level, sharing this denoiser's prompts.
   */
  withImage(stage2: IFModel, extra: StageIIImage): IFDenoiser {
    this.live();
    const c = stage2.unet.config;
    if (c.classEmbedType !== 'timestep' || c.inChannels !== 2 * extra.image.shape[3]) {
      throw new Error(`${stage2.dir} is not a stage-II model (needs class_embed_type "timestep" and in_channels ${2 * extra.image.shape[3]})`);
    }
    return new IFDenoiser(stage2, this, `DeepFloyd IF stage II (${path.basename(stage2.dir)})`, extra);
  }

  predict(xt: tf.Tensor4D, t: number, cond: CondHandle): Prediction {
    return this.predictMany([{ xt, cond }], t)[0];
  }

  predictMany(items: PredictItem[], t: number): Prediction[] {
    this.live();
    for (const it of items) {
      checkImage(this, it.xt, 'IF predict: x_t');
      checkHandle(this, it.cond);
      const n = (it.cond as IFCond).perSample.length;
      if (n !== 1 && n !== it.xt.shape[0]) throw new Error(`${it.cond.prompt}: ${n} prompts for a batch of ${it.xt.shape[0]} images`);
    }
    return tf.tidy(() => {
      const sizes = items.map((it) => it.xt.shape[0]);
      let xs = tf.concat(items.map((it) => it.xt), 0);
      if (this.extra) xs = tf.concat([xs, tf.concat(items.map(() => this.extra!.image), 0)], 3);
      const text = tf.concat(
        items.map((it, i) => {
          const ps = (it.cond as IFCond).perSample;
          return ps.length === 1 ? tf.tile(this.table.get(ps[0]), [sizes[i], 1, 1]) : tf.concat(ps.map((p) => this.table.get(p)), 0);
        }),
        0,
      ) as tf.Tensor3D;
      const out = this.model.unet.apply(this.model.weights, xs, t, text, this.extra?.noiseLevel);
      const C = out.shape[3] / 2;
      const [eps, v] = tf.split(out, [C, C], 3) as [tf.Tensor4D, tf.Tensor4D];
      const es = tf.split(eps, sizes, 0) as tf.Tensor4D[];
      const vs = tf.split(v, sizes, 0) as tf.Tensor4D[];
      return es.map((e, i) => ({ eps: e, variance: vs[i] })) as unknown as tf.TensorContainer;
    }) as unknown as Prediction[];
  }

  /** Frees the prompt table and the model's weights (a stage-II view frees neither: its parent and caller own them). */
  dispose(): void {
    this.releasedSelf = true;
    this.handles.clear();
    if (this.extra) return;
    if (this.ownsTable) this.table.dispose();
    this.model.dispose();
  }
}
