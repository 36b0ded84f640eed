/**
 * Training of the Part B models (SPEC §2.3–2.5):
 *  - denoiser: z = x + σε (σ = 0.5), L2 loss ‖D(z) − x‖² (Eqs. B.1–B.2), Adam lr 1e-4 constant;
 *  - time: Alg. B.1, ε-prediction, t uniform, x_t from forward() (Eq. A.2);
 *  - class: Alg. B.3, as time plus a one-hot class dropped to the zero vector with p_uncond = 0.1.
 *  - flow-time / flow-class: flow matching on the same UNets (lib/schedulers/flowMatching.ts): t uniform
 *    in [0,1), x_t on the line from noise (t = 0) to the image (t = 1), L2 loss on the velocity
 *    x₁ − x₀; the class model drops its class exactly as Alg. B.3 does.
 * DDPMs use Adam lr 1e-3 with ExponentialLR γ = 0.1^(1/epochs), stepped once per epoch.
 *
 * Timestep convention: the schedule index t ∈ [0, T−1] (lib/schedulers/schedule.ts) is the spec's
 * t+1 ∈ 1..T; the network's time input is timeInput(t, T) = (t+1)/T (lib/models/conditioning.ts).
 *
 * Checkpoints (lib/weights/tensorFile.ts, headers in lib/weights/headers.ts) hold the weights, BatchNorm stats, Adam m/v/step, epoch,
 * step, both RNG states, the loss history and the config, so a resumed run continues the same
 * loss curve (with the same draws).
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../tensor/random';
import { ddpmSchedule, type NoiseSchedule } from '../schedulers/schedule';
import { UNet } from '../models/unet';
import { oneHot } from '../models/conditioning';
import { assignTensors, storedTensors, unetConfigOf } from '../models/unetWeights';
import { describeConfig, type PartBModelDescription } from '../models/registry';
import { TRAINING_OBJECTIVES, type TrainingBatch } from './objectives';

export type { TrainingBatch };
import { parseCheckpointHeader, type CheckpointHeader, type WeightsHeader } from '../weights/headers';
import { type TrainConfig, type TrainState } from '../weights/runConfig';
import { Adam } from './adam';
import { Ema } from './ema';
import { loadTensorFile, saveTensorFile, type StoredTensor } from '../weights/tensorFile';
import { removeStaleTmpFiles } from '../files';
import type { MnistSet } from '../data/mnist';

export interface StepInfo {
  step: number;
  epoch: number;
  stepInEpoch: number;
  stepsPerEpoch: number;
  loss: number;
  lr: number;
}

/** Owns a model, its optimizer and the RNGs; runs steps and epochs and writes checkpoints. */
export class Trainer {
  readonly net: UNet;
  /** What the run trains (lib/models/registry.ts): its loss, classes and image shape. */
  readonly model: PartBModelDescription;
  readonly adam: Adam;
  /** EMA of the parameters when config.emaDecay > 0 (what weights files and sampling use). */
  readonly ema: Ema | null;
  readonly schedule: NoiseSchedule;
  state: TrainState;
  private shuffleRng: Rng;
  private noiseRng: Rng;

  constructor(readonly config: TrainConfig) {
    validateConfig(config);
    this.model = describeConfig({ model: config.model, objective: config.objective ?? 'ddpm' });
    this.net = new UNet(unetConfigOf(config), config.seed);
    this.adam = new Adam(this.net.store.params);
    this.ema = config.emaDecay ? new Ema(this.net.store.params, config.emaDecay) : null;
    this.schedule = ddpmSchedule(config.T);
    this.shuffleRng = new Rng(config.seed + 1);
    this.noiseRng = new Rng(config.seed + 2);
    this.state = {
      epoch: 0,
      stepInEpoch: 0,
      step: 0,
      losses: [],
      epochEnds: [],
      shuffleAtEpochStart: this.shuffleRng.getState(),
      noise: this.noiseRng.getState(),
      trainSeconds: 0,
      ...(this.ema ? { emaUpdates: 0 } : {}),
    };
  }

  /**
   * Learning rate of step `step` (0-based, over the run) in epoch `epoch` (0-based): lr · γ^epoch with
   * γ = 0.1^(1/epochs) (ExponentialLR stepped per epoch), or constant; times (step + 1)/warmupSteps
   * during a linear warm-up.
   */
  lrAt(epoch: number, step = this.state.step): number {
    const c = this.config;
    const base = c.lrDecay ? c.lr * Math.pow(0.1, epoch / c.epochs) : c.lr;
    const warmup = c.warmupSteps ?? 0;
    return step < warmup ? (base * (step + 1)) / warmup : base;
  }

