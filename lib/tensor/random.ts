/**
 * Seeded randomness. Every random draw in the project goes through an Rng made from a seed, so
 * the same seed gives the same figure. The stream is a JS mulberry32 generator; tensor draws take
 * a fresh 32-bit seed from it, so they do not depend on TF.js's global random state.
 */
import * as tf from '@tensorflow/tfjs-core';

export class Rng {
  private state: number;
  /** @param seed any integer; the same seed replays the same sequence of draws */
  constructor(readonly seed: number) {
    this.state = (seed ^ 0x9e3779b9) >>> 0;
  }

  /** Uniform float in [0, 1). */
  uniform(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.uniform() * (hi - lo + 1));
  }

  /** A fresh 31-bit seed for a TF.js op that takes one. */
  nextSeed(): number {
    return Math.floor(this.uniform() * 2147483647);
  }

  /** Standard normal tensor of the given shape (float32). */
  normal(shape: number[]): tf.Tensor {
    return tf.randomNormal(shape, 0, 1, 'float32', this.nextSeed());
  }

  /** In-place Fisher–Yates shuffle of an index array; returns it. */
  shuffle<T>(a: T[] | Int32Array | Uint32Array): typeof a {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.uniform() * (i + 1));
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
    return a;
  }

  /** The generator's state, for checkpoints; restore with Rng.fromState. */
  getState(): { seed: number; state: number } {
    return { seed: this.seed, state: this.state };
  }

  static fromState(s: { seed: number; state: number }): Rng {
    const r = new Rng(s.seed);
    r.state = s.state >>> 0;
    return r;
  }
}
