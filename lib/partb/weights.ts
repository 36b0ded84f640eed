/** Where the shipped Part B weights live (weights/ at the repository root). */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type ShippedModel = 'denoiser' | 'time' | 'class' | 'classifier';

/** Repository root: the nearest folder above this file (dist/lib/partb/) with a package.json. */
export const REPO_ROOT = findRoot(__dirname);

function findRoot(start: string): string {
  for (let d = start; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json'))) return d;
    if (path.dirname(d) === d) return path.resolve(start, '..', '..', '..');
  }
}

/** The weights folder: weights/ at the root, or $PARTB_WEIGHTS_DIR (for trying other weights). */
export function weightsDir(): string {
  return process.env.PARTB_WEIGHTS_DIR ? path.resolve(process.env.PARTB_WEIGHTS_DIR) : path.join(REPO_ROOT, 'weights');
}

/** weights/partb-<model>.weights; `early` = the early checkpoint shown in the notebook. */
export function shippedWeightsPath(model: ShippedModel, which: 'final' | 'early' = 'final'): string {
  return path.join(weightsDir(), `partb-${model}${which === 'early' ? '-early' : ''}.weights`);
}

/** weights/partb-<model>.manifest.json */
export function manifestPath(model: ShippedModel): string {
  return path.join(weightsDir(), `partb-${model}.manifest.json`);
}

/** The command that makes a model's shipped weights (for "weights missing" messages). */
export function trainCommand(model: ShippedModel): string {
  return model === 'classifier' ? 'npm run train -- --model classifier' : `npm run train -- --model ${model} --preset cpu --seed 0 --out runs/partb/${model}-cpu && npm run weights -- --partb`;
}
