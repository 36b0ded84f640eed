/**
 * The conditioning inputs of the Part B UNets, one definition each (SPEC §2.4–2.5).
 *
 * Time: the schedule index t ∈ [0, T−1] is the spec's t + 1 ∈ 1..T, so the network's time input is
 * (t + 1)/T ∈ (0, 1], in training and sampling alike. Class: a one-hot vector of 10, or all zeros
 * for the unconditional branch (CFG's "empty prompt", Alg. B.3's dropped class).
 */
import * as tf from '@tensorflow/tfjs-core';

/** The network's time input for schedule index t of a T-step schedule: (t + 1)/T. */
export function timeInput(t: number, T: number): number {
  return (t + 1) / T;
}

/** The time input column [B,1] for one t shared by the batch, or one t per sample. */
export function timeInputs(t: number | ArrayLike<number>, T: number, B: number): tf.Tensor2D {
  if (typeof t === 'number') return tf.fill([B, 1], timeInput(t, T)) as tf.Tensor2D;
  if (t.length !== B) throw new Error(`${t.length} timesteps for a batch of ${B}`);
  return tf.tensor2d(Float32Array.from(t, (ti) => timeInput(ti, T)), [B, 1]);
}

/**
 * Class rows [B·K] (row-major [B,K]): one-hot for a label 0..K−1, all zeros for −1 (unconditional).
 * @param keep optional per-sample flag; false zeroes the row (Alg. B.3's class dropout)
 */
export function oneHot(labels: ArrayLike<number>, K: number, keep?: ArrayLike<boolean>): Float32Array {
  const out = new Float32Array(labels.length * K);
  for (let i = 0; i < labels.length; i++) {
    const d = labels[i];
    if (!(Number.isInteger(d) && d >= -1 && d < K)) throw new Error(`digit ${d} is not a class label 0..${K - 1}`);
    if (d >= 0 && (!keep || keep[i])) out[i * K + d] = 1;
  }
  return out;
}