  stepsPerEpoch(count: number): number {
    return Math.ceil(this.epochImages(count) / this.config.batch);
  }

  private epochImages(count: number): number {
    return Math.min(count, this.config.imagesPerEpoch ?? count);
  }

  /**
   * Draws the step's random inputs (Alg. B.1 lines 2–3, B.3's class dropout) from the noise RNG.
   * x: [B,28,28,1] in [0,1]; labels: B digits (class model).
   */
  private drawInputs(x: tf.Tensor4D, labels?: ArrayLike<number>, pairedNoise?: Float32Array): TrainingBatch {
    const [H, W, C] = this.model.imageShape;
    if (x.rank !== 4 || x.shape[1] !== H || x.shape[2] !== W || x.shape[3] !== C) {
      throw new Error(`training batch must have shape [B,${H},${W},${C}] with values in [0,1], got [${x.shape.join(',')}]`);
    }
    const c = this.config;
    const B = x.shape[0];
    // Reflow trains on fixed (noise, image) pairs: the noise comes with the batch.
    const eps = (pairedNoise ? tf.tensor4d(pairedNoise, [B, H, W, C]) : this.noiseRng.normal([B, H, W, C])) as tf.Tensor4D;
    const times = TRAINING_OBJECTIVES[this.model.loss].drawTimes(this.noiseRng, B, c.T);
    let classes: Float32Array | undefined;
    const K = this.model.numClasses;
    if (K > 0) {
      if (!labels || labels.length !== B) {
        eps.dispose();
        throw new Error(`class-conditioned training needs ${B} labels for the batch, got ${labels?.length ?? 0}`);
      }
      // Alg. B.3: one-hot c, replaced by the zero vector with probability p_uncond.
      const keep = Array.from({ length: B }, () => this.noiseRng.uniform() >= c.pUncond);
      classes = oneHot(labels, K, keep);
    }
    return { x0: x, eps, ...times, ...(classes ? { classes } : {}) };
  }

  /** Loss and gradients of one step (the loss is not read yet). */
  private beginStep(
    x: tf.Tensor4D,
    labels?: ArrayLike<number>,
    pairedNoise?: Float32Array,
  ): { value: tf.Scalar; grads: Map<string, tf.Tensor>; batch: TrainingBatch } {
    const batch = this.drawInputs(x, labels, pairedNoise);
    try {
      return this.gradientsOn(batch);
    } catch (e) {
      batch.eps.dispose();
      throw e;
    }
  }

  /**
   * One optimizer step on given random inputs (Alg. B.1 / B.3 lines 4–6: the loss, its gradient,
   * Adam, the BatchNorm statistics, the EMA): what the Part B notebook's training-step cell is
   * checked against. Does not advance the trainer's RNGs or dispose the batch. @returns the loss.
   */
  stepOn(batch: TrainingBatch, lr = this.lrAt(this.state.epoch)): number {
    const step = this.gradientsOn(batch);
    let loss = NaN;
    try {
      loss = step.value.dataSync()[0];
    } finally {
      step.value.dispose();
    }
    return this.finishStep(step, loss, lr, false);
  }

  private gradientsOn(batch: TrainingBatch): { value: tf.Scalar; grads: Map<string, tf.Tensor>; batch: TrainingBatch } {
    const store = this.net.store;
    const names = [...store.params.keys()];
    const vars = names.map((n) => store.params.get(n)!);
    try {
      const { value, grads } = tf.variableGrads(() => trainingLoss(this.net, batch, this.schedule, this.config), vars);
      return { value, grads: new Map(names.map((n, i) => [n, grads[vars[i].name]])), batch };
    } catch (e) {
      store.discardPending();
      throw e;
    }
  }

  /** Applies a step whose loss has been read: NaN check, Adam, BatchNorm running stats. */
  private finishStep(
    step: { grads: Map<string, tf.Tensor>; batch: TrainingBatch },
    lossValue: number,
    lr: number,
    ownsBatch = true,
  ): number {
    const store = this.net.store;
    try {
      if (!Number.isFinite(lossValue)) {
        throw new Error(
          `training loss became ${lossValue} at step ${this.state.step + 1} (epoch ${this.state.epoch + 1}); the weights were not updated and the last checkpoint is intact — lower the learning rate or check the data for NaNs`,
        );
      }
      this.adam.update(store.params, step.grads, lr);
      store.commitBatchNorm();
      if (this.ema) {
        this.ema.update(store.params);
        this.state.emaUpdates = this.ema.updates;
      }
    } finally {
      for (const g of step.grads.values()) g.dispose();
      store.discardPending();
      if (ownsBatch) step.batch.eps.dispose();
    }
    this.state.step++;
    this.state.losses.push(lossValue);
    this.state.noise = this.noiseRng.getState();
    return lossValue;
  }

