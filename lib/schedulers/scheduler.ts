/**
 * The one step interface of the project's two scheduler families (docs/equations.md, "Shared
 * conventions"), modelled on diffusers: a model predicts, a scheduler steps. The loop
 * (lib/algorithms/loops.ts) and every Part A algorithm see only this interface, so they run
 * unchanged on DDPM models (ε̂, integer timestep indices stepping down to 0) and on flow-matching
 * models (the velocity v̂, flow times stepping up to 1).
 *
 * A grid is the list of levels a loop visits: the loop steps from each entry to the next. A start
 * index iStart into the grid is the editing level of SDEdit and the start of inpainting.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../tensor/random';

/** What a model's output is: the noise ε̂ (DDPM) or the velocity v̂ = dx/dt (flow matching). */
export type PredictionType = 'epsilon' | 'velocity';

/**
 * One model evaluation as a step needs it. `eps` is the model's output: the noise ε̂ for epsilon
 * models, the velocity v̂ for velocity models (the field keeps its historical name). `variance`:
 * the raw variance channels of learned-range DDPM models (IF), absent otherwise.
 */
export interface NoisePrediction {
  eps: tf.Tensor4D;
  variance?: tf.Tensor4D;
}

export interface Scheduler {
  /** The family: 'ddpm' (lib/schedulers/ddpm.ts) or 'flow' (lib/schedulers/flowMatching.ts). */
  readonly family: 'ddpm' | 'flow';
  /** What the model it steps must predict. */
  readonly prediction: PredictionType;
  /** The default grid from pure noise to the image (the course's strided list; h = 0.02 from 0). */
  timesteps(): number[];
  /** Throws one line unless `ts` is a valid grid of this family and iStart indexes an entry before its last. */
  checkTimesteps(ts: readonly number[], iStart: number, fn: string): void;
  /**
   * The forward process to level t: the noisy image made from a clean one and one noise draw
   * (DDPM Eq. A.2: √ᾱ_t x₀ + √(1−ᾱ_t) ε; flow: (1 − t)·ε + t·x₁). [B,H,W,C] → [B,H,W,C]
   */
  addNoise(clean: tf.Tensor4D, noise: tf.Tensor4D, t: number): tf.Tensor4D;
  /** The one-step estimate of the clean image at level t (DDPM x̂₀, Eq. A.3's; flow x̂₁ = x_t + (1 − t)·v̂). */
  predictOriginal(xt: tf.Tensor4D, pred: NoisePrediction, t: number): tf.Tensor4D;
  /**
   * One step x_t → x_{t'} of the grid (t' the next entry). DDPM draws one z from `noise` when t > 0;
   * the flow scheduler's Euler step draws nothing. Returns a new tensor; the inputs are not disposed.
   */
  step(xt: tf.Tensor4D, pred: NoisePrediction, t: number, tNext: number, noise: Rng | tf.Tensor4D): tf.Tensor4D;
}
