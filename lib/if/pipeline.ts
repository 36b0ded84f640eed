/**
 * DeepFloyd IF end to end: model folders, stage I as a Part A `Denoiser`, stage II upscaling, and
 * Part 0 (SPEC §1.0, §1.0b, §3.3).
 *
 * A model folder is what `npm run weights -- if-i-l` downloads (Hugging Face layout):
 *   <dir>/unet/config.json and <dir>/unet/diffusion_pytorch_model[.fp16].safetensors
 *   (or a sharded `…safetensors.index.json`). Default folders live under `models/`
 *   (IF_MODELS_DIR overrides): models/IF-I-L-v1.0, models/IF-II-L-v1.0 and the course's
 *   models/prompt_embeds_dict.pth.
 *
 * Images are NHWC in [-1, 1]. Memory: fp16 on disk becomes float32 here (IF-I-L ≈ 3.6 GB,
 * IF-II-L ≈ 5.0 GB of weights).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { CondHandle, Denoiser, Prediction, PredictItem } from '../diffusion/denoiser';
import { checkHandle, checkImage, unknownPromptError } from '../diffusion/denoiser';
import * as F from '../diffusion/formulas';
import { alphaBarAt } from '../diffusion/schedule';
import { Rng } from '../tensor/random';
import { loadPromptEmbeddings, PromptEmbeddings } from './embeddings';
import { openSafetensors } from './safetensors';
import { ddpmStep, IFSchedulerConfig, ifSchedule, pipelineTimesteps, STAGE_I_SCHEDULER, STAGE_II_SCHEDULER } from './scheduler';
import { disposeWeights, IFUnet, loadUnetWeights, planUnet } from './unet';

/** Root of the downloaded models: IF_MODELS_DIR, default <repo>/models (this file is dist/lib/if/pipeline.js). */
export function modelsRoot(): string {
  return process.env.IF_MODELS_DIR ?? path.resolve(__dirname, '..', '..', '..', 'models');
}

/** Default folders of the course's two stages and the embeddings file. */
export function defaultPaths(root = modelsRoot()) {
  return {
    stage1: path.join(root, 'IF-I-L-v1.0'),
    stage2: path.join(root, 'IF-II-L-v1.0'),
    embeddings: path.join(root, 'prompt_embeds_dict.pth'),
  };
}

/** Weight file candidates in diffusers' order of preference (fp16 variant first, SPEC §3.6). */
export const UNET_WEIGHT_FILES = [
  'diffusion_pytorch_model.fp16.safetensors',
  'diffusion_pytorch_model.safetensors',
  'diffusion_pytorch_model.fp16.safetensors.index.json',
  'diffusion_pytorch_model.safetensors.index.json',
];

/** The unet config and weights paths of a model folder (`<dir>` or `<dir>/unet`), or a one-line error. */
export function findUnetFiles(dir: string): { config: string; weights: string } {
  const { unetDir, config } = findUnetConfig(dir);
  const w = UNET_WEIGHT_FILES.map((f) => path.join(unetDir, f)).find((f) => fs.existsSync(f));
  if (!w) throw new Error(`${unetDir}: no ${UNET_WEIGHT_FILES[0]} (or ${UNET_WEIGHT_FILES.slice(1).join(', ')})`);
  return { config, weights: w };
}

/** The unet folder and config.json of a model folder, or a one-line error. */
export function findUnetConfig(dir: string): { unetDir: string; config: string } {
  const unetDir = fs.existsSync(path.join(dir, 'unet', 'config.json')) ? path.join(dir, 'unet') : dir;
  const config = path.join(unetDir, 'config.json');
  if (!fs.existsSync(config)) throw new Error(`${dir}: no unet/config.json (download the model with "npm run weights -- if-i-l" or "if-ii-l")`);
  return { unetDir, config };
}

/** Reads and plans a folder's UNet (no weights). */
export function planUnetFromDir(dir: string): IFUnet {
  const { config } = findUnetConfig(dir);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(config, 'utf8'));
  } catch (e) {
    throw new Error(`${config}: not valid JSON (${(e as Error).message})`);
  }
  return planUnet(raw, config);
}