  /**
   * One optimizer step on a batch. x: [B,28,28,1] in [0,1]; labels: B digits (class model).
   * Throws (leaving weights and optimizer untouched) when the loss is not finite. Reads the loss
   * synchronously: on WebGPU (no synchronous readback in Node) use trainStepAsync.
   */
  trainStep(x: tf.Tensor4D, labels?: ArrayLike<number>, lr = this.lrAt(this.state.epoch)): number {
    const step = this.beginStep(x, labels);
    let loss = NaN;
    try {
      loss = step.value.dataSync()[0];
    } finally {
      step.value.dispose();
    }
    return this.finishStep(step, loss, lr);
  }

  /** trainStep with an asynchronous loss read: works on every engine, WebGPU included. */
  async trainStepAsync(
    x: tf.Tensor4D,
    labels?: ArrayLike<number>,
    lr = this.lrAt(this.state.epoch),
    pairedNoise?: Float32Array,
  ): Promise<number> {
    const step = this.beginStep(x, labels, pairedNoise);
    let loss = NaN;
    try {
      loss = (await step.value.data())[0];
    } finally {
      step.value.dispose();
    }
    return this.finishStep(step, loss, lr);
  }

  /**
   * Trains until `config.epochs` epochs are complete (or `untilEpoch`). Writes `last.ckpt` at the
   * end of every epoch and every `checkpointEvery` steps, and `epoch-K.weights` at epoch ends (the
   * EMA weights when the run keeps an EMA, with the live ones beside them as `epoch-K-live.weights`),
   * those before `last.ckpt`. Removes stale `*.tmp` files of killed writes from `outDir` on start,
   * and refuses to write a file holding a non-finite value (see checkFinite).
   */
  async run(
    data: MnistSet,
    opts: {
      /** Reflow: the noise x₀ paired with each data image (count × 784), used instead of fresh draws. */
      pairedNoise?: Float32Array;
      outDir?: string;
      checkpointEvery?: number;
      untilEpoch?: number;
      onStep?: (s: StepInfo) => void;
      onEpoch?: (epoch: number) => void;
      maxSteps?: number;
    } = {},
  ): Promise<void> {
    const c = this.config;
    const [H, W, C] = this.model.imageShape;
    const px = H * W * C;
    if (data.images.length !== data.count * px) {
      throw new Error(`training images must be ${data.count}×${H}×${W}×${C} = ${data.count * px} values, got ${data.images.length}`);
    }
    const until = Math.min(opts.untilEpoch ?? c.epochs, c.epochs);
    if (opts.pairedNoise && opts.pairedNoise.length !== data.images.length) {
      throw new Error(`reflow pairs: ${opts.pairedNoise.length / px} noise images for ${data.count} data images; regenerate the pairs`);
    }
    // Temporary files of an atomic write that a killed run left behind.
    if (opts.outDir) removeStaleTmpFiles(opts.outDir);
    const n = this.epochImages(data.count);
    const spe = this.stepsPerEpoch(data.count);
    let stepsThisCall = 0;
    while (this.state.epoch < until) {
      // Per-epoch shuffle: the permutation is a function of the shuffle RNG state at epoch start.
      const sh = Rng.fromState(this.state.shuffleAtEpochStart);
      const perm = new Int32Array(data.count);
      for (let i = 0; i < perm.length; i++) perm[i] = i;
      sh.shuffle(perm);
      while (this.state.stepInEpoch < spe) {
        const lr = this.lrAt(this.state.epoch);
        const start = this.state.stepInEpoch * c.batch;
        const B = Math.min(c.batch, n - start);
        const buf = new Float32Array(B * px);
        const lab = new Uint8Array(B);
        const noise = opts.pairedNoise ? new Float32Array(B * px) : undefined;
        for (let i = 0; i < B; i++) {
          const j = perm[start + i];
          buf.set(data.images.subarray(j * px, (j + 1) * px), i * px);
          noise?.set(opts.pairedNoise!.subarray(j * px, (j + 1) * px), i * px);
          lab[i] = data.labels[j];
        }
        const t0 = performance.now();
        const x = tf.tensor4d(buf, [B, H, W, C]);
        let loss: number;
        try {
          loss = await this.trainStepAsync(x, lab, lr, noise);
        } finally {
          x.dispose();
        }
        this.state.trainSeconds += (performance.now() - t0) / 1000;
        this.state.stepInEpoch++;
        stepsThisCall++;
        opts.onStep?.({
          step: this.state.step,
          epoch: this.state.epoch,
          stepInEpoch: this.state.stepInEpoch,
          stepsPerEpoch: spe,
          loss,
          lr,
        });
        const epochDone = this.state.stepInEpoch >= spe;
        if (epochDone) {
          this.state.epoch++;
          this.state.stepInEpoch = 0;
          this.state.epochEnds.push(this.state.step);
          this.state.shuffleAtEpochStart = sh.getState();
        }
        if (opts.outDir && (epochDone || (opts.checkpointEvery && this.state.step % opts.checkpointEvery === 0))) {
          // The epoch snapshots first: a kill between them and last.ckpt then loses no snapshot
          // (the resumed run, one epoch back, writes them again).
          if (epochDone) {
            await this.saveWeights(path.join(opts.outDir, `epoch-${this.state.epoch}.weights`));
            // The live weights too, so EMA on/off can be compared along the run.
            if (this.ema) await this.saveWeights(path.join(opts.outDir, `epoch-${this.state.epoch}-live.weights`), {}, { live: true });
          }
          await this.saveCheckpoint(path.join(opts.outDir, 'last.ckpt'));
        }
        if (epochDone) {
          opts.onEpoch?.(this.state.epoch);
          break;
        }
        if (opts.maxSteps && stepsThisCall >= opts.maxSteps) return;
      }
      if (opts.maxSteps && stepsThisCall >= opts.maxSteps) return;
    }
  }

