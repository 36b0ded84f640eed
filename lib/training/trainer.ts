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
import { addNoise, forward } from '../schedulers/formulas';
import { UNet } from '../models/unet';
import { timeInputs, oneHot } from '../models/conditioning';
import { flowInterpolate, flowTimeInputs, flowVelocityTarget } from '../schedulers/flowMatching';
import { assignTensors, storedTensors, unetConfigOf } from '../models/unetWeights';
import { modelParts } from '../models/registry';
import {
  parseCheckpointHeader,
  type CheckpointHeader,
  type PartBModel,
  type TrainConfig,
  type TrainState,
  type WeightsHeader,
} from '../weights/headers';
import { Adam } from './adam';
import { Ema } from './ema';
import { loadTensorFile, saveTensorFile, type StoredTensor } from '../weights/tensorFile';
import { removeStaleTmpFiles } from '../image/io';
import type { MnistSet } from '../data/mnist';

export type PresetName = 'reference' | 'cpu' | 'course';

export type { TrainConfig, TrainState };

type PresetConfig = Omit<TrainConfig, 'model' | 'objective' | 'preset' | 'seed'>;

/** A preset for some of the Part B models (the course's covers only the flow models). */
export interface Preset {
  description: string;
  configs: Partial<Record<PartBModel, PresetConfig>>;
}

/** A preset for every Part B model. */
interface FullPreset extends Preset {
  configs: Record<PartBModel, PresetConfig>;
}

const common = { sigma: 0.5, T: 300, pUncond: 0.1 };

/** Training presets. `reference` is the spec exactly; `cpu` is sized for 2 CPU cores. */
export const PRESETS: { reference: FullPreset; cpu: FullPreset; course: Preset } = {
  reference: {
    description:
      'The spec exactly (SPEC §2.3–2.5): denoiser D=128, batch 256, 5 epochs, Adam 1e-4; DDPMs D=64, batch 128, 20 epochs, Adam 1e-3 with ExponentialLR 0.1^(1/20). Meant for a GPU.',
    configs: {
      denoiser: { ...common, D: 128, batch: 256, epochs: 5, lr: 1e-4, lrDecay: false, imagesPerEpoch: null },
      time: { ...common, D: 64, batch: 128, epochs: 20, lr: 1e-3, lrDecay: true, imagesPerEpoch: null },
      class: { ...common, D: 64, batch: 128, epochs: 20, lr: 1e-3, lrDecay: true, imagesPerEpoch: null },
      // No spec numbers for flow matching: the DDPMs' (same UNets, data and schedule), for a like-for-like comparison.
      'flow-time': { ...common, D: 64, batch: 128, epochs: 20, lr: 1e-3, lrDecay: true, imagesPerEpoch: null },
      'flow-class': { ...common, D: 64, batch: 128, epochs: 20, lr: 1e-3, lrDecay: true, imagesPerEpoch: null },
    },
  },
  cpu: {
    description:
      'Sized for 2 CPU cores with the wasm engine and its oneDNN addon: batch 64, and an "epoch" is the first 12,800 images of a fresh seeded ' +
      'shuffle of the 60k training set (6,400 for the denoiser). time: D=32, 45 epochs (576k images); class: D=16, 90 epochs (1.15M images); ' +
      'both with an EMA of the weights (decay 0.999) and Adam 1e-3 with ExponentialLR 0.1^(1/epochs) per epoch; denoiser: D=16, 2 epochs (12.8k), ' +
      "Adam 1e-3 constant (the spec's 1e-4 is too slow for so few steps). Everything else as the spec. flow-time and flow-class (no spec numbers): " +
      'D=16, 10 epochs (128k images) with an EMA of decay 0.999. About 2.3 hours for the three DDPM-part models on an idle 2-core machine ' +
      '(time about 75 min at 130 img/s, class about 65 min at 290 img/s, denoiser about 2 min).',
    configs: {
      denoiser: { ...common, D: 16, batch: 64, epochs: 2, lr: 1e-3, lrDecay: false, imagesPerEpoch: 6400 },
      // Chosen by the README's quality study ("Sample quality: what the cpu budget buys"). The class model stays at D=16:
      // every Part A figure samples it, a D=32 forward pass costs several times more, and at D=16 it is judged right 100% at γ = 5.
      time: { ...common, D: 32, batch: 64, epochs: 45, lr: 1e-3, lrDecay: true, imagesPerEpoch: 12800, emaDecay: 0.999 },
      class: { ...common, D: 16, batch: 64, epochs: 90, lr: 1e-3, lrDecay: true, imagesPerEpoch: 12800, emaDecay: 0.999 },
      // A third of the DDPMs' images (128k: about 40 min each at the 55 img/s measured on an idle 2-core machine), with an EMA.
      'flow-time': { ...common, D: 16, batch: 64, epochs: 10, lr: 1e-3, lrDecay: true, imagesPerEpoch: 12800, emaDecay: 0.999 },
      'flow-class': { ...common, D: 16, batch: 64, epochs: 10, lr: 1e-3, lrDecay: true, imagesPerEpoch: 12800, emaDecay: 0.999 },
    },
  },
  course: {
    description:
      "The current course's flow models exactly (SPEC-flow.md, Part B §2.2 and §2.5): D=64, batch 64, 10 epochs over all 60,000 " +
      'training digits, Adam lr 1e-2 with ExponentialLR 0.1^(1/epochs) stepped once per epoch, no EMA; the time-only model ' +
      'injects t multiplicatively (unflatten · t1, up1 · t2). About 600k images each: hours on 2 CPU cores.',
    configs: {
      'flow-time': { ...common, D: 64, batch: 64, epochs: 10, lr: 1e-2, lrDecay: true, imagesPerEpoch: null, timeConditioning: 'multiplicative' },
      'flow-class': { ...common, D: 64, batch: 64, epochs: 10, lr: 1e-2, lrDecay: true, imagesPerEpoch: null },
    },
  },
};

