/**
 * Image filters on NHWC tensors [B,H,W,C]: the project's one Gaussian blur (§1.2's classical
 * denoising and §1.9's low-pass, as torchvision's gaussian_blur with reflect padding), its
 * high-pass, and the vertical flip of the visual anagrams (§1.8).
 */
import * as tf from '@tensorflow/tfjs-core';

/** A Gaussian blur: odd kernel size (pixels) and standard deviation σ (pixels). */
export interface BlurOptions {
  kernelSize: number;
  sigma: number;
}

/**
 * Scales blur parameters given at one image size to another, as Visual Anagrams does for its
 * hybrid views (k = 33, σ = 2 at 64 px → k = 133, σ = 8 at 256 px): σ · s and k = round(k · s)
 * made odd, with s = size / at.
 */
export function scaledBlur(base: BlurOptions, at: number, size: number): BlurOptions {
  const s = size / at;
  let k = Math.max(1, Math.round(base.kernelSize * s));
  if (k % 2 === 0) k += 1;
  return { kernelSize: k, sigma: base.sigma * s };
}

/** Normalized 1-D Gaussian taps at offsets −(k−1)/2 … (k−1)/2, as torchvision's gaussian_blur. */
export function gaussianKernel1d(kernelSize: number, sigma: number): Float64Array {
  if (!Number.isInteger(kernelSize) || kernelSize < 1 || kernelSize % 2 === 0) {
    throw new Error(`blur kernelSize ${kernelSize} must be a positive odd integer (e.g. 33)`);
  }
  if (!(sigma > 0)) throw new Error(`blur sigma ${sigma} must be > 0`);
  const r = (kernelSize - 1) / 2;
  const k = new Float64Array(kernelSize);
  let sum = 0;
  for (let i = 0; i < kernelSize; i++) {
    k[i] = Math.exp(-0.5 * ((i - r) / sigma) ** 2);
    sum += k[i];
  }
  for (let i = 0; i < kernelSize; i++) k[i] /= sum;
  return k;
}

/** Index i reflected into [0, n−1] without repeating the edge (torch 'reflect' padding), any distance. */
function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let j = ((i % period) + period) % period;
  if (j >= n) j = period - j;
  return j;
}

/**
 * The n×n matrix of a 1-D blur along one axis with reflect boundaries: row i holds the taps that
 * output pixel i takes from each input pixel (M[i][reflect(i+d)] += k[d+r]).
 */
export function blurMatrix(n: number, kernel: Float64Array): Float32Array {
  const r = (kernel.length - 1) / 2;
  const m = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let d = -r; d <= r; d++) m[i * n + reflectIndex(i + d, n)] += kernel[d + r];
  }
  return m;
}

/**
 * Gaussian blur of every channel of x, separable, with reflect padding (as torchvision's
 * gaussian_blur). The one blur of the project: §1.2's classical denoising and §1.9's low-pass.
 * Written as two small matrix products (one per axis) so it runs on every backend and accepts
 * kernels wider than the image.
 * @param x [B,H,W,C] → blurred [B,H,W,C]
 */
export function gaussianBlur(x: tf.Tensor4D, opts: BlurOptions): tf.Tensor4D {
  const k = gaussianKernel1d(opts.kernelSize, opts.sigma);
  const [b, h, w, c] = x.shape;
  return tf.tidy(() => {
    const mh = tf.tensor2d(blurMatrix(h, k), [h, h]);
    const mw = tf.tensor2d(blurMatrix(w, k), [w, w]);
    // along H: [B,H,W,C] → [H, B·W·C], y = M_H · x
    const xh = tf.transpose(x, [1, 0, 2, 3]).reshape([h, b * w * c]);
    const yh = tf.matMul(mh, xh).reshape([h, b, w, c]).transpose([1, 2, 0, 3]); // [B,W,H,C]
    // along W: [B,W,H,C] → [W, B·H·C]
    const yw = tf.matMul(
      mw,
      yh
        .reshape([b, w, h * c])
        .transpose([1, 0, 2])
        .reshape([w, b * h * c]),
    );
    return yw.reshape([w, b, h, c]).transpose([1, 2, 0, 3]) as tf.Tensor4D;
  });
}

/** High-pass of §1.9: x − blur(x). [B,H,W,C] → [B,H,W,C]. */
export function highPass(x: tf.Tensor4D, opts: BlurOptions): tf.Tensor4D {
  return tf.tidy(() => tf.sub(x, gaussianBlur(x, opts)) as tf.Tensor4D);
}
