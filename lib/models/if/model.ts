/**
 * A loaded DeepFloyd IF UNet (one stage): the network plan, its weights and its scheduler. The type
 * lives apart so that the loader (load.ts) and the Denoiser over it (denoiser.ts) each import it
 * and neither imports the other.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { IFUnet } from './unet';
import type { LoadedScheduler } from '../../schedulers/ddpm';

/** A UNet with its weights loaded. */
export interface IFModel {
  unet: IFUnet;
  weights: Map<string, tf.Tensor>;
  dir: string;
  /** The folder's scheduler/scheduler_config.json, else IF's published settings for the stage. */
  scheduler: LoadedScheduler;
  dispose(): void;
}