/** A UNet with its weights loaded. */
export interface IFModel {
  unet: IFUnet;
  weights: Map<string, tf.Tensor>;
  dir: string;
  dispose(): void;
}

/** Loads a model folder: plan from config.json, strict key check, streamed weights. */
export function loadIFModel(dir: string, onProgress?: (done: number, total: number) => void): IFModel {
  const unet = planUnetFromDir(dir);
  checkFitsEngine(unet, dir);
  const src = openSafetensors(findUnetFiles(dir).weights);
  try {
    const weights = loadUnetWeights(unet, src, onProgress);
    return { unet, weights, dir, dispose: () => disposeWeights(weights) };
  } finally {
    src.close();
  }
}

/** The wasm engine's heap is a 32-bit WebAssembly memory: 4 GiB for every tensor together. */
const WASM_HEAP_BYTES = 4 * 2 ** 30;

/**
 * Refuses, in one line, to load weights that cannot fit the wasm engine's 4 GiB heap (float32
 * weights plus what is already allocated, with 10% left for activations) instead of failing
 * mid-load with an out-of-memory abort. Other engines (webgpu, tfjs-node, cpu) are not limited.
 */
export function checkFitsEngine(unet: IFUnet, dir: string): void {
  if (tf.getBackend() !== 'wasm') return;
  const need = unet.float32Bytes;
  const used = tf.memory().numBytes;
  if (used + need > 0.9 * WASM_HEAP_BYTES) {
    const gib = (b: number) => (b / 2 ** 30).toFixed(2);
    throw new Error(
      `${path.basename(dir)} needs ${gib(need)} GiB of float32 weights (${gib(used)} GiB already in use), more than the wasm engine's 4 GiB heap allows: ` +
        'run with DIFFUSION_ENGINE=webgpu (a GPU) or tfjs-node, or DIFFUSION_ENGINE=cpu (no heap limit, slow); dispose the other stage first if one is loaded',
    );
  }
}

/** True when the folder has a config and a weights file (no validation; see `weights check`). */
export function ifModelPresent(dir: string): boolean {
  try {
    findUnetFiles(dir);
    return true;
  } catch {
    return false;
  }
}

/** Embeddings [1,S,D] tensors kept per prompt, uploaded once. */
class EmbeddingTable {
  private cache = new Map<string, tf.Tensor3D>();
  constructor(readonly emb: PromptEmbeddings) {}
  has(p: string) {
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
  dispose() {
    for (const t of this.cache.values()) t.dispose();
    this.cache.clear();
  }
}

/** IF's conditioning handle: the prompt's T5 embedding [1,77,4096]. */
export interface IFCond extends CondHandle {
  readonly embeds: tf.Tensor3D;
}

/** Runs the UNet on x [B,H,W,C] with per-sample text [B,S,D]; splits ε (first C channels) and v (the rest). */
function runUnet(model: IFModel, x: tf.Tensor4D, t: number, text: tf.Tensor3D, classLabels?: number): { eps: tf.Tensor4D; v: tf.Tensor4D } {
  return tf.tidy(() => {
    const out = model.unet.apply(model.weights, x, t, text, classLabels);
    const C = out.shape[3] / 2;
    const [eps, v] = tf.split(out, [C, C], 3) as [tf.Tensor4D, tf.Tensor4D];
    return { eps, v };
  });
}

/**
 * IF stage I as a Part A Denoiser (64×64, [-1,1], learned-range variance, cosine schedule).
 * Prompts are the keys of the embeddings file.
 */
export class IFDenoiser implements Denoiser {
  readonly name: string;
  readonly schedule = ifSchedule();
  readonly imageSize: [number, number];
  readonly channels: number;
  readonly valueRange: [number, number] = [-1, 1];
  readonly varianceType = 'learned_range' as const;
  readonly neutralPrompt = 'a high quality photo';
  readonly emptyPrompt = '';
  readonly prompts: readonly string[];
  private table: EmbeddingTable;
  private handles = new Map<string, IFCond>();

