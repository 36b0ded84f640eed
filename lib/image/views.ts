/**
 * The anagram views: a small family of invertible image transforms (Visual Anagrams, Geng et al.
 * 2024, §3 and its code's views/). An anagram denoises x_t under prompt p₁ as it is and under p₂
 * as seen through a view, then maps the second estimate back with the inverse (docs/equations.md,
 * A.8). Every view here is orthogonal (a permutation of pixels, or a negation), so it maps N(0, I)
 * noise to N(0, I) noise: what the method needs for the noisy image to stay on the model's path.
 * Tensors are NHWC [B,H,W,C]; the rotations by 90° need square images.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface View {
  /** A short name for captions and menus ("flip", "rot180", ...). */
  readonly name: string;
  /** What a reader sees: "upside down (vertical flip)". */
  readonly description: string;
  /** The view of an image. [B,H,W,C] → [B,H,W,C] (a new tensor). */
  view(x: tf.Tensor4D): tf.Tensor4D;
  /** Its inverse: inverse(view(x)) equals x exactly. */
  inverse(x: tf.Tensor4D): tf.Tensor4D;
}

/** Vertical flip (upside down, along H), the anagram view of SPEC §1.8 (not a 180° rotation). */
export function flipVertical(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.reverse(x, 1) as tf.Tensor4D);
}

/** Rotation by 180° (both spatial axes), the anagram view of the current course (SPEC-flow §3.3). */
export function rotate180(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.reverse(x, [1, 2]) as tf.Tensor4D);
}

function checkSquare(x: tf.Tensor4D, what: string): void {
  if (x.shape[1] !== x.shape[2]) throw new Error(`${what} needs square images, got ${x.shape[1]}×${x.shape[2]}`);
}

/** Rotation by 90° counter-clockwise: out[i][j] = in[j][W−1−i] (square images). */
export function rotate90(x: tf.Tensor4D): tf.Tensor4D {
  checkSquare(x, 'the 90° rotation');
  return tf.tidy(() => tf.reverse(tf.transpose(x, [0, 2, 1, 3]), 1) as tf.Tensor4D);
}

/** Rotation by 90° clockwise, rotate90's inverse. */
export function rotate270(x: tf.Tensor4D): tf.Tensor4D {
  checkSquare(x, 'the 90° rotation');
  return tf.tidy(() => tf.transpose(tf.reverse(x, 1), [0, 2, 1, 3]) as tf.Tensor4D);
}

/**
 * Negation x → −x, the paper's "negate" view: exact for models whose clean images are centred on
 * 0 ([-1, 1], DeepFloyd IF), where it swaps black and white. On [0, 1] data (MNIST) a negated
 * image lies outside the data's range, so the illusion has nothing to converge to there.
 */
export function negate(x: tf.Tensor4D): tf.Tensor4D {
  return tf.neg(x);
}

/** Transpose (reflection in the main diagonal): its own inverse (square images). */
export function transposeImage(x: tf.Tensor4D): tf.Tensor4D {
  checkSquare(x, 'the transpose');
  return tf.transpose(x, [0, 2, 1, 3]);
}

/** The views by name. The flip is the 2024 course's, the 180° rotation the current course's. */
export const VIEWS = {
  flip: { name: 'flip', description: 'upside down (vertical flip)', view: flipVertical, inverse: flipVertical },
  rot180: { name: 'rot180', description: 'rotated by 180°', view: rotate180, inverse: rotate180 },
  rot90: { name: 'rot90', description: 'rotated by 90° counter-clockwise', view: rotate90, inverse: rotate270 },
  transpose: { name: 'transpose', description: 'reflected in the diagonal', view: transposeImage, inverse: transposeImage },
  negate: { name: 'negate', description: 'negated (black ↔ white)', view: negate, inverse: negate },
} as const satisfies Record<string, View>;

export type ViewName = keyof typeof VIEWS;

/** A view by name; one line listing the names for an unknown one. */
export function viewByName(name: string): View {
  const v = (VIEWS as Record<string, View>)[name];
  if (!v) throw new Error(`unknown anagram view "${name}": use one of ${Object.keys(VIEWS).join(', ')}`);
  return v;
}