  /** Full checkpoint: weights, BN stats, Adam m/v/step, state, config. Atomic; async reads work on WebGPU. */
  async saveCheckpoint(file: string): Promise<void> {
    const t = await storedTensors(this.net.store.named(), 'model/');
    for (const [k, v] of await storedTensors(this.adam.m, 'adam_m/')) t.set(k, v);
    for (const [k, v] of await storedTensors(this.adam.v, 'adam_v/')) t.set(k, v);
    if (this.ema) for (const [k, v] of await storedTensors(this.ema.shadow, 'ema/')) t.set(k, v);
    const header: CheckpointHeader = { kind: 'partb-checkpoint', config: this.config, state: this.state, adamStep: this.adam.step };
    this.checkFinite(file, t);
    saveTensorFile(file, t, header);
  }

  /**
   * Weights only (for sampling and shipping), with the config and loss history in the header: the
   * EMA parameters when the run keeps an EMA (with the live BatchNorm statistics), else the live
   * ones; `live: true` writes the live parameters regardless (for comparing the two).
   */
  async saveWeights(file: string, extra: Record<string, unknown> = {}, opts: { live?: boolean } = {}): Promise<void> {
    const useEma = this.ema !== null && !opts.live;
    const header: WeightsHeader = {
      kind: 'partb-weights',
      config: this.config,
      epoch: this.state.epoch,
      step: this.state.step,
      losses: this.state.losses,
      epochEnds: this.state.epochEnds,
      trainSeconds: this.state.trainSeconds,
      parameters: useEma ? `EMA (decay ${this.config.emaDecay}, ${this.ema!.updates} updates)` : 'live',
      ...extra,
    };
    const t = await storedTensors(this.weightsToSave(useEma), '');
    this.checkFinite(file, t);
    saveTensorFile(file, t, header);
  }

  /**
   * Refuses to write a file holding a NaN or infinite value (weights, BatchNorm running stats,
   * Adam moments, EMA): the previous file stays as it was.
   */
  private checkFinite(file: string, tensors: Map<string, StoredTensor>): void {
    for (const [name, t] of tensors) {
      const i = t.data.findIndex((v) => !Number.isFinite(v));
      if (i < 0) continue;
      const s = this.state;
      throw new Error(
        `refusing to write ${file}: tensor ${name} holds ${t.data[i]} (index ${i}) after step ${s.step} (epoch ${s.stepInEpoch === 0 ? s.epoch : s.epoch + 1}); the previous ${path.basename(file)} is kept — training diverged: lower the learning rate or check the data for NaNs, then restart or --resume from the last good checkpoint`,
      );
    }
  }

