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

/** A model of the cpu preset: trained into runs/partb/<model>-cpu, then shipped by partb-quality. */
function cpuRun(model: string): { run: string; command: string } {
  return {
    run: `${model}-cpu`,
    command:
      `npm run train -- --model ${model} --preset cpu --seed 0 --out runs/partb/${model}-cpu && ` +
      `npm run partb-quality -- --ship --models ${model}`,
  };
}

/** Where each shipped model's run lives under runs/partb/ (null: shipped by the trainer itself) and the commands that make it. */
const SHIPPING: Readonly<Record<ShippedModel, { run: string | null; command: string }>> = {
  denoiser: cpuRun('denoiser'),
  'denoiser-pure-noise': cpuRun('denoiser-pure-noise'),
  time: cpuRun('time'),
  class: cpuRun('class'),
  'flow-time': cpuRun('flow-time'),
  'flow-class': cpuRun('flow-class'),
  'flow-time-reflow': {
    run: 'flow-time-reflow',
    command:
      'npm run train -- --model flow-time --reflow-from weights/partb-flow-time.weights --pairs 3200 --pair-steps 16 --out runs/partb/flow-time-reflow && ' +
      'npm run partb-quality -- --ship --models flow-time-reflow',
  },
  classifier: { run: null, command: 'npm run train -- --model classifier' },
};

/** The run folder under runs/partb/ whose weights `npm run partb-quality -- --ship` copies; one line for the classifier. */
export function shippedRunName(model: ShippedModel): string {
  const run = SHIPPING[model].run;
  if (run === null) throw new Error(`the ${model} is shipped by \`${SHIPPING[model].command}\`, not from a run folder`);
  return run;
}

/** weights/partb-<model>.weights; `early` = the early checkpoint shown in the notebook. */
export function shippedWeightsPath(model: ShippedModel, which: 'final' | 'early' = 'final'): string {
  return path.join(weightsDir(), `partb-${model}${which === 'early' ? '-early' : ''}.weights`);
}

/** weights/partb-<model>.manifest.json */
export function manifestPath(model: ShippedModel): string {
  return path.join(weightsDir(), `partb-${model}.manifest.json`);
}

/** The commands that make a model's shipped weights (for "weights missing" messages). */
export function trainCommand(model: ShippedModel): string {
  return SHIPPING[model].command;
}
