/**
 * One description per Part B model (docs/equations.md, Part B): what network it is, what it
 * predicts, what conditions it, its image shape and class count, its defaults (T, guidance, steps),
 * its sampling grid and scheduler, and its Denoiser adapter. Scripts, notebooks, the quality tool
 * and the benchmark ask this registry instead of comparing model names; the names themselves are
 * compared only here and in the command lines' lists of choices.
 *
 * The reflow variant ("flow-time-reflow") is flow-time's network and sampler trained on a flow
 * model's own noise–image pairs (lib/training/reflow.ts): a description of its own, same behaviour.
 */
import type { UNetKind, Objective, TrainConfig, PartBModel } from '../weights/runConfig';
import { courseConfig, DDPMScheduler, type DDPMSchedulerConfig } from '../schedulers/ddpm';
import { eulerTimes, FlowMatchEulerScheduler } from '../schedulers/flowMatching';
import { ddpmSchedule } from '../schedulers/schedule';
import type { PredictionType, Scheduler } from '../schedulers/scheduler';
import { fullChainTimesteps, stridedTimesteps, toClean } from '../schedulers/timesteps';
import { mnistDenoiser, mnistFlowDenoiser, type MnistDenoiser } from './mnistDenoiser';
import type { UNet, UNetConfig } from './unet';
import { loadUNetWeights } from './unetWeights';

/** A Part B model's name, the shipped reflow variant included. */
export type PartBModelName = PartBModel | 'flow-time-reflow';

/** The training loss of a model (lib/training/objectives.ts). */
export type LossName = 'denoise' | 'denoise-pure-noise' | 'epsilon' | 'velocity';

/** How a Part B model samples (absent for the single-step denoiser). */
export interface SamplingDescription {
  /** What the model predicts, hence the scheduler family. */
  readonly prediction: PredictionType;
  /** Default classifier-free guidance γ for class models (Alg. B.4: 5), null for models without classes. */
  readonly guidance: number | null;
  /**
   * The grid for `steps` steps: DDPM T steps = the full chain to the clean image (Alg. B.2), fewer =
   * strided by T/steps (steps must divide T); flow = eulerTimes(steps).
   */
  grid(steps: number, T: number): number[];
  /** The scheduler: DDPM Alg. B.2's fixed_large step (or `ddpm` settings), flow the Euler step. */
  scheduler(T: number, ddpm?: DDPMSchedulerConfig): Scheduler;
  /** The model as a Denoiser (the UNet stays the caller's until the Denoiser is disposed); `source` names its file. */
  denoiser(net: UNet, T: number, source?: string): MnistDenoiser;
  /** Describes `steps` for captions: "full chain of 300 steps", "32 Euler steps". */
  describeSteps(steps: number, T: number): string;
  /** The default number of steps for a model trained with T steps (DDPM: T, the full chain; flow: 32). */
  defaultSteps(T: number): number;
  /** The level of the starting noise, for the first GIF frame (DDPM: T, before index T−1; flow: 0). */
  startLevel(T: number): number;
}

export interface PartBModelDescription {
  readonly name: PartBModelName;
  /** For captions and help: "class-conditioned flow matching". */
  readonly title: string;
  /** The UNet (Figures 1, 8, 9 of SPEC.md). */
  readonly network: UNetKind;
  /** The training objective (weights headers store it). */
  readonly objective: Objective;
  /** Whether the network takes a time input. */
  readonly timeInput: boolean;
  /** Classes of the one-hot class input; 0 = none. */
  readonly numClasses: number;
  /** [H, W, C] of the images it takes. */
  readonly imageShape: readonly [number, number, number];
  /** The diffusion steps T of its training (DDPM; flow models keep the field for old headers). */
  readonly T: number;
  /** Its training loss (lib/training/objectives.ts). */
  readonly loss: LossName;
  /** The y label of its loss curve. */
  readonly lossLabel: string;
  /** Sampling, or null (the single-step denoisers map their input to a clean image in one call). */
  readonly sampling: SamplingDescription | null;
  /**
   * How `npm run partb-quality` judges it: 'samples' (the classifier judge on samples), 'denoising'
   * (test MSE against σ), 'mean-image' (how close its outputs are to the mean training digit).
   */
  readonly judge: 'samples' | 'denoising' | 'mean-image';
}

