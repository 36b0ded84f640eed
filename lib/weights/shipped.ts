/** Names of the shipped Part B weights in weights/ (lib/paths.ts weightsDir) and the commands that make them. */
import * as path from 'node:path';
import { weightsDir } from '../paths';

export type ShippedModel = 'denoiser' | 'time' | 'class' | 'flow-time' | 'flow-class' | 'flow-time-reflow' | 'classifier';

/** The run folder under runs/partb/ whose weights `npm run partb-quality -- --ship` copies. */
export function shippedRunName(model: Exclude<ShippedModel, 'classifier'>): string {
  return model === 'flow-time-reflow' ? model : `${model}-cpu`;
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
  if (model === 'classifier') return 'npm run train -- --model classifier';
  if (model === 'flow-time-reflow') {
    return (
      'npm run train -- --model flow-time --reflow-from weights/partb-flow-time.weights --pairs 3200 --pair-steps 16 --out runs/partb/flow-time-reflow && ' +
      'npm run partb-quality -- --ship --models flow-time-reflow'
    );
  }
  return (
    `npm run train -- --model ${model} --preset cpu --seed 0 --out runs/partb/${model}-cpu && ` +
    `npm run partb-quality -- --ship --models ${model}`
  );
}
