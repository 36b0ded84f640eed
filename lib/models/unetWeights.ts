/**
 * Loading and saving the Part B networks' parameters (the UNets of lib/models/unet.ts and the
 * judge classifier) in the project's tensor files (lib/weights/tensorFile.ts), with typed headers.
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadTensorFile, type StoredTensor } from '../weights/tensorFile';
import { parseUNetHeader, type CheckpointHeader, type WeightsHeader } from '../weights/headers';
import { type TrainConfig } from '../weights/runConfig';
import { UNet, type UNetConfig } from './unet';

/** The UNet a run's config describes (kind, width, conditioning variant). */
export function unetConfigOf(c: Pick<TrainConfig, 'model' | 'D' | 'timeConditioning'>): UNetConfig {
  return { kind: c.model, D: c.D, ...(c.timeConditioning ? { timeConditioning: c.timeConditioning } : {}) };
}

/** Variables as stored tensors named prefix + name, read asynchronously (any engine, WebGPU included). */
export async function storedTensors(vars: Map<string, tf.Variable>, prefix: string): Promise<Map<string, StoredTensor>> {
  const out = new Map<string, StoredTensor>();
  for (const [name, v] of vars) out.set(`${prefix}${name}`, { shape: v.shape, data: (await v.data()) as Float32Array });
  return out;
}

/** Copies stored tensors into variables by name; throws on a missing name or a shape mismatch. */
export function assignTensors(vars: Map<string, tf.Variable>, stored: Map<string, StoredTensor>, prefix: string, file: string): void {
  for (const [name, v] of vars) {
    const s = stored.get(prefix + name);
    if (!s) throw new Error(`${file} has no tensor "${prefix}${name}"; it was written for a different model or D`);
    if (s.shape.join(',') !== v.shape.join(',')) {
      throw new Error(`${file}: tensor "${prefix}${name}" has shape [${s.shape}] but the model needs [${v.shape}]; it was written for a different D`);
    }
    tf.tidy(() => v.assign(tf.tensor(s.data, s.shape)));
  }
}

/** Loads shipped / per-epoch weights (or a checkpoint's model) into a UNet in eval mode, with the file's header. */
export function loadUNetWeights(file: string): { net: UNet; meta: WeightsHeader | CheckpointHeader } {
  const { meta: raw, tensors } = loadTensorFile(file);
  const meta = parseUNetHeader(raw, file);
  const net = new UNet(unetConfigOf(meta.config));
  assignTensors(net.store.named(), tensors, meta.kind === 'partb-checkpoint' ? 'model/' : '', file);
  return { net, meta };
}