/** The config of a model under a preset, with optional overrides (e.g. epochs from the command line). */
export function presetConfig(model: PartBModel, preset: string, overrides: Partial<TrainConfig> = {}): TrainConfig {
  const p = PRESETS[preset as PresetName];
  if (!p) throw new Error(`unknown preset "${preset}": use ${Object.keys(PRESETS).join(' or ')}`);
  const c = p.configs[model];
  if (!c) throw new Error(`the ${preset} preset has no ${model} model: it has ${Object.keys(p.configs).join(', ')}`);
  const { kind, objective } = modelParts(model);
  const cfg: TrainConfig = { model: kind, ...(objective === 'flow' ? { objective } : {}), preset, seed: 0, ...c, ...overrides };
  return cfg;
}

export interface StepInfo {
  step: number;
  epoch: number;
  stepInEpoch: number;
  stepsPerEpoch: number;
  loss: number;
  lr: number;
}

const IMG = 28;

/** Owns a model, its optimizer and the RNGs; runs steps and epochs and writes checkpoints. */
export class Trainer {
  readonly net: UNet;
  readonly adam: Adam;
  /** EMA of the parameters when config.emaDecay > 0 (what weights files and sampling use). */
  readonly ema: Ema | null;
  readonly schedule: NoiseSchedule;
  state: TrainState;
  private shuffleRng: Rng;
  private noiseRng: Rng;

