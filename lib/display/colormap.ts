/**
 * Colour scales for figures that show signed or non-negative fields rather than images (SPEC-flow
 * §1.4's velocity updates and error heatmaps): a symmetric grey scale with 0 at mid grey, and the
 * viridis colour map with a colour bar. Every function takes its limits from the caller, so several
 * panels can share one scale. Tensors are NHWC; results are new tensors in [0, 1].
 */
import * as tf from '@tensorflow/tfjs-core';

/** Viridis (matplotlib's default map) at five stops, 0 → 1: dark purple, blue, teal, green, yellow. */
const VIRIDIS: ReadonlyArray<readonly [number, number, number]> = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

/**
 * A signed field on one symmetric grey scale: v ↦ 0.5 + v / (2·limit), clipped to [0, 1], so 0 is mid
 * grey, +limit white and −limit black. [B,H,W,C] → [B,H,W,C]
 */
export function symmetricGrey(v: tf.Tensor4D, limit: number): tf.Tensor4D {
  if (!(limit > 0 && Number.isFinite(limit))) throw new Error(`symmetricGrey: the limit must be a positive number, got ${limit}`);
  return tf.tidy(() => tf.clipByValue(tf.add(0.5, tf.div(v, 2 * limit)), 0, 1) as tf.Tensor4D);
}

/**
 * A non-negative one-channel field in viridis colours between `lo` and `hi` (values outside are
 * clipped), linearly interpolated between the map's stops. [B,H,W,1] → [B,H,W,3]
 */
export function viridis(x: tf.Tensor4D, lo: number, hi: number): tf.Tensor4D {
  if (x.shape[3] !== 1) throw new Error(`viridis colours one channel, got [${x.shape.join(',')}]`);
  if (!(hi > lo)) throw new Error(`viridis: hi (${hi}) must be above lo (${lo})`);
  return tf.tidy(() => {
    const n = VIRIDIS.length - 1;
    // Position along the stops, in [0, n].
    const s = tf.mul(tf.clipByValue(tf.div(tf.sub(x, lo), hi - lo), 0, 1), n);
    const channels = [0, 1, 2].map((ch) => {
      let out: tf.Tensor = tf.zerosLike(s);
      for (let k = 0; k < n; k++) {
        // Weight of the segment k → k+1: the triangle functions of linear interpolation.
        const a = VIRIDIS[k][ch] / 255;
        const b = VIRIDIS[k + 1][ch] / 255;
        const inSeg = tf.logicalAnd(tf.greaterEqual(s, k), k === n - 1 ? tf.lessEqual(s, k + 1) : tf.less(s, k + 1));
        const val = tf.add(a, tf.mul(tf.sub(s, k), b - a));
        out = tf.where(inSeg, val, out);
      }
      return out;
    });
    return tf.concat(channels, 3) as tf.Tensor4D;
  });
}

/** A vertical colour bar for viridis(·, lo, hi): hi at the top, lo at the bottom. → [1,height,width,3] */
export function viridisBar(lo: number, hi: number, height: number, width: number): tf.Tensor4D {
  return tf.tidy(() => {
    const col = tf.linspace(hi, lo, height).reshape([1, height, 1, 1]);
    return viridis(tf.tile(col, [1, 1, width, 1]) as tf.Tensor4D, lo, hi);
  });
}
