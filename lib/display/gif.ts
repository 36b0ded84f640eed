/**
 * Animated GIFs of image grids (e.g. a reverse-diffusion trajectory), encoded with gifenc.
 */
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
// gifenc ships CommonJS without types; see lib/display/gifenc.d.ts.
import { GIFEncoder, quantize, applyPalette } from 'gifenc';
import { renderGrid, rasterToSharp, type GridOptions } from './grid';

export interface GifOptions extends GridOptions {
  /** Frames per second (default 8). */
  fps?: number;
  /** Extra time the last frame stays, in ms, before the loop restarts (default 1500). */
  holdLastMs?: number;
  /** Play once instead of looping (default false). */
  once?: boolean;
  /** Per-frame titles (overrides title, e.g. "t = 999"). */
  frameTitles?: string[];
}

/**
 * Encodes frames (each a batch [B,H,W,C] shown as a grid, all with the same B, H, W) as a GIF.
 * Returns the GIF bytes and PNGs of the first frame (the report's poster) and of the last.
 * Does not dispose the tensors.
 */
export async function makeGif(
  frames: tf.Tensor4D[],
  opts: GifOptions = {},
): Promise<{ gif: Uint8Array; firstPng: Buffer; lastPng: Buffer; width: number; height: number }> {
  if (!Array.isArray(frames) || frames.length === 0) throw new Error('showGif: frames is empty; pass an array of [B,H,W,C] tensors.');
  const shape0 = frames[0].shape.join(',');
  frames.forEach((f, i) => {
    if (f.shape.join(',') !== shape0)
      throw new Error(`showGif: frame ${i} has shape [${f.shape.join(',')}] but frame 0 has [${shape0}]; all frames must match.`);
  });
  const fps = opts.fps ?? 8;
  if (!(fps > 0 && fps <= 100)) throw new Error(`showGif: fps must be in (0, 100], got ${fps}.`);
  const delay = Math.round(1000 / fps);
  const gif = GIFEncoder();
  let firstPng: Buffer | undefined;
  let lastPng: Buffer | undefined;
  let width = 0,
    height = 0;
  for (let i = 0; i < frames.length; i++) {
    const title = opts.frameTitles?.[i] ?? opts.title;
    const r = await renderGrid(frames[i], { ...opts, title });
    width = r.layout.width;
    height = r.layout.height;
    const img = rasterToSharp(r);
    const rgba = await img.clone().ensureAlpha().raw().toBuffer();
    const data = new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.byteLength);
    const palette = quantize(data, 256);
    const index = applyPalette(data, palette);
    const last = i === frames.length - 1;
    gif.writeFrame(index, width, height, { palette, delay: last ? delay + (opts.holdLastMs ?? 1500) : delay, repeat: opts.once ? -1 : 0 });
    const png = () =>
      sharp(rgba, { raw: { width, height, channels: 4 } })
        .png()
        .toBuffer();
    if (i === 0) firstPng = await png();
    if (last) lastPng = i === 0 ? firstPng : await png();
  }
  gif.finish();
  return { gif: gif.bytes(), firstPng: firstPng!, lastPng: lastPng!, width, height };
}
