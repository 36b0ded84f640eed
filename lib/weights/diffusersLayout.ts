/**
 * The Hugging Face (diffusers) layout of a model folder, as `npm run weights -- if-i-l` downloads it:
 *   <dir>/unet/config.json and <dir>/unet/diffusion_pytorch_model[.fp16].safetensors
 *   (or a sharded `…safetensors.index.json`), and <dir>/scheduler/scheduler_config.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Weight file candidates in diffusers' order of preference (fp16 variant first, SPEC §3.6). */
export const UNET_WEIGHT_FILES = [
  'diffusion_pytorch_model.fp16.safetensors',
  'diffusion_pytorch_model.safetensors',
  'diffusion_pytorch_model.fp16.safetensors.index.json',
  'diffusion_pytorch_model.safetensors.index.json',
];

/** The unet folder and config.json of a model folder (`<dir>` or `<dir>/unet`), or a one-line error. */
export function findUnetConfig(dir: string): { unetDir: string; config: string } {
  const unetDir = fs.existsSync(path.join(dir, 'unet', 'config.json')) ? path.join(dir, 'unet') : dir;
  const config = path.join(unetDir, 'config.json');
  if (!fs.existsSync(config)) throw new Error(`${dir}: no unet/config.json (download the model with "npm run weights -- if-i-l" or "if-ii-l")`);
  return { unetDir, config };
}

/** The unet config and weights paths of a model folder, or a one-line error. */
export function findUnetFiles(dir: string): { config: string; weights: string } {
  const { unetDir, config } = findUnetConfig(dir);
  const w = UNET_WEIGHT_FILES.map((f) => path.join(unetDir, f)).find((f) => fs.existsSync(f));
  if (!w) throw new Error(`${unetDir}: no ${UNET_WEIGHT_FILES[0]} (or ${UNET_WEIGHT_FILES.slice(1).join(', ')})`);
  return { config, weights: w };
}

/** True when the folder has a config and a weights file (no validation; see `weights check`). */
export function unetFilesPresent(dir: string): boolean {
  try {
    findUnetFiles(dir);
    return true;
  } catch {
    return false;
  }
}
