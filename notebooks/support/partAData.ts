/**
 * Part A's test images (data/partA/, written by scripts/makePartAData.ts) loaded for a given
 * Denoiser: resized to its image size, with its channel count, mapped to its value range.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadImage } from '../../lib/image/io';
import { dataDir } from '../../lib/paths';
import { toModelRange, type Denoiser } from '../../lib/models/denoiser';

/** MNIST test indices used as the notebook's Campanile (first) and two more test images. */
export const CAMPANILE_INDICES = [0, 1, 4];

/** data/partA at the project root (written by scripts/makePartAData.ts). */
export function partADataDir(): string {
  return dataDir('partA');
}

/** A Part A data file by name (e.g. "sketch-4.png"), or any path. */
export function partAFile(name: string): string {
  return path.isAbsolute(name) || fs.existsSync(name) ? name : path.join(partADataDir(), name);
}

/**
 * Loads an image file (any format sharp reads, e.g. a canvas PNG) for the model:
 * [1,H,W,C] in the model's value range. Non-square images are center-cropped (the course's
 * process_pil_im). MNIST-style files are white on black; photos work as they are for IF.
 */
export async function loadModelImage(den: Denoiser, file: string): Promise<tf.Tensor4D> {
  if (den.channels !== 1 && den.channels !== 3) throw new Error(`loadModelImage: ${den.name} has ${den.channels} channels; only 1 or 3 are supported`);
  const img = await loadImage(partAFile(file), { size: den.imageSize, channels: den.channels as 1 | 3, fit: 'center-crop', range: '[0,1]' });
  const out = toModelRange(den, img);
  img.dispose();
  return out;
}

/** Loads an inpainting mask: [1,H,W,1] of 0/1 (white, > 0.5, = generate new content). */
export async function loadMask(den: Denoiser, file: string): Promise<tf.Tensor4D> {
  const img = await loadImage(partAFile(file), { size: den.imageSize, channels: 1, fit: 'resize', range: '[0,1]' });
  const out = tf.tidy(() => tf.cast(tf.greater(img, 0.5), 'float32') as tf.Tensor4D);
  img.dispose();
  return out;
}
