/** What diffusers' DDPMScheduler does to x̂₀ before the posterior mean: dynamic thresholding or clipping. */
import * as tf from '@tensorflow/tfjs-core';

/**
 * Dynamic thresholding (Imagen; diffusers _threshold_sample): per sample, s = quantile(|x̂₀|, ratio)
 * (linear interpolation, as torch.quantile), clamped to [1, maxValue]; x̂₀ ← clamp(x̂₀, −s, s) / s.
 * @param x0 [B,H,W,C] → same shape (new tensor)
 * @returns the thresholded tensor and the per-sample s used
 */
export function dynamicThreshold(x0: tf.Tensor4D, ratio: number, maxValue: number): { x0: tf.Tensor4D; s: number[] } {
  const [B] = x0.shape;
  const n = x0.size / B;
  const data = x0.dataSync();
  const s: number[] = [];
  for (let b = 0; b < B; b++) {
    const a = Float64Array.from(data.subarray(b * n, (b + 1) * n), Math.abs).sort();
    const pos = ratio * (n - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, n - 1);
    const q = a[lo] + (a[hi] - a[lo]) * (pos - lo);
    s.push(Math.min(Math.max(q, 1), maxValue));
  }
  const out = tf.tidy(() => {
    const st = tf.tensor1d(s).reshape([B, 1, 1, 1]);
    return tf.div(tf.minimum(tf.maximum(x0, tf.neg(st)), st), st) as tf.Tensor4D;
  });
  return { x0: out, s };
}
