/**
 * The diffusion formulas of the spec, each in exactly one function. The scheduler
 * (lib/schedulers/ddpm.ts), Part A's algorithms and Part B's training call these (Eq. A.2 is Alg. B.1 line 4; Eq. A.3 with a
 * stride of one is Alg. B.2 line 3).
 *
 * Tensors are NHWC [B,H,W,C]. A coefficient given as a number applies to the whole batch; one
 * given as a [B] tensor applies per sample (training draws a t per sample).
 */
import * as tf from '@tensorflow/tfjs-core';

/** A per-batch scalar or a per-sample [B] tensor of schedule values. */
export type Coef = number | tf.Tensor1D;

/** Broadcasts a Coef against a [B,H,W,C] tensor. */
function asBroadcast(c: Coef): tf.Scalar | tf.Tensor4D {
  return typeof c === 'number' ? tf.scalar(c) : (c.reshape([-1, 1, 1, 1]) as tf.Tensor4D);
}

function mapCoef(c: Coef, f: (v: number) => number, g: (t: tf.Tensor1D) => tf.Tensor1D): Coef {
  return typeof c === 'number' ? f(c) : g(c);
}

/**
 * Forward process, Eq. A.2 (= Alg. B.1 line 4): x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε.
 * @param x0 clean images [B,H,W,C]
 * @param alphaBar ᾱ_t, scalar or [B]
 * @param eps noise like x0
 */
export function forward(x0: tf.Tensor4D, alphaBar: Coef, eps: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const a = asBroadcast(mapCoef(alphaBar, Math.sqrt, (t) => t.sqrt()));
    const s = asBroadcast(
      mapCoef(
        alphaBar,
        (v) => Math.sqrt(1 - v),
        (t) => tf.sub(1, t).sqrt() as tf.Tensor1D,
      ),
    );
    return tf.add(tf.mul(x0, a), tf.mul(eps, s)) as tf.Tensor4D;
  });
}

/**
 * One-step clean-image estimate, §1.3 / Alg. B.2 line 2: x̂_0 = (x_t − √(1 − ᾱ_t) · ε̂) / √ᾱ_t.
 * @param xt noisy images [B,H,W,C]; @param epsHat predicted noise like xt; @param alphaBar ᾱ_t
 */
export function estimateX0(xt: tf.Tensor4D, epsHat: tf.Tensor4D, alphaBar: Coef): tf.Tensor4D {
  return tf.tidy(() => {
    const s = asBroadcast(
      mapCoef(
        alphaBar,
        (v) => Math.sqrt(1 - v),
        (t) => tf.sub(1, t).sqrt() as tf.Tensor1D,
      ),
    );
    const a = asBroadcast(mapCoef(alphaBar, Math.sqrt, (t) => t.sqrt()));
    return tf.div(tf.sub(xt, tf.mul(epsHat, s)), a) as tf.Tensor4D;
  });
}

/**
 * Mean of the reverse step from t to t' < t, Eq. A.3 / Alg. B.2 line 3 (DDPM eqs. 6–7):
 * x_{t'} = √ᾱ_{t'} β_t / (1 − ᾱ_t) · x̂_0 + √α_t (1 − ᾱ_{t'}) / (1 − ᾱ_t) · x_t,
 * with α_t = ᾱ_t / ᾱ_{t'} and β_t = 1 − α_t. The noise term is added by the caller.
 * @param alphaBar ᾱ_t; @param alphaBarPrev ᾱ_{t'} (1 after the last step)
 */
export function reverseStepMean(x0Hat: tf.Tensor4D, xt: tf.Tensor4D, alphaBar: number, alphaBarPrev: number): tf.Tensor4D {
  const alpha = alphaBar / alphaBarPrev;
  const beta = 1 - alpha;
  const cX0 = (Math.sqrt(alphaBarPrev) * beta) / (1 - alphaBar);
  const cXt = (Math.sqrt(alpha) * (1 - alphaBarPrev)) / (1 - alphaBar);
  return tf.tidy(() => tf.add(tf.mul(x0Hat, cX0), tf.mul(xt, cXt)) as tf.Tensor4D);
}

/** β_t of a (possibly strided) step t → t': 1 − ᾱ_t / ᾱ_{t'}. */
export function stepBeta(alphaBar: number, alphaBarPrev: number): number {
  return 1 - alphaBar / alphaBarPrev;
}

/**
 * Posterior variance of the step t → t' ("fixed small", DDPM β̃):
 * (1 − ᾱ_{t'}) / (1 − ᾱ_t) · β_t, clamped to ≥ 1e-20 as diffusers does.
 */
export function posteriorVariance(alphaBar: number, alphaBarPrev: number): number {
  return Math.max(((1 - alphaBarPrev) / (1 - alphaBar)) * stepBeta(alphaBar, alphaBarPrev), 1e-20);
}

/**
 * Learned-range log-variance (diffusers' _get_variance, variance_type "learned_range"; SPEC §1.4):
 * frac = (v + 1)/2, log σ² = frac · ln β_t + (1 − frac) · ln β̃_t.
 * @param v the model's variance channels, like x [B,H,W,C], in about [-1, 1]
 */
export function learnedRangeLogVariance(v: tf.Tensor4D, alphaBar: number, alphaBarPrev: number): tf.Tensor4D {
  const minLog = Math.log(posteriorVariance(alphaBar, alphaBarPrev));
  const maxLog = Math.log(stepBeta(alphaBar, alphaBarPrev));
  return tf.tidy(() => {
    const frac = tf.div(tf.add(v, 1), 2);
    return tf.add(tf.mul(frac, maxLog), tf.mul(tf.sub(1, frac), minLog)) as tf.Tensor4D;
  });
}

/**
 * Noising of the single-step denoiser, Eq. B.2: z = x + σ · ε (x in [0,1], not rescaled).
 * @param x clean images [B,H,W,C]; @param sigma noise level σ; @param eps noise like x
 */
export function addNoise(x: tf.Tensor4D, sigma: number, eps: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.add(x, tf.mul(eps, sigma)) as tf.Tensor4D);
}
