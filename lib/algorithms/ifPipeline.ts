/**
 * DeepFloyd IF's own pipelines (diffusers' IFPipeline and IFSuperResolutionPipeline, SPEC §1.0b,
 * §3.3) on the shared pieces: the CFG of lib/guidance/cfg.ts, the scheduler of
 * lib/schedulers/ddpm.ts (learned-range variance, dynamic thresholding) and diffusers' leading
 * timesteps, stepping to the clean image after the last entry. Images are NHWC in [-1, 1].
 */
import * as tf from '@tensorflow/tfjs-core';
import * as F from '../schedulers/formulas';
import { alphaBarAt } from '../schedulers/schedule';
import { ifSchedule, type DDPMSchedulerConfig } from '../schedulers/ddpm';
import { leadingTimesteps, toClean } from '../schedulers/timesteps';
import { Rng } from '../tensor/random';
import { cfgPredict } from '../guidance/cfg';
import type { IFDenoiser } from '../models/if/denoiser';
import type { IFModel } from '../models/if/model';
import { denoiseLoop } from './loops';

/** Options of pipeline-matching sampling. */
export interface IFSampleOptions {
  /** num_inference_steps (default 20 as in the course's Part 0). */
  steps?: number;
  /** CFG scale γ (stage I default 7, stage II default 4). */
  guidance?: number;
  /** Seeded randomness for the initial noise and every step. */
  rng: Rng;
  /** Called after each step with (i, steps). */
  onStep?: (i: number, steps: number) => void;
  /** Scheduler settings (default: the model folder's scheduler_config.json, else the stage's published one). */
  scheduler?: DDPMSchedulerConfig;
}

/** The pipeline loop of one stage: CFG with "" per sample, the scheduler's step over leading timesteps to clean. */
function pipelineLoop(
  den: IFDenoiser,
  x: tf.Tensor4D,
  prompts: readonly string[],
  scheduler: DDPMSchedulerConfig,
  o: IFSampleOptions & { steps: number; guidance: number },
): tf.Tensor4D {
  const g = { cond: den.encodePrompts(prompts), uncond: den.encodePrompts(prompts.map(() => den.emptyPrompt)), gamma: o.guidance };
  const ts = toClean(leadingTimesteps(o.steps, den.schedule.T, den.model.scheduler.stepsOffset));
  return denoiseLoop(
    den,
    x,
    0,
    (xt, t) => cfgPredict(den, xt, t, g),
    { rng: o.rng, timesteps: ts, scheduler, onStep: ({ i }) => o.onStep?.(i, o.steps) },
    'IF pipeline',
  );
}

/**
 * Stage I sampling as `stage_1(prompt_embeds, negative_prompt_embeds, num_inference_steps)`:
 * x_T ~ N(0, I) [N,64,64,3], CFG with "" (γ = 7), dynamic thresholding (max 1.5).
 * @returns [N,64,64,3] in [-1,1] (new tensor)
 */
export function sampleStageI(den: IFDenoiser, prompts: readonly string[], o: IFSampleOptions): tf.Tensor4D {
  const [h, w] = den.imageSize;
  const x = o.rng.normal([prompts.length, h, w, den.channels]) as tf.Tensor4D;
  try {
    return pipelineLoop(den, x, prompts, o.scheduler ?? den.model.scheduler.scheduler.config, {
      ...o,
      steps: o.steps ?? 20,
      guidance: o.guidance ?? 7,
    });
  } finally {
    x.dispose();
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
export function upscaleStageII(
  model: IFModel,
  den: IFDenoiser,
  image64: tf.Tensor4D,
  prompts: readonly string[],
  o: IFSampleOptions & { noiseLevel?: number },
): tf.Tensor4D {
  if (prompts.length !== image64.shape[0]) throw new Error(`upscaleStageII: ${prompts.length} prompts for ${image64.shape[0]} images`);
  const noiseLevel = o.noiseLevel ?? 250;
  const c = model.unet.config;
  if (c.classEmbedType !== 'timestep' || c.inChannels !== 2 * image64.shape[3]) {
    throw new Error(`${model.dir} is not a stage-II model (needs class_embed_type "timestep" and in_channels ${2 * image64.shape[3]})`);
  }
  const size: [number, number] = [c.sampleSize, c.sampleSize];
  const x = o.rng.normal([image64.shape[0], size[0], size[1], image64.shape[3]]) as tf.Tensor4D;
  const noisy = tf.tidy(() => {
    const up = upscaleBilinear(image64, size);
    return F.forward(up, alphaBarAt(ifSchedule(), noiseLevel), o.rng.normal(up.shape) as tf.Tensor4D);
  });
  try {
    const view = den.withImage(model, { image: noisy, noiseLevel });
    return pipelineLoop(view, x, prompts, o.scheduler ?? model.scheduler.scheduler.config, {
      ...o,
      steps: o.steps ?? 20,
      guidance: o.guidance ?? 4,
    });
  } finally {
    tf.dispose([x, noisy]);
  }
}

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
 * prompts, from the same seed (a fresh Rng(seed) per step count, so runs are comparable).
 */
export function runPart0(
  den: IFDenoiser,
  stage2: IFModel | undefined,
  o: {
    seed: number;
    prompts: readonly string[];
    stepCounts?: number[];
    onStep?: (stage: 1 | 2, steps: number, i: number, n: number) => void;
  },
): Part0Result[] {
  return (o.stepCounts ?? [5, 20, 40]).map((steps) => {
    const rng = new Rng(o.seed);
    const s1 = sampleStageI(den, o.prompts, { steps, rng, onStep: (i, n) => o.onStep?.(1, steps, i, n) });
    const s2 = stage2
      ? upscaleStageII(stage2, den, s1, o.prompts, { steps, rng, onStep: (i, n) => o.onStep?.(2, steps, i, n) })
      : undefined;
    return { steps, prompts: [...o.prompts], stage1: s1, stage2: s2 };
  });
}
