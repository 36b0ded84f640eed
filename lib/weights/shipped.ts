/** Names of the shipped Part B weights in weights/ (lib/paths.ts weightsDir) and the commands that make them. */
import * as path from 'node:path';
import { weightsDir } from '../paths';

export type ShippedModel =
  | 'denoiser'
  | 'denoiser-pure-noise'
  | 'time'
  | 'class'
  | 'flow-time'
  | 'flow-class'
  | 'flow-time-reflow'
  | 'classifier';

/**
 * The weights shipped for one model: `final`; `early`, after epoch 1; `middle`, after the epoch a
 * model's shipping names (the current course shows its flow models after epochs 1, 5 and 10).
 */
export type ShippedCheckpoint = 'final' | 'early' | 'middle';

interface Shipping {
  /** The run folder under runs/partb/ (null: shipped by the trainer itself). */
  run: string | null;
  /** The commands that make it. */
  command: string;
  /** The epoch whose weights ship as `middle`, if any. */
  middleEpoch?: number;
  /** false: no `early` weights (a reflow round's first epoch is no stage of training anyone shows). */
  early?: false;
}

/** A model of a preset: trained into runs/partb/<model>-<preset>, then shipped by partb-quality. */
function presetRun(model: string, preset: 'cpu' | 'course', middleEpoch?: number): Shipping {
  return {
    run: `${model}-${preset}`,
    command:
      `npm run train -- --model ${model} --preset ${preset} --seed 0 --out runs/partb/${model}-${preset} && ` +
      `npm run partb-quality -- --ship --models ${model}`,
    ...(middleEpoch === undefined ? {} : { middleEpoch }),
  };
}

/** Where each shipped model's run lives and the commands that make it. */
const SHIPPING: Readonly<Record<ShippedModel, Shipping>> = {
  denoiser: presetRun('denoiser', 'cpu'),
  'denoiser-pure-noise': presetRun('denoiser-pure-noise', 'cpu'),
  time: presetRun('time', 'cpu'),
  class: presetRun('class', 'cpu'),
  // The current course's settings (SPEC-flow.md Part B), shown after epochs 1, 5 and 10 as the
  // course shows them.
  'flow-time': presetRun('flow-time', 'course', 5),
  'flow-class': presetRun('flow-class', 'course', 5),
  'flow-time-reflow': {
    run: 'flow-time-reflow',
    command:
      'npm run train -- --model flow-time --reflow-from weights/partb-flow-time.weights --pairs 3200 --pair-steps 16 --out runs/partb/flow-time-reflow && ' +
      'npm run partb-quality -- --ship --models flow-time-reflow',
    early: false,
  },
  classifier: { run: null, command: 'npm run train -- --model classifier' },
};

/** The run folder under runs/partb/ whose weights `npm run partb-quality -- --ship` copies; one line for the classifier. */
export function shippedRunName(model: ShippedModel): string {
  const run = SHIPPING[model].run;
  if (run === null) throw new Error(`the ${model} is shipped by \`${SHIPPING[model].command}\`, not from a run folder`);
  return run;
}

/** The epoch whose weights a model ships as `middle` (undefined: it ships none). */
export function shippedMiddleEpoch(model: ShippedModel): number | undefined {
  return SHIPPING[model].middleEpoch;
}

/** The checkpoints a model ships, in training order: early (unless it ships none), middle where it has one, final. */
export function shippedCheckpoints(model: ShippedModel): ShippedCheckpoint[] {
  const early: ShippedCheckpoint[] = SHIPPING[model].early === false ? [] : ['early'];
  return shippedMiddleEpoch(model) === undefined ? [...early, 'final'] : [...early, 'middle', 'final'];
}

/** The epoch after which a checkpoint was saved: early 1, middle shippedMiddleEpoch; undefined for final (the run's end). */
export function checkpointEpoch(model: ShippedModel, which: ShippedCheckpoint): number | undefined {
  return which === 'early' ? 1 : which === 'middle' ? shippedMiddleEpoch(model) : undefined;
}

/** The file of a training run's folder holding a checkpoint: epoch-K.weights (checkpointEpoch), or final.weights. */
export function runWeightsFile(model: ShippedModel, which: ShippedCheckpoint): string {
  const epoch = checkpointEpoch(model, which);
  return epoch === undefined ? 'final.weights' : `epoch-${epoch}.weights`;
}

/** weights/partb-<model>.weights, or -early (after epoch 1) or -middle (after shippedMiddleEpoch) before the extension. */
export function shippedWeightsPath(model: ShippedModel, which: ShippedCheckpoint = 'final'): string {
  return path.join(weightsDir(), `partb-${model}${which === 'final' ? '' : `-${which}`}.weights`);
}

/** weights/partb-<model>.manifest.json */
export function manifestPath(model: ShippedModel): string {
  return path.join(weightsDir(), `partb-${model}.manifest.json`);
}

/** The commands that make a model's shipped weights (for "weights missing" messages). */
export function trainCommand(model: ShippedModel): string {
  return SHIPPING[model].command;
}
