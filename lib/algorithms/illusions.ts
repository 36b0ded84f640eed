/**
 * Optical illusions by combining model predictions (SPEC §1.8–1.9; SPEC-flow §3.3–3.4): visual
 * anagrams (Visual Anagrams, Geng et al.) and hybrid images (factorized diffusion). Each builds an
 * estimator from CFG estimates and runs the one loop of lib/algorithms/loops.ts, so each serves DDPM
 * models (on ε̂) and flow models (on the velocity) alike. Images are NHWC [B,H,W,C].
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  predictAll,
  resolvePrompt,
  tidyPrediction,
  type CondHandle,
  type Denoiser,
  type Prediction,
  type PromptLike,
} from '../models/denoiser';
import { cfgNoise, PART_A_GUIDANCE } from '../guidance/cfg';
import { gaussianBlur, gaussianKernel1d, highPass, scaledBlur, type BlurOptions } from '../image/filters';
import { VIEWS, type View } from '../image/views';
import { denoiseLoop, fromNoise, type CfgOptions, type NoiseEstimator } from './loops';

// ---------------------------------------------------------------------------------------------
// 1.8 Visual anagrams

/**
 * The anagram's estimate at x_t: ε₁ = CFG(x_t, p₁), ε₂ = view⁻¹(CFG(view(x_t), p₂)),
 * ε = (ε₁ + ε₂)/2 (SPEC §1.8 with the vertical flip; SPEC-flow §3.3 with the 180° rotation, on the
 * velocity). Variance (learned-range models): the two branches' conditional variance channels, the
 * second mapped back, are averaged, as the Visual Anagrams code averages its inverse-viewed
 * variances (the spec leaves it open; the log-variance is affine in v, so this equals averaging the
 * log-variances). The four model calls are one batch with predictMany.
 */
export function anagramEstimator(
  den: Denoiser,
  c1: CondHandle,
  c2: CondHandle,
  u: CondHandle,
  gamma: number,
  view: View = VIEWS.flip,
): NoiseEstimator {
  return (xt, t) =>
    tidyPrediction(() => {
      const xf = view.view(xt);
      const [a1, a0, b1, b0] = predictAll(
        den,
        [
          { xt, cond: c1 },
          { xt, cond: u },
          { xt: xf, cond: c2 },
          { xt: xf, cond: u },
        ],
        t,
      );
      const e1 = cfgNoise(a0.eps, a1.eps, gamma);
      const e2 = view.inverse(cfgNoise(b0.eps, b1.eps, gamma));
      const out: Prediction = { eps: tf.div(tf.add(e1, e2), 2) as tf.Tensor4D };
      if (a1.variance && b1.variance) out.variance = tf.div(tf.add(a1.variance, view.inverse(b1.variance)), 2) as tf.Tensor4D;
      return out;
    });
}

/**
 * §1.8 visual_anagrams from pure noise: the loop with anagramEstimator.
 * @param p1 prompt seen upright; @param p2 prompt seen through the view
 * @param opts.view the transform (lib/image/views.ts), default the vertical flip of SPEC §1.8
 * @returns [n,H,W,C] upright. Draws: starting noise, then one ε per DDPM step.
 */
export function visualAnagrams(
  den: Denoiser,
  p1: PromptLike,
  p2: PromptLike,
  opts: Omit<CfgOptions, 'prompt'> & { n?: number; view?: View },
): tf.Tensor4D {
  const u = resolvePrompt(den, opts.uncondPrompt ?? den.emptyPrompt);
  const estimate = anagramEstimator(den, resolvePrompt(den, p1), resolvePrompt(den, p2), u, opts.gamma ?? PART_A_GUIDANCE, opts.view);
  return fromNoise(den, opts.n ?? 1, opts.rng, (x) => denoiseLoop(den, x, 0, estimate, opts, 'visualAnagrams'));
}

// ---------------------------------------------------------------------------------------------
// 1.9 Hybrid images (factorized diffusion)

/** The §1.9 low-pass of the course: kernel 33, σ = 2 at 64 px (SPEC §1.9), scaled to `size` px. */
export function hybridBlur(size: number): BlurOptions {
  return scaledBlur({ kernelSize: 33, sigma: 2 }, 64, size);
}

/**
 * The hybrid's noise estimate at x_t: ε = lowpass(ε₁) + highpass(ε₂), each ε_i the CFG estimate
 * under p_i (sharing one unconditional call), lowpass = gaussianBlur, highpass = x − blur(x).
 * Variance (learned-range models): the average of the two conditional variances, as for the anagrams.
 */
export function hybridEstimator(
  den: Denoiser,
  c1: CondHandle,
  c2: CondHandle,
  u: CondHandle,
  gamma: number,
  blur: BlurOptions,
): NoiseEstimator {
  return (xt, t) =>
    tidyPrediction(() => {
      const [a1, a2, a0] = predictAll(
        den,
        [
          { xt, cond: c1 },
          { xt, cond: c2 },
          { xt, cond: u },
        ],
        t,
      );
      const e1 = cfgNoise(a0.eps, a1.eps, gamma);
      const e2 = cfgNoise(a0.eps, a2.eps, gamma);
      const out: Prediction = { eps: tf.add(gaussianBlur(e1, blur), highPass(e2, blur)) as tf.Tensor4D };
      if (a1.variance && a2.variance) out.variance = tf.div(tf.add(a1.variance, a2.variance), 2) as tf.Tensor4D;
      return out;
    });
}

/**
 * §1.9 make_hybrids from pure noise: the loop with hybridEstimator. Blur default: kernel 33,
 * σ = 2 at 64 px, scaled to the model's width (hybridBlur).
 * @param pLow prompt seen from afar; @param pHigh prompt seen up close
 * @returns [n,H,W,C]. Draws: starting noise, then one ε per step.
 */
export function makeHybrids(
  den: Denoiser,
  pLow: PromptLike,
  pHigh: PromptLike,
  opts: Omit<CfgOptions, 'prompt'> & { n?: number; blur?: BlurOptions },
): tf.Tensor4D {
  const u = resolvePrompt(den, opts.uncondPrompt ?? den.emptyPrompt);
  const blur = opts.blur ?? hybridBlur(den.imageSize[1]);
  gaussianKernel1d(blur.kernelSize, blur.sigma); // validate before drawing
  const estimate = hybridEstimator(den, resolvePrompt(den, pLow), resolvePrompt(den, pHigh), u, opts.gamma ?? PART_A_GUIDANCE, blur);
  return fromNoise(den, opts.n ?? 1, opts.rng, (x) => denoiseLoop(den, x, 0, estimate, opts, 'makeHybrids'));
}
