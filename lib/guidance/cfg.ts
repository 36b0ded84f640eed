/**
 * Classifier-free guidance, written once for both families (docs/equations.md, A.4): Part A's
 * loops, Part B's class-conditioned sampling (DDPM and flow) and DeepFloyd IF's pipeline call these.
 *
 * The two conventions, stated once:
 * - the DDPM course (SPEC Eq. A.4, Alg. B.4): ε = ε_u + γ (ε_c − ε_u), γ = 1 the conditional
 *   prediction; this file's `gamma` is this γ, for ε and for the velocity alike;
 * - the flow course (SPEC-flow, Conventions): v = v_c + w (v_c − v_u), w = 0 the conditional
 *   velocity. The two agree when γ = w + 1: flowGuidanceScale(w) gives the γ of a course w.
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

/**
 * Eq. A.4: ε = ε_u + γ (ε_c − ε_u), for any model output (the noise ε, or a flow model's velocity).
 * γ = 0 gives the unconditional estimate, γ = 1 the conditional
 * one. @param epsUncond [B,H,W,C]; @param epsCond like it → [B,H,W,C]
 */
export function cfgNoise(epsUncond: tf.Tensor4D, epsCond: tf.Tensor4D, gamma: number): tf.Tensor4D {
  return tf.tidy(() => tf.add(epsUncond, tf.mul(tf.sub(epsCond, epsUncond), gamma)) as tf.Tensor4D);
}

/** The γ of this file for the flow course's guidance weight w (v = v_c + w (v_c − v_u)): γ = w + 1. */
export function flowGuidanceScale(w: number): number {
  if (!Number.isFinite(w)) throw new Error(`guidance weight w must be a finite number, got ${w}`);
  return w + 1;
}

/**
 * The guided noise estimate at x_t: conditional and unconditional branches as ONE batched model
 * call (when the model has predictMany), combined by cfgNoise, with the conditional branch's
 * variance (SPEC §1.6: the course feeds the conditional variance to add_variance; diffusers' IF
 * pipeline does the same, §3.3). @param xt [B,H,W,C] → ε [B,H,W,C] (+ variance)
 */
export function cfgPredict(den: Denoiser, xt: tf.Tensor4D, t: number, g: Guidance): Prediction {
  return tidyPrediction(() => {
    const [c, u] = predictAll(
      den,
      [
        { xt, cond: g.cond },
        { xt, cond: g.uncond },
      ],
      t,
    );
    const out: Prediction = { eps: cfgNoise(u.eps, c.eps, g.gamma) };
    if (c.variance) out.variance = c.variance;
    return out;
  });
}

/** The CFG settings of a loop: conditional and unconditional handles and the scale γ. */
export interface Guidance {
  cond: CondHandle;
  uncond: CondHandle;
  gamma: number;
}

/** The CFG options every guided algorithm takes. */
export interface GuidanceOptions {
  /** Conditional prompt; default den.neutralPrompt. */
  prompt?: PromptLike;
  /** Unconditional prompt; default den.emptyPrompt (the course's ""). */
  uncondPrompt?: PromptLike;
  /** Guidance scale γ; default 7 (SPEC §1.0). */
  gamma?: number;
}

/** The course's guidance scale γ of Part A (SPEC §1.0, from §1.7 on): the default of every guided algorithm. */
export const PART_A_GUIDANCE = 7;

/** Fills the defaults of SPEC §1.0/§1.6: den.neutralPrompt, den.emptyPrompt and γ = PART_A_GUIDANCE. */
export function guidanceFor(den: Denoiser, o: GuidanceOptions): Guidance {
  return {
    cond: resolvePrompt(den, o.prompt ?? den.neutralPrompt),
    uncond: resolvePrompt(den, o.uncondPrompt ?? den.emptyPrompt),
    gamma: o.gamma ?? PART_A_GUIDANCE,
  };
}
