/**
 * Image editing with a diffusion or flow model (SPEC §1.7; SPEC-flow §3.1–3.2): SDEdit on photos,
 * sketches and outside images (§1.7, §1.7.1), inpainting (§1.7.2, Eq. A.5) and text-conditional
 * image-to-image (§1.7.3). All run the one CFG loop of lib/algorithms/loops.ts with the model's
 * scheduler, so each function serves both families: the start level is an index into the grid
 * (DDPM: the strided list, where a small index is much noise; flow: a grid from a start time,
 * flowTimesteps(h, start), iStart 0). Images are NHWC [B,H,W,C] in the model's range.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkImage, type Denoiser, type PromptLike } from '../models/denoiser';
import { cfgPredict, guidanceFor } from '../guidance/cfg';
import { denoiseLoop, iterativeDenoiseCfg, loopScheduler, noiseTo, pureNoise, type CfgOptions } from './loops';

/** The course's SDEdit noise levels (SPEC §1.7). */
export const SDEDIT_I_STARTS = [1, 3, 5, 7, 10, 20] as const;

/**
 * §1.7 SDEdit (SPEC-flow §3.1 for flow models): the forward process to timesteps[iStart], then the
 * CFG loop from there (default prompt den.neutralPrompt). Also §1.7.1 (sketches, outside images:
 * the same call) and, with another prompt, §1.7.3 / §3.2. @param im clean images [B,H,W,C] in model
 * range. Draws: the forward ε, then one per DDPM step (flow steps draw nothing).
 */
export function sdedit(den: Denoiser, im: tf.Tensor4D, iStart: number, opts: CfgOptions): tf.Tensor4D {
  checkImage(den, im, 'sdedit: image');
  const scheduler = loopScheduler(den, opts);
  const ts = opts.timesteps ?? scheduler.timesteps();
  scheduler.checkTimesteps(ts, iStart, 'sdedit');
  const noisy = noiseTo(scheduler, im, ts[iStart], opts.rng);
  try {
    return iterativeDenoiseCfg(den, noisy, iStart, { ...opts, timesteps: ts, scheduler });
  } finally {
    noisy.dispose();
  }
}

/** §1.7.3 text-conditional image-to-image: SDEdit under `opts.prompt` (required). */
export function textImageToImage(den: Denoiser, im: tf.Tensor4D, iStart: number, opts: CfgOptions & { prompt: PromptLike }): tf.Tensor4D {
  return sdedit(den, im, iStart, opts);
}

/**
 * Eq. A.5, the inpainting line: keep the generated x where the mask is 1 and put the original,
 * noised to the same level t', where it is 0: x ← m·x + (1 − m)·forward(orig, t'). For a flow
 * model the forward process at t' = 1 is the original itself, so the kept region ends exact.
 * @param x [B,H,W,C] after a step to t'; @param mask [1 or B,H,W,1 or C]; @param origNoisy forward(orig, t')
 */
export function inpaintCombine(x: tf.Tensor4D, mask: tf.Tensor4D, origNoisy: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.add(tf.mul(mask, x), tf.mul(tf.sub(1, mask), origNoisy)) as tf.Tensor4D);
}

/**
 * §1.7.2 inpaint (Eq. A.5), both families: the CFG loop from pure noise (i_start = 0 unless
 * opts.iStart), and after every step t → t' the known region is forced back with inpaintCombine.
 * @param orig clean images [B,H,W,C] in model range
 * @param mask [1 or B,H,W,1 or C], 1 = generate new content, 0 = keep
 * @returns [B,H,W,C]. Draws: starting noise (when iStart = 0; otherwise forward(orig) at
 *   timesteps[iStart]), then per step the variance ε and the re-noising ε.
 */
export function inpaint(den: Denoiser, orig: tf.Tensor4D, mask: tf.Tensor4D, opts: CfgOptions & { iStart?: number }): tf.Tensor4D {
  checkImage(den, orig, 'inpaint: original image');
  checkMask(den, orig, mask, 'inpaint');
  const scheduler = loopScheduler(den, opts);
  const ts = opts.timesteps ?? scheduler.timesteps();
  const iStart = opts.iStart ?? 0;
  scheduler.checkTimesteps(ts, iStart, 'inpaint');
  const g = guidanceFor(den, opts);
  const start = iStart === 0 ? pureNoise(den, orig.shape[0], opts.rng) : noiseTo(scheduler, orig, ts[iStart], opts.rng);
  try {
    return denoiseLoop(
      den,
      start,
      iStart,
      (xt, t) => cfgPredict(den, xt, t, g),
      { ...opts, timesteps: ts, scheduler },
      'inpaint',
      (x, tPrev) => inpaintCombine(x, mask, noiseTo(scheduler, orig, tPrev, opts.rng)),
    );
  } finally {
    start.dispose();
  }
}

function checkMask(den: Denoiser, orig: tf.Tensor4D, mask: tf.Tensor4D, fn: string): void {
  const [h, w] = den.imageSize;
  const s = mask.shape;
  const okB = s[0] === 1 || s[0] === orig.shape[0];
  const okC = s[3] === 1 || s[3] === den.channels;
  if (s.length !== 4 || !okB || s[1] !== h || s[2] !== w || !okC) {
    throw new Error(
      `${fn}: mask has shape [${s.join(',')}] but needs [1 or ${orig.shape[0]},${h},${w},1 or ${den.channels}] ` +
        `(NHWC, 1 = generate, 0 = keep): resize the mask to ${h}×${w}`,
    );
  }
  const [mn, mx] = tf.tidy(() => [tf.min(mask).dataSync()[0], tf.max(mask).dataSync()[0]]);
  if (mn < 0 || mx > 1) throw new Error(`${fn}: mask values must lie in [0,1] (1 = generate), got ${mn}..${mx}`);
}
