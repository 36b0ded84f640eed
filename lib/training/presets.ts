/**
 * The training presets of the Part B models (README, Part B): `reference` is the 2024 spec exactly,
 * `cpu` is sized for 2 CPU cores, `course` is the current course's flow models exactly. A preset
 * only fills a TrainConfig; the trainer (lib/training/trainer.ts) runs whatever config it is given.
 */
import { OBJECTIVES, type PartBModel, type TrainConfig } from '../weights/runConfig';
import { modelParts } from '../models/registry';

export type PresetName = 'reference' | 'cpu' | 'course';

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
      // SPEC-flow Part B §1.2.3: "as 1.2.1".
      'denoiser-pure-noise': { ...common, D: 128, batch: 256, epochs: 5, lr: 1e-4, lrDecay: false, imagesPerEpoch: null },
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
      "Adam 1e-3 constant (the spec's 1e-4 is too slow for so few steps); denoiser-pure-noise (the current course's §1.2.3): the same for 5 epochs. " +
      'Everything else as the spec. flow-time and flow-class (no spec numbers): ' +
      'D=16, 10 epochs (128k images) with an EMA of decay 0.999. About 2.3 hours for the three DDPM-part models on an idle 2-core machine ' +
      '(time about 75 min at 130 img/s, class about 65 min at 290 img/s, denoiser about 2 min).',
    configs: {
      denoiser: { ...common, D: 16, batch: 64, epochs: 2, lr: 1e-3, lrDecay: false, imagesPerEpoch: 6400 },
      // Five epochs (the course shows epochs 1 and 5) of the denoiser's 6,400 images.
      'denoiser-pure-noise': { ...common, D: 16, batch: 64, epochs: 5, lr: 1e-3, lrDecay: false, imagesPerEpoch: 6400 },
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
      'flow-time': {
        ...common,
        D: 64,
        batch: 64,
        epochs: 10,
        lr: 1e-2,
        lrDecay: true,
        imagesPerEpoch: null,
        timeConditioning: 'multiplicative',
      },
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
  // DDPM configs keep no objective field, as files written before flow matching (they read as 'ddpm').
  const cfg: TrainConfig = { model: kind, ...(objective !== OBJECTIVES[0] ? { objective } : {}), preset, seed: 0, ...c, ...overrides };
  return cfg;
}