  constructor(readonly model: IFModel, embeddings: PromptEmbeddings, name = `DeepFloyd IF stage I (${path.basename(model.dir)})`) {
    const c = model.unet.config;
    const encDim = c.encoderHidDim ?? c.crossAttentionDim;
    if (embeddings.dim !== encDim) throw new Error(`prompt embeddings are ${embeddings.dim}-dimensional but ${name} expects ${encDim} (T5-XXL states)`);
    if (c.outChannels !== 2 * c.inChannels) throw new Error(`${name}: out_channels ${c.outChannels} is not 2 × in_channels (ε and learned variance)`);
    this.name = name;
    this.imageSize = [c.sampleSize, c.sampleSize];
    this.channels = c.inChannels;
    this.table = new EmbeddingTable(embeddings);
    this.prompts = [...embeddings.byPrompt.keys()];
  }

  encodePrompt(prompt: string): IFCond {
    let h = this.handles.get(prompt);
    if (!h) {
      if (!this.table.has(prompt)) {
        const e = unknownPromptError(this.name, prompt, this.prompts);
        e.message +=
          '. To add a prompt, compute its T5 embedding once in Python (SPEC §1.0b: text_pipe.encode_prompt) and save {prompt: tensor} with torch.save or safetensors, then load that file too';
        throw e;
      }
      h = { prompt, owner: this.name, embeds: this.table.get(prompt) };
      this.handles.set(prompt, h);
    }
    return h;
  }

  predict(xt: tf.Tensor4D, t: number, cond: CondHandle): Prediction {
    return this.predictMany([{ xt, cond }], t)[0];
  }

  predictMany(items: PredictItem[], t: number): Prediction[] {
    for (const it of items) {
      checkImage(this, it.xt, 'IF predict: x_t');
      checkHandle(this, it.cond);
    }
    return tf.tidy(() => {
      const xs = tf.concat(items.map((it) => it.xt), 0);
      const text = tf.concat(items.map((it) => tf.tile((it.cond as IFCond).embeds, [it.xt.shape[0], 1, 1])), 0) as tf.Tensor3D;
      const { eps, v } = runUnet(this.model, xs, t, text);
      const sizes = items.map((it) => it.xt.shape[0]);
      const es = tf.split(eps, sizes, 0) as tf.Tensor4D[];
      const vs = tf.split(v, sizes, 0) as tf.Tensor4D[];
      return es.map((e, i) => ({ eps: e, variance: vs[i] })) as unknown as tf.TensorContainer;
    }) as unknown as Prediction[];
  }

  /** [B,S,D] text for a list of prompts (one per sample). */
  textFor(prompts: readonly string[]): tf.Tensor3D {
    return tf.tidy(() => tf.concat(prompts.map((p) => this.encodePrompt(p).embeds), 0) as tf.Tensor3D);
  }

