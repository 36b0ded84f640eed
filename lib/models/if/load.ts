/**
 * Loading DeepFloyd IF from model folders (lib/weights/diffusersLayout.ts): the UNet planned from
 * its own config.json, weights streamed tensor by tensor, the scheduler from
 * scheduler/scheduler_config.json when present. Default folders live under models/ (IF_MODELS_DIR).
 *
 * Memory: fp16 on disk becomes float32 here (IF-I-L ≈ 3.6 GB, IF-II-L ≈ 5.0 GB of weights).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { modelsRoot } from '../../paths';
import { findUnetConfig, findUnetFiles, unetFilesPresent } from '../../weights/diffusersLayout';
import { openSafetensors } from '../../weights/safetensors';
import { loadPromptEmbeddings } from '../../weights/embeddings';
import { disposeWeights, IFUnet, loadUnetWeights, planUnet } from './unet';
import { IFDenoiser } from './denoiser';
import type { IFModel } from './model';
import { loadSchedulerConfig, STAGE_I_CONFIG, STAGE_II_CONFIG } from '../../schedulers/ddpm';

/** Default folders of the course's two stages and the embeddings file. */
export function defaultPaths(root = modelsRoot()): { stage1: string; stage2: string; embeddings: string } {
  return {
    stage1: path.join(root, 'IF-I-L-v1.0'),
    stage2: path.join(root, 'IF-II-L-v1.0'),
    embeddings: path.join(root, 'prompt_embeds_dict.pth'),
  };
}

/** Reads and plans a folder's UNet (no weights). */
export function planUnetFromDir(dir: string): IFUnet {
  const { config } = findUnetConfig(dir);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(config, 'utf8'));
  } catch (e) {
    throw new Error(`${config}: not valid JSON (${(e as Error).message})`);
  }
  return planUnet(raw, config);
}


/** Loads a model folder: plan from config.json, strict key check, streamed weights. */
export function loadIFModel(dir: string, onProgress?: (done: number, total: number) => void): IFModel {
  const unet = planUnetFromDir(dir);
  checkFitsEngine(unet, dir);
  const src = openSafetensors(findUnetFiles(dir).weights);
  try {
    const scheduler = loadSchedulerConfig(dir, unet.config.classEmbedType === 'timestep' ? STAGE_II_CONFIG : STAGE_I_CONFIG);
    const weights = loadUnetWeights(unet, src, onProgress);
    return { unet, weights, dir, scheduler, dispose: () => disposeWeights(weights) };
  } finally {
    src.close();
  }
}

/** The wasm engine's heap is a 32-bit WebAssembly memory: 4 GiB for every tensor together. */
const WASM_HEAP_BYTES = 4 * 2 ** 30;

/**
 * Refuses, in one line, to load weights that cannot fit the wasm engine's 4 GiB heap (float32
 * weights plus what is already allocated, with 10% left for activations) instead of failing
 * mid-load with an out-of-memory abort. Other engines (webgpu, tfjs-node, cpu) are not limited.
 */
export function checkFitsEngine(unet: IFUnet, dir: string): void {
  if (tf.getBackend() !== 'wasm') return;
  const need = unet.float32Bytes;
  const used = tf.memory().numBytes;
  if (used + need > 0.9 * WASM_HEAP_BYTES) {
    const gib = (b: number) => (b / 2 ** 30).toFixed(2);
    throw new Error(
      `${path.basename(dir)} needs ${gib(need)} GiB of float32 weights (${gib(used)} GiB already in use), more than the wasm engine's 4 GiB heap allows: ` +
        'run with DIFFUSION_ENGINE=webgpu (a GPU) or tfjs-node, or DIFFUSION_ENGINE=cpu (no heap limit, slow); dispose the other stage first if one is loaded',
    );
  }
}

/** True when the folder has a config and a weights file (no validation; see `weights check`). */
export function ifModelPresent(dir: string): boolean {
  return unetFilesPresent(dir);
}

/**
 * Loads stage I and the embeddings from the default folders (and stage II with `stage2: true`,
 * for Part 0; Part A needs only stage I), for a notebook: returns `{ missing }`, with the reason
 * and the command that fixes it, when something is absent.
 */
export function loadIFFromDefaults(
  root = modelsRoot(),
  o: { stage2?: boolean; onProgress?: (what: string, done: number, total: number) => void } = {},
): { den: IFDenoiser; stage2?: IFModel; stage2Note?: string } | { missing: string } {
  const p = defaultPaths(root);
  if (!ifModelPresent(p.stage1)) return { missing: `no IF stage I weights in ${p.stage1} (npm run weights -- if-i-l)` };
  if (!fs.existsSync(p.embeddings)) return { missing: `no prompt embeddings at ${p.embeddings} (download the course's prompt_embeds_dict.pth there)` };
  const emb = loadPromptEmbeddings(p.embeddings);
  const m1 = loadIFModel(p.stage1, (d, n) => o.onProgress?.('stage I', d, n));
  const den = new IFDenoiser(m1, emb);
  if (!o.stage2) return { den };
  if (!ifModelPresent(p.stage2)) return { den, stage2Note: `no IF stage II weights in ${p.stage2} (npm run weights -- if-ii-l): 64×64 only` };
  try {
    return { den, stage2: loadIFModel(p.stage2, (d, n) => o.onProgress?.('stage II', d, n)) };
  } catch (e) {
    // e.g. both stages do not fit the wasm heap: stage I still works
    return { den, stage2Note: `stage II not loaded: ${(e as Error).message.split('\n')[0]}` };
  }
}