  /** The tensors a weights file holds: the EMA or live parameters, then the BatchNorm buffers. */
  private weightsToSave(useEma: boolean): Map<string, tf.Variable> {
    const store = this.net.store;
    if (!useEma) return store.named();
    return new Map([...this.ema!.shadow, ...store.buffers]);
  }

  /**
   * Starts from the weights of `file` (same model and D): parameters and BatchNorm statistics, the
   * EMA restarting from them; Adam and the step count start fresh. Reflow's initialisation.
   */
  initFromWeights(file: string): void {
    const { tensors } = loadTensorFile(file);
    assignTensors(this.net.store.named(), tensors, '', file);
    if (this.ema) for (const [n, s] of this.ema.shadow) s.assign(this.net.store.params.get(n)!);
  }

  /** Re-creates a trainer from a checkpoint written by saveCheckpoint. */
  static resume(file: string, overrides: Partial<TrainConfig> = {}): Trainer {
    const { meta: raw, tensors } = loadTensorFile(file);
    const meta = parseCheckpointHeader(raw, file);
    const tr = new Trainer({ ...meta.config, ...overrides });
    assignTensors(tr.net.store.named(), tensors, 'model/', file);
    assignTensors(tr.adam.m, tensors, 'adam_m/', file);
    assignTensors(tr.adam.v, tensors, 'adam_v/', file);
    tr.adam.step = meta.adamStep;
    if (tr.ema) {
      assignTensors(tr.ema.shadow, tensors, 'ema/', file);
      tr.ema.updates = meta.state.emaUpdates ?? 0;
    }
    tr.state = meta.state;
    tr.shuffleRng = Rng.fromState(meta.state.shuffleAtEpochStart);
    tr.noiseRng = Rng.fromState(meta.state.noise);
    return tr;
  }

  dispose(): void {
    this.net.dispose();
    this.adam.dispose();
    this.ema?.dispose();
  }
}

/** The random inputs of one training step, drawn by the trainer (or given, for cross-engine checks). */
/**
 * The training objective of each Part B model on one batch (a scalar, for variableGrads):
 * denoiser ‖D(x + σε) − x‖² (Eq. B.1–B.2); DDPMs ‖ε_θ(x_t, t[, c]) − ε‖² with x_t by Eq. A.2
 * (Alg. B.1 / B.3 lines 4–6), time input timeInput(t, T); flow matching ‖v_θ(x_t, t[, c]) − (x₁ − x₀)‖²
 * with x_t = (1 − t)x₀ + t x₁, noise x₀ = eps, image x₁ = x0, time input t.
 */
export function trainingLoss(
  net: UNet,
  batch: TrainingBatch,
  schedule: NoiseSchedule,
  config: Pick<TrainConfig, 'sigma' | 'objective'>,
): tf.Scalar {
  const model = describeConfig({ model: net.config.kind, objective: config.objective ?? 'ddpm' });
  return tf.tidy(() => {
    const B = batch.x0.shape[0];
    const K = model.numClasses;
    let c: tf.Tensor2D | undefined;
    if (K > 0) {
      if (!batch.classes || batch.classes.length !== B * K) throw new Error(`the class-conditioned loss needs ${B}×${K} class values`);
      c = tf.tensor2d(batch.classes, [B, K]);
    }
    return TRAINING_OBJECTIVES[model.loss].loss(net, batch, c, schedule, config.sigma);
  });
}

function validateConfig(c: TrainConfig): void {
  for (const k of ['D', 'batch', 'epochs', 'T'] as const) {
    if (!(Number.isInteger(c[k]) && c[k] > 0)) throw new Error(`training option ${k} must be a positive integer, got ${c[k]}`);
  }
  if (!(c.lr > 0)) throw new Error(`learning rate must be positive, got ${c.lr}`);
  // The registry has no flow model on the denoiser's network (it has no time input).
  describeConfig({ model: c.model, objective: c.objective ?? 'ddpm' });
  if (c.warmupSteps !== undefined && !(Number.isInteger(c.warmupSteps) && c.warmupSteps >= 0))
    throw new Error(`warm-up steps must be a whole number ≥ 0, got ${c.warmupSteps}`);
  if (c.emaDecay !== undefined && !(c.emaDecay >= 0 && c.emaDecay < 1))
    throw new Error(`EMA decay must be in [0, 1) (0 = off), got ${c.emaDecay}`);
}
