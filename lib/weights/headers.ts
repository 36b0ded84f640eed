/**
 * The typed headers of the project's tensor files (lib/weights/tensorFile.ts): Part B training
 * checkpoints, Part B weights, the judge classifier. Each parse function checks the fields it
 * promises and throws one line naming the file otherwise.
 */

import { OBJECTIVES, UNET_KINDS, type Objective, type TrainConfig, type TrainState, type UNetKind } from './runConfig';

/** Header of a training checkpoint (last.ckpt): tensors model/…, adam_m/…, adam_v/…. */
export interface CheckpointHeader {
  kind: 'partb-checkpoint';
  config: TrainConfig;
  state: TrainState;
  adamStep: number;
}

/** Header of a weights file (epoch-K.weights, final.weights, weights/partb-*.weights): tensors by parameter name. */
export interface WeightsHeader {
  kind: 'partb-weights';
  config: TrainConfig;
  epoch: number;
  step: number;
  losses: number[];
  epochEnds: number[];
  trainSeconds: number;
  /** Anything a shipping step adds (quality numbers, notes). */
  [extra: string]: unknown;
}

/** Header of the judge classifier's weights. */
export interface ClassifierHeader {
  kind: 'partb-classifier';
  [extra: string]: unknown;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks the config fields a model loader needs; throws one line naming the file and field. */
export function parseTrainConfig(v: unknown, file: string): TrainConfig {
  const bad = (why: string) => new Error(`${file}: header config ${why}; the file was not written by this project's trainer`);
  if (!isObj(v)) throw bad('is missing');
  if (!UNET_KINDS.includes(v.model as UNetKind)) throw bad(`model ${JSON.stringify(v.model)} is not ${UNET_KINDS.join(', ')}`);
  if (v.objective !== undefined && !OBJECTIVES.includes(v.objective as Objective)) throw bad(`objective ${JSON.stringify(v.objective)} is not ${OBJECTIVES.join(' or ')}`);
  // The flow objective needs a time input (lib/models/registry.ts: no flow model has the denoiser's network).
  if (v.objective === OBJECTIVES[1] && v.model === UNET_KINDS[0]) throw bad('pairs the flow objective with the denoiser, which has no time input');
  // Pure noise in, the image out: only the denoiser is trained so (SPEC-flow Part B §1.2.3).
  if (v.objective === OBJECTIVES[2] && v.model !== UNET_KINDS[0]) throw bad(`pairs the pure-noise objective with the ${v.model} network; only the denoiser has it`);
  // A loader needs the model, D and T; the run's other numbers, when present, must be sane too.
  for (const k of ['D', 'T', 'batch', 'epochs'] as const) {
    const optional = k === 'batch' || k === 'epochs';
    if (optional && v[k] === undefined) continue;
    if (!(Number.isInteger(v[k]) && (v[k] as number) > 0)) throw bad(`${k} ${JSON.stringify(v[k])} is not a positive integer`);
  }
  if (v.timeConditioning !== undefined && !['additive', 'multiplicative'].includes(v.timeConditioning as string))
    throw bad(`timeConditioning ${JSON.stringify(v.timeConditioning)} is not additive or multiplicative`);
  return v as unknown as TrainConfig;
}

/** The header of a Part B weights or checkpoint file; throws one line for anything else. */
export function parseUNetHeader(meta: unknown, file: string): WeightsHeader | CheckpointHeader {
  if (!isObj(meta) || (meta.kind !== 'partb-weights' && meta.kind !== 'partb-checkpoint')) {
    const kind = isObj(meta) ? meta.kind : undefined;
    throw new Error(`${file} is not a Part B weights file (kind ${JSON.stringify(kind)}): pass a .weights file or a run's last.ckpt`);
  }
  parseTrainConfig(meta.config, file);
  if (meta.kind === 'partb-checkpoint') {
    if (!isObj(meta.state) || !Number.isInteger(meta.adamStep)) throw new Error(`${file}: checkpoint header lacks its training state; resume from an earlier checkpoint`);
    return meta as unknown as CheckpointHeader;
  }
  if (!Array.isArray(meta.losses)) (meta as Record<string, unknown>).losses = [];
  return meta as unknown as WeightsHeader;
}

/** The header of a training checkpoint; throws one line for a weights file or anything else. */
export function parseCheckpointHeader(meta: unknown, file: string): CheckpointHeader {
  const h = parseUNetHeader(meta, file);
  if (h.kind !== 'partb-checkpoint') throw new Error(`${file} is not a Part B training checkpoint (kind ${h.kind}); pass the last.ckpt of a run`);
  return h;
}

/** The header of the classifier's weights. */
export function parseClassifierHeader(meta: unknown, file: string): ClassifierHeader {
  if (!isObj(meta) || meta.kind !== 'partb-classifier') throw new Error(`${file} is not a Part B classifier weights file`);
  return meta as ClassifierHeader;
}