function ddpmGrid(steps: number, T: number): number[] {
  if (steps === T) return toClean(fullChainTimesteps(T));
  if (!(Number.isInteger(steps) && steps >= 1 && T % steps === 0))
    throw new Error(`DDPM steps must divide T = ${T} (strided by T/N): got ${steps}`);
  return toClean(stridedTimesteps(T, { stride: T / steps }));
}

const DDPM_SAMPLING = (guidance: number | null): SamplingDescription => ({
  prediction: 'epsilon',
  guidance,
  defaultSteps: (T) => T,
  startLevel: (T) => T,
  grid: ddpmGrid,
  scheduler: (T, ddpm) => new DDPMScheduler(ddpmSchedule(T), ddpm ?? courseConfig('fixed_large')),
  denoiser: (net, T, source) => mnistDenoiser(net, { T, ...(source ? { source } : {}) }),
  describeSteps: (steps, T) => (steps === T ? `full chain of ${T} steps` : `${steps} strided steps`),
});

const FLOW_SAMPLING = (guidance: number | null): SamplingDescription => ({
  prediction: 'velocity',
  guidance,
  // The quality-against-steps table's choice (README, flow models).
  defaultSteps: () => 32,
  startLevel: () => 0,
  grid: (steps) => eulerTimes(steps),
  scheduler: () => new FlowMatchEulerScheduler(),
  denoiser: (net, _T, source) => mnistFlowDenoiser(net, source ? { source } : {}),
  describeSteps: (steps) => `${steps} Euler step${steps === 1 ? '' : 's'}`,
});

const MNIST = [28, 28, 1] as const;
const common = { imageShape: MNIST, T: 300, judge: 'samples' as const };

const FLOW_TIME: PartBModelDescription = {
  ...common,
  name: 'flow-time',
  title: 'time-conditioned flow matching',
  network: 'time',
  objective: 'flow',
  timeInput: true,
  numClasses: 0,
  loss: 'velocity',
  lossLabel: 'L2 loss on the velocity',
  sampling: FLOW_SAMPLING(null),
};

/** Every Part B model, by name. */
export const PARTB_REGISTRY: Readonly<Record<PartBModelName, PartBModelDescription>> = {
  denoiser: {
    ...common,
    name: 'denoiser',
    title: 'single-step denoiser',
    network: 'denoiser',
    objective: 'ddpm',
    timeInput: false,
    numClasses: 0,
    loss: 'denoise',
    lossLabel: 'L2 loss',
    sampling: null,
    judge: 'denoising',
  },
  // SPEC-flow Part B §1.2.3: the denoiser's network and training fed pure noise.
  'denoiser-pure-noise': {
    ...common,
    name: 'denoiser-pure-noise',
    title: 'denoiser trained on pure noise',
    network: 'denoiser',
    objective: 'pure-noise',
    timeInput: false,
    numClasses: 0,
    loss: 'denoise-pure-noise',
    lossLabel: 'L2 loss',
    sampling: null,
    judge: 'mean-image',
  },
  time: {
    ...common,
    name: 'time',
    title: 'time-conditioned DDPM',
    network: 'time',
    objective: 'ddpm',
    timeInput: true,
    numClasses: 0,
    loss: 'epsilon',
    lossLabel: 'L2 loss on ε',
    sampling: DDPM_SAMPLING(null),
  },
  class: {
    ...common,
    name: 'class',
    title: 'class-conditioned DDPM',
    network: 'class',
    objective: 'ddpm',
    timeInput: true,
    numClasses: 10,
    loss: 'epsilon',
    lossLabel: 'L2 loss on ε',
    sampling: DDPM_SAMPLING(5),
  },
  'flow-time': FLOW_TIME,
  'flow-class': {
    ...common,
    name: 'flow-class',
    title: 'class-conditioned flow matching',
    network: 'class',
    objective: 'flow',
    timeInput: true,
    numClasses: 10,
    loss: 'velocity',
    lossLabel: 'L2 loss on the velocity',
    sampling: FLOW_SAMPLING(5),
  },
  // The reflow variant: flow-time's network, loss and sampler, trained on the model's own pairs.
  'flow-time-reflow': { ...FLOW_TIME, name: 'flow-time-reflow', title: 'time-conditioned flow matching after one reflow round' },
};

