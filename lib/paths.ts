/**
 * Where things live on disk: the one place that finds the project root and the folders under it.
 * Sources are lib/, compiled code is dist/lib/: both find the root as the nearest folder above with
 * a package.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setting } from './config';

function findRoot(start: string): string {
  for (let d = start; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json'))) return d;
    if (path.dirname(d) === d) return process.cwd();
  }
}

/** The project root (the folder with package.json). */
export const PROJECT_ROOT = findRoot(__dirname);

/** A path under the project root. */
export function projectPath(...parts: string[]): string {
  return path.join(PROJECT_ROOT, ...parts);
}

/** The Part B weights folder: weights/, or PARTB_WEIGHTS_DIR. */
export function weightsDir(): string {
  const d = setting('PARTB_WEIGHTS_DIR');
  return d ? path.resolve(d) : projectPath('weights');
}

/** The DeepFloyd IF models folder: models/, or IF_MODELS_DIR. */
export function modelsRoot(): string {
  return setting('IF_MODELS_DIR') ?? projectPath('models');
}

/** Generated runs (training outputs, drawings): runs/. */
export function runsDir(...parts: string[]): string {
  return projectPath('runs', ...parts);
}

/** The project's data folder: data/. */
export function dataDir(...parts: string[]): string {
  return projectPath('data', ...parts);
}