  dispose(): void {
    this.table.dispose();
    this.handles.clear();
    this.model.dispose();
  }
}

/** Options of pipeline-matching sampling (diffusers' IFPipeline / IFSuperResolutionPipeline). */
export interface IFSampleOptions {
  /** num_inference_steps (default 20 as in the course's Part 0). */
  steps?: number;
  /** CFG scale γ (stage I default 7, stage II default 4). */
  guidance?: number;
  /** Seeded randomness for the initial noise and every step. */
  rng: Rng;
  /** Called after each step with (i, steps). */
  onStep?: (i: number, steps: number) => void;
}

/**
 * One CFG'd scheduler loop shared by both stages: the batch runs as [uncond; cond] in one UNet
 * call; ε = cfgNoise(ε_u, ε_c, γ) with the text branch's v (SPEC §3.3); then ddpmStep.
 * @param x initial noise [B,H,W,3]; @param extra stage II's upscaled image [B,H,W,3] concatenated on channels
 */
function cfgLoop(
  model: IFModel,
  x: tf.Tensor4D,
  text: tf.Tensor3D,
  uncond: tf.Tensor3D,
  sched: IFSchedulerConfig,
  o: IFSampleOptions & { steps: number; guidance: number },
  extra?: { image: tf.Tensor4D; noiseLevel: number },
): tf.Tensor4D {
  const schedule = ifSchedule();
  const ts = pipelineTimesteps(o.steps, schedule.T);
  const B = x.shape[0];
  const texts = tf.concat([uncond, text], 0) as tf.Tensor3D;
  let cur = x.clone();
  try {
    ts.forEach((t, i) => {
      const next = tf.tidy(() => {
        let inp: tf.Tensor4D = cur;
        if (extra) inp = tf.concat([cur, extra.image], 3);
        const { eps, v } = runUnet(model, tf.concat([inp, inp], 0), t, texts, extra?.noiseLevel);
        const [eu, ec] = tf.split(eps, 2, 0) as tf.Tensor4D[];
        const vc = tf.slice(v, [B, 0, 0, 0], [B, -1, -1, -1]) as tf.Tensor4D;
        return ddpmStep(schedule, ts, t, cur, F.cfgNoise(eu, ec, o.guidance), vc, o.rng, sched);
      });
      cur.dispose();
      cur = next;
      o.onStep?.(i + 1, ts.length);
    });
  } finally {
    texts.dispose();
  }
  return cur;
}

/**
 * Stage I sampling as `stage_1(prompt_embeds, negative_prompt_embeds, num_inference_steps)`:
 * x_T ~ N(0, I) [N,64,64,3], CFG with "" (γ = 7), dynamic thresholding (max 1.5).
 * @returns [N,64,64,3] in [-1,1] (new tensor)
 */
export function sampleStageI(den: IFDenoiser, prompts: readonly string[], o: IFSampleOptions): tf.Tensor4D {
  const steps = o.steps ?? 20;
  const [h, w] = den.imageSize;
  const x = o.rng.normal([prompts.length, h, w, den.channels]) as tf.Tensor4D;
  const text = den.textFor(prompts);
  const un = den.textFor(prompts.map(() => den.emptyPrompt));
  try {
    return cfgLoop(den.model, x, text, un, STAGE_I_SCHEDULER, { ...o, steps, guidance: o.guidance ?? 7 });
  } finally {
    tf.dispose([x, text, un]);
  }
}

/**
 * Bilinear upscaling as F.interpolate(mode="bilinear", align_corners=True).
 * [B,h,w,C] → [B,H,W,C].
 */
export function upscaleBilinear(x: tf.Tensor4D, size: [number, number]): tf.Tensor4D {
  return tf.image.resizeBilinear(x, size, true);
}

/**
 * Stage II (IFSuperResolutionPipeline): upscale the stage-I image bilinearly (align_corners) to
 * the stage-II size, noise it to `noiseLevel` (default 250) with the image-noising scheduler
 * (formulas.forward with the cosine ᾱ), then run the CFG loop (γ = 4, max 1.0) on
 * [x_t, noisy upscaled] with class_labels = noiseLevel.
 * @param image64 [N,h,w,3] in [-1,1]; @param prompts one per image
 * @returns [N,H,W,3] in [-1,1] (new tensor)
 */
export function upscaleStageII(model: IFModel, den: IFDenoiser, image64: tf.Tensor4D, prompts: readonly string[], o: IFSampleOptions & { noiseLevel?: number }): tf.Tensor4D {
  const c = model.unet.config;
  if (c.classEmbedType !== 'timestep' || c.inChannels !== 2 * image64.shape[3]) {
    throw new Error(`${model.dir} is not a stage-II model (needs class_embed_type "timestep" and in_channels ${2 * image64.shape[3]})`);
  }
  if (prompts.length !== image64.shape[0]) throw new Error(`upscaleStageII: ${prompts.length} prompts for ${image64.shape[0]} images`);
  const steps = o.steps ?? 20;
  const noiseLevel = o.noiseLevel ?? 250;
  const size: [number, number] = [c.sampleSize, c.sampleSize];
  const N = image64.shape[0];
  const x = o.rng.normal([N, size[0], size[1], image64.shape[3]]) as tf.Tensor4D;
  const noisy = tf.tidy(() => {
    const up = upscaleBilinear(image64, size);
    return F.forward(up, alphaBarAt(ifSchedule(), noiseLevel), o.rng.normal(up.shape) as tf.Tensor4D);
  });
  const text = den.textFor(prompts);
  const un = den.textFor(prompts.map(() => den.emptyPrompt));
  try {
    return cfgLoop(model, x, text, un, STAGE_II_SCHEDULER, { ...o, steps, guidance: o.guidance ?? 4 }, { image: noisy, noiseLevel });
  } finally {
    tf.dispose([x, noisy, text, un]);
  }
}

/** The seed's three Part 0 prompts (SPEC §1.0b). */
export const PART0_PROMPTS = ['an oil painting of a snowy mountain village', 'a man wearing a hat', 'a rocket ship'];

/** One Part 0 run. Tensors are owned by the caller. */
export interface Part0Result {
  steps: number;
  prompts: string[];
  /** Stage I output [N,64,64,3] in [-1,1]. */
  stage1: tf.Tensor4D;
  /** Stage II output [N,256,256,3] in [-1,1] (absent without a stage-II model). */
  stage2?: tf.Tensor4D;
}

/**
 * Part 0 (SPEC §1.0b): for each step count (default 5, 20, 40), stage I then stage II on the
 * three prompts, from the same seed (a fresh Rng(seed) per step count, so runs are comparable).
 */
export function runPart0(
  den: IFDenoiser,
  stage2: IFModel | undefined,
  o: { seed: number; stepCounts?: number[]; prompts?: string[]; onStep?: (stage: 1 | 2, steps: number, i: number, n: number) => void },
): Part0Result[] {
  const prompts = o.prompts ?? PART0_PROMPTS;
  return (o.stepCounts ?? [5, 20, 40]).map((steps) => {
    const rng = new Rng(o.seed);
    const s1 = sampleStageI(den, prompts, { steps, rng, onStep: (i, n) => o.onStep?.(1, steps, i, n) });
    const s2 = stage2 ? upscaleStageII(stage2, den, s1, prompts, { steps, rng, onStep: (i, n) => o.onStep?.(2, steps, i, n) }) : undefined;
    return { steps, prompts: [...prompts], stage1: s1, stage2: s2 };
  });
}

/**
 * Loads stage I and the embeddings from the default folders (and stage II with `stage2: true`,
 * for Part 0; Part A needs only stage I), for a notebook: returns `{ missing }`, with the reason
 * and the command that fixes it, when something is absent.
 */
export function loadIFFromDefaults(
  root = modelsRoot(),
  o: { stage2?: boolean; onProgress?: (what: string, done: number, total: number) => void } = {},
):
  | { den: IFDenoiser; stage2?: IFModel; stage2Note?: string }
  | { missing: string } {
  const p = defaultPaths(root);
  if (!ifModelPresent(p.stage1)) return { missing: `no IF stage I weights in ${p.stage1} (npm run weights -- if-i-l)` };
  if (!fs.existsSync(p.embeddings)) return { missing: `no prompt embeddings at ${p.embeddings} (download the course's prompt_embeds_dict.pth there)` };
  const emb = loadPromptEmbeddings(p.embeddings);
  const m1 = loadIFModel(p.stage1, (d, n) => o.onProgress?.('stage I', d, n));
  const den = new IFDenoiser(m1, emb);
  if (!o.stage2) return { den };
  if (!ifModelPresent(p.stage2)) return { den, stage2Note: `no IF stage II weights in ${p.stage2} (npm run weights -- if-ii-l): 64×64 only` };
  try {
    return { den, stage2: loadIFModel(p.stage2, (d, n) => o.onProgress?.('stage II', d, n)) };
  } catch (e) {
    // e.g. both stages do not fit the wasm heap: stage I still works
    return { den, stage2Note: `stage II not loaded: ${(e as Error).message.split('\n')[0]}` };
  }
}
