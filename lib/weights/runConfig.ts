/**
 * What a Part B run is, as its files store it: the networks, objectives and model names, the
 * training config and the training state. Checkpoint and weights headers (headers.ts) carry these;
 * the model registry (lib/models/registry.ts) describes each model, the trainer runs a config.
 */

/** Which of the three Part B networks (SPEC §2.2, §2.4, §2.5). */
export type UNetKind = 'denoiser' | 'time' | 'class';

/**
 * What a Part B UNet learns: the DDPM noise ε (SPEC §2.4–2.5; for the denoiser, the clean image from a
 * noisy one, §2.3), the flow-matching velocity (lib/schedulers/flowMatching.ts), or, for the
 * denoiser only, the clean image from pure noise ('pure-noise', SPEC-flow Part B §1.2.3).
 */
export type Objective = 'ddpm' | 'flow' | 'pure-noise';

/**
 * The Part B models by name: the three of the spec, the two flow-matching ones on the same UNets,
 * and the denoiser trained on pure noise (the current course's §1.2.3).
 */
export type PartBModel = UNetKind | 'flow-time' | 'flow-class' | 'denoiser-pure-noise';

export const PARTB_MODELS: readonly PartBModel[] = ['denoiser', 'time', 'class', 'flow-time', 'flow-class', 'denoiser-pure-noise'];

/** The UNet kinds a header may name. */
export const UNET_KINDS: readonly UNetKind[] = ['denoiser', 'time', 'class'];

/** The objectives a header may name. */
export const OBJECTIVES: readonly Objective[] = ['ddpm', 'flow', 'pure-noise'];

/** Everything that defines a Part B training run (stored in every checkpoint and weights file). */
export interface TrainConfig {
  model: UNetKind;
  preset: string;
  /** Hidden channels D. */
  D: number;
  batch: number;
  epochs: number;
  /** Initial Adam learning rate. */
  lr: number;
  /** ExponentialLR with γ = 0.1^(1/epochs), stepped per epoch (DDPMs); false = constant (denoiser). */
  lrDecay: boolean;
  /**
   * Linear learning-rate warm-up: step k (0-based) of the run uses (k + 1)/warmupSteps of the
   * epoch's rate until k reaches warmupSteps; absent or 0 = none (files written before it existed).
   */
  warmupSteps?: number;
  /** Images per epoch: null = the whole training split; else the first N of each epoch's shuffle. */
  imagesPerEpoch: number | null;
  /** Denoiser noise level σ. */
  sigma: number;
  /** Diffusion steps T. */
  T: number;
  /** Class-dropout probability for CFG. */
  pUncond: number;
  seed: number;
  /** EMA decay of the weights (lib/training/ema.ts); absent or 0 = no EMA (files written before it existed). */
  emaDecay?: number;
  /** What the UNet predicts; absent = 'ddpm' (files written before flow matching existed). */
  objective?: Objective;
  /** The time-only UNet's injection of t (lib/models/unet.ts); absent = 'additive' (files written before the variant). */
  timeConditioning?: 'additive' | 'multiplicative';
  /** Rectified flow ("reflow"): the run trains on the noise–image pairs of this file instead of MNIST. */
  reflowPairs?: string;
}

/** A seeded generator's state (lib/tensor/random.ts Rng.getState). */
export interface RngState {
  seed: number;
  state: number;
}

/** Mutable progress of a run; stored in checkpoints. */
export interface TrainState {
  /** Completed epochs. */
  epoch: number;
  /** Batches done in the current (incomplete) epoch. */
  stepInEpoch: number;
  /** Total optimizer steps. */
  step: number;
  /** Loss of every step. */
  losses: number[];
  /** Step count at the end of each completed epoch. */
  epochEnds: number[];
  /** Shuffle RNG state at the start of the current epoch (re-creates its permutation on resume). */
  shuffleAtEpochStart: RngState;
  /** Noise/timestep/class-dropout RNG state. */
  noise: RngState;
  /** Seconds of training so far (summed over resumes). */
  trainSeconds: number;
  /** EMA updates taken (when the config has an EMA decay). */
  emaUpdates?: number;
}