  constructor(readonly config: TrainConfig) {
    validateConfig(config);
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

  /** Learning rate during epoch e (0-based): lr · γ^e with γ = 0.1^(1/epochs), or constant. */
  lrAt(epoch: number): number {
    const c = this.config;
    return c.lrDecay ? c.lr * Math.pow(0.1, epoch / c.epochs) : c.lr;
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
    if (x.rank !== 4 || x.shape[1] !== IMG || x.shape[2] !== IMG || x.shape[3] !== 1) {
      throw new Error(`training batch must have shape [B,28,28,1] with values in [0,1], got [${x.shape.join(',')}]`);
    }
    const c = this.config;
    const B = x.shape[0];
    // Reflow trains on fixed (noise, image) pairs: the noise comes with the batch.
    const eps = (pairedNoise ? tf.tensor4d(pairedNoise, [B, IMG, IMG, 1]) : this.noiseRng.normal([B, IMG, IMG, 1])) as tf.Tensor4D;
    if (c.model === 'denoiser') return { x0: x, eps };
    let t: Int32Array | undefined;
    let flowT: Float32Array | undefined;
    if (c.objective === 'flow') {
      // Flow matching: t uniform in [0, 1).
      flowT = new Float32Array(B);
      for (let i = 0; i < B; i++) flowT[i] = this.noiseRng.uniform();
    } else {
      // t uniform over indices 0..T−1 (≡ the spec's 1..T).
      t = new Int32Array(B);
      for (let i = 0; i < B; i++) t[i] = this.noiseRng.int(0, c.T - 1);
    }
    let classes: Float32Array | undefined;
    if (c.model === 'class') {
      if (!labels || labels.length !== B) {
        eps.dispose();
        throw new Error(`class-conditioned training needs ${B} labels for the batch, got ${labels?.length ?? 0}`);
      }
      // Alg. B.3: one-hot c, replaced by the zero vector with probability p_uncond.
      const keep = Array.from({ length: B }, () => this.noiseRng.uniform() >= c.pUncond);
      classes = oneHot(labels, 10, keep);
    }
    return { x0: x, eps, t, flowT, classes };
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
    if (data.images.length !== data.count * IMG * IMG) {
      throw new Error(`training images must be ${data.count}×28×28 = ${data.count * IMG * IMG} values, got ${data.images.length}`);
    }
    const until = Math.min(opts.untilEpoch ?? c.epochs, c.epochs);
    if (opts.pairedNoise && opts.pairedNoise.length !== data.images.length) {
      throw new Error(
        `reflow pairs: ${opts.pairedNoise.length / (IMG * IMG)} noise images for ${data.count} data images; regenerate the pairs`,
      );
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
      const lr = this.lrAt(this.state.epoch);
      while (this.state.stepInEpoch < spe) {
        const start = this.state.stepInEpoch * c.batch;
        const B = Math.min(c.batch, n - start);
        const buf = new Float32Array(B * IMG * IMG);
        const lab = new Uint8Array(B);
        const noise = opts.pairedNoise ? new Float32Array(B * IMG * IMG) : undefined;
        for (let i = 0; i < B; i++) {
          const j = perm[start + i];
          buf.set(data.images.subarray(j * IMG * IMG, (j + 1) * IMG * IMG), i * IMG * IMG);
          noise?.set(opts.pairedNoise!.subarray(j * IMG * IMG, (j + 1) * IMG * IMG), i * IMG * IMG);
          lab[i] = data.labels[j];
        }
        const t0 = performance.now();
        const x = tf.tensor4d(buf, [B, IMG, IMG, 1]);
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
export interface TrainingBatch {
  /** clean images [B,28,28,1] in [0,1] */
  x0: tf.Tensor4D;
  /** noise like x0 */
  eps: tf.Tensor4D;
  /** timestep indices in [0,T−1], one per sample (DDPMs) */
  t?: Int32Array;
  /** flow times in [0,1), one per sample (flow matching; t = 0 is the noise eps, t = 1 the image x0) */
  flowT?: Float32Array;
  /** class vectors [B·10], one-hot or all-zero (class model) */
  classes?: Float32Array;
}

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
  return tf.tidy(() => {
    const { x0, eps } = batch;
    const B = x0.shape[0];
    if (net.config.kind === 'denoiser') {
      return tf.mean(tf.squaredDifference(net.apply({ x: addNoise(x0, config.sigma, eps) }, true), x0)) as tf.Scalar;
    }
    let c: tf.Tensor2D | undefined;
    if (net.config.kind === 'class') {
      if (!batch.classes || batch.classes.length !== B * 10) throw new Error(`the class-conditioned loss needs ${B}×10 class values`);
      c = tf.tensor2d(batch.classes, [B, 10]);
    }
    if (config.objective === 'flow') {
      if (!batch.flowT || batch.flowT.length !== B)
        throw new Error(`the flow-matching loss needs ${B} flow times, got ${batch.flowT?.length ?? 0}`);
      const xt = flowInterpolate(eps, x0, batch.flowT);
      const v = net.apply({ x: xt, t: flowTimeInputs(batch.flowT, B), c }, true);
      return tf.mean(tf.squaredDifference(v, flowVelocityTarget(eps, x0))) as tf.Scalar;
    }
    if (!batch.t || batch.t.length !== B)
      throw new Error(`the ${net.config.kind}-conditioned loss needs ${B} timesteps, got ${batch.t?.length ?? 0}`);
    const abar = tf.tensor1d(Float32Array.from(batch.t, (t) => schedule.alphasCumprod[t]));
    const xt = forward(x0, abar, eps);
    const tIn = timeInputs(batch.t, schedule.T, B);
    return tf.mean(tf.squaredDifference(net.apply({ x: xt, t: tIn, c }, true), eps)) as tf.Scalar;
  });
}

function validateConfig(c: TrainConfig): void {
  for (const k of ['D', 'batch', 'epochs', 'T'] as const) {
    if (!(Number.isInteger(c[k]) && c[k] > 0)) throw new Error(`training option ${k} must be a positive integer, got ${c[k]}`);
  }
  if (!(c.lr > 0)) throw new Error(`learning rate must be positive, got ${c.lr}`);
  if (c.objective === 'flow' && c.model === 'denoiser') throw new Error('flow matching needs a time input: train flow-time or flow-class');
  if (c.emaDecay !== undefined && !(c.emaDecay >= 0 && c.emaDecay < 1))
    throw new Error(`EMA decay must be in [0, 1) (0 = off), got ${c.emaDecay}`);
}