/** The description of a Part B model by name, or undefined (e.g. for the judge classifier's name). */
export function findModel(name: string): PartBModelDescription | undefined {
  return Object.hasOwn(PARTB_REGISTRY, name) ? (PARTB_REGISTRY as Record<string, PartBModelDescription>)[name] : undefined;
}

/** The description of a model by name; one line listing the names for an unknown one. */
export function describeModel(name: string): PartBModelDescription {
  const d = (PARTB_REGISTRY as Record<string, PartBModelDescription>)[name];
  if (!d) throw new Error(`unknown Part B model "${name}": use one of ${Object.keys(PARTB_REGISTRY).join(', ')}`);
  return d;
}

/** The model a run's config (a weights or checkpoint header) holds; files without an objective are DDPMs. */
export function describeConfig(c: Pick<TrainConfig, 'model' | 'objective' | 'reflowPairs'>): PartBModelDescription {
  const objective = c.objective ?? 'ddpm';
  const found = Object.values(PARTB_REGISTRY).find(
    (d) => d.network === c.model && d.objective === objective && (d.name === 'flow-time-reflow') === Boolean(c.reflowPairs && c.model === 'time'),
  );
  if (!found) throw new Error(`no Part B model is a ${c.model} network with the ${objective} objective`);
  return found;
}

/** The name --model takes to train what a config holds (a reflow run trains its flow model's name). */
export function modelNameOf(c: Pick<TrainConfig, 'model' | 'objective'>): PartBModel {
  return describeConfig({ model: c.model, objective: c.objective ?? 'ddpm' }).name as PartBModel;
}

/** The network and objective a model name stands for ('flow-time' → the time UNet trained on velocities). */
export function modelParts(name: PartBModel): { kind: UNetKind; objective: Objective } {
  const d = describeModel(name);
  return { kind: d.network, objective: d.objective };
}

/** The sampling of a model; one line for the single-step denoiser. */
export function samplingOf(d: PartBModelDescription): SamplingDescription {
  if (!d.sampling) throw new Error(`the ${d.title} does not sample: it maps a noisy image to a clean one in one call`);
  return d.sampling;
}

/** The UNet a description and a run's config build (width and conditioning variant from the config). */
export function unetConfigFor(d: PartBModelDescription, c: Pick<TrainConfig, 'D' | 'timeConditioning'>): UNetConfig {
  return {
    kind: d.network,
    D: c.D,
    numClasses: d.numClasses || 10,
    size: d.imageShape[0],
    ...(c.timeConditioning ? { timeConditioning: c.timeConditioning } : {}),
  };
}

/**
 * Loads Part B weights (a time or class model's .weights file, DDPM or flow) as a Denoiser through
 * its description: the family (the header's objective) and T come from the file.
 */
export function loadMnistDenoiser(file: string): MnistDenoiser {
  const { net, meta } = loadUNetWeights(file);
  const d = describeConfig(meta.config);
  if (!d.sampling) {
    net.dispose();
    throw new Error(`${file} holds the ${d.title}, which is not a Denoiser of the sampling algorithms: load a time or class model`);
  }
  return d.sampling.denoiser(net, meta.config.T, file.split('/').pop());
}
