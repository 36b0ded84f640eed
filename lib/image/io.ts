/**
 * Image files <-> tensors, with sharp (libvips): load any common format (PNG, JPEG, WebP, GIF,
 * TIFF, AVIF, SVG), resize or center-crop, and write PNGs atomically.
 *
 * Tensors are NHWC float32. Pixel ranges: '[0,1]' (display, data) or '[-1,1]' (what the
 * diffusion models see: x = 2*p - 1).
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { writeFileAtomic } from '../files';

export type PixelRange = '[0,1]' | '[-1,1]';

export interface LoadImageOptions {
  /** Output size [height, width]; default: the file's own size. */
  size?: [number, number];
  /**
   * 'resize' (default): stretch to `size`, ignoring the aspect ratio (like PIL's Image.resize).
   * 'center-crop': scale so the shortest side fits, then cut the middle (the course's process_pil_im).
   */
  fit?: 'resize' | 'center-crop';
  /** 1 = grayscale, 3 = RGB (default 3; alpha is flattened onto white). */
  channels?: 1 | 3;
  /** Output range (default '[0,1]'). */
  range?: PixelRange;
}

function checkRange(range: string): asserts range is PixelRange {
  if (range !== '[0,1]' && range !== '[-1,1]') {
    throw new Error(`Unknown pixel range "${range}": use '[0,1]' or '[-1,1]'.`);
  }
}

function describeSource(src: string | Buffer): string {
  return typeof src === 'string' ? `"${src}"` : `buffer of ${src.length} bytes`;
}

/**
 * Loads an image as a [1, H, W, C] float32 tensor (C = opts.channels, default 3).
 * Throws a one-line error for unreadable files and unsupported options.
 */
export async function loadImage(src: string | Buffer, opts: LoadImageOptions = {}): Promise<tf.Tensor4D> {
  const channels = opts.channels ?? 3;
  if (channels !== 1 && channels !== 3) {
    throw new Error(`loadImage: channels must be 1 (grayscale) or 3 (RGB), got ${channels}.`);
  }
  const range = opts.range ?? '[0,1]';
  checkRange(range);
  const fit = opts.fit ?? 'resize';
  if (fit !== 'resize' && fit !== 'center-crop') {
    throw new Error(`loadImage: fit must be 'resize' or 'center-crop', got "${fit}".`);
  }
  if (opts.size) {
    const [h, w] = opts.size;
    if (!(Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0)) {
      throw new Error(`loadImage: size must be [height, width] positive integers, got [${opts.size.join(', ')}].`);
    }
  }
  if (typeof src === 'string' && !fs.existsSync(src)) {
    throw new Error(`loadImage: no such file ${describeSource(src)}; check the path (relative paths start at ${process.cwd()}).`);
  }
  let img = sharp(src, { failOn: 'error' });
  if (opts.size) {
    const [h, w] = opts.size;
    // 'fill' ignores aspect like PIL resize; 'cover' + centre = shortest side to size, then center crop.
    img = img.resize(w, h, { fit: fit === 'resize' ? 'fill' : 'cover', position: 'centre', kernel: 'cubic' });
  }
  img = img.flatten({ background: '#ffffff' });
  img = channels === 1 ? img.grayscale() : img.toColourspace('srgb');
  let raw: { data: Buffer; info: sharp.OutputInfo };
  try {
    raw = await img.raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    const msg = String((e as Error)?.message ?? e).split('\n')[0];
    throw new Error(`loadImage: cannot read image ${describeSource(src)}: ${msg} (supported: PNG, JPEG, WebP, GIF, TIFF, AVIF, SVG).`);
  }
  const { width, height } = raw.info;
  const got = raw.info.channels;
  // grayscale() may still hand back several identical bands for some inputs; keep the first one.
  const out = new Float32Array(width * height * channels);
  const d = raw.data;
  const scale = range === '[0,1]' ? 1 / 255 : 2 / 255;
  const offset = range === '[0,1]' ? 0 : -1;
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < channels; c++) {
      const src_c = got === 1 ? 0 : Math.min(c, got - 1);
      out[p * channels + c] = d[p * got + src_c] * scale + offset;
    }
  }
  return tf.tensor4d(out, [1, height, width, channels]);
}

/** Raw 8-bit pixels of one image, row-major HWC. */
export interface RawImage {
  data: Uint8Array;
  height: number;
  width: number;
  channels: number;
}

/**
 * Converts [1,H,W,C] or [H,W,C] (C = 1, 3 or 4) to 8-bit pixels, clipping to the range.
 * '[0,1]': p*255; '[-1,1]': (x+1)/2*255.
 */
export async function tensorToRaw(t: tf.Tensor, range: PixelRange = '[0,1]'): Promise<RawImage> {
  checkRange(range);
  let shape = t.shape;
  if (shape.length === 4) {
    if (shape[0] !== 1) {
      throw new Error(
        `tensorToPng: expected one image [1,H,W,C] or [H,W,C], got batch of ${shape[0]} [${shape.join(',')}]; use makeGrid for batches or slice one image.`,
      );
    }
    shape = shape.slice(1);
  }
  if (shape.length !== 3) {
    throw new Error(`tensorToPng: expected [1,H,W,C] or [H,W,C], got shape [${t.shape.join(',')}].`);
  }
  const [height, width, channels] = shape;
  if (channels !== 1 && channels !== 3 && channels !== 4) {
    throw new Error(
      `tensorToPng: channel count must be 1, 3 or 4 (NHWC), got ${channels} in shape [${t.shape.join(',')}]; is the tensor NCHW?`,
    );
  }
  const v = (await t.data()) as Float32Array;
  // A NaN or infinite pixel means a broken model or sampler: refuse, rather than write it as black.
  let bad = 0;
  let first = -1;
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i])) {
      if (first < 0) first = i;
      bad++;
    }
  }
  if (bad) {
    throw new Error(
      `tensorToPng: the image has ${bad} non-finite value${bad === 1 ? '' : 's'} (${v[first]} at index ${first} of [${t.shape.join(',')}]); nothing was written — the model or sampler produced it: check the weights (npm run weights -- check FILE) or the sampling settings`,
    );
  }
  const data = new Uint8Array(v.length);
  const a = range === '[0,1]' ? 255 : 127.5;
  const b = range === '[0,1]' ? 0 : 127.5;
  for (let i = 0; i < v.length; i++) {
    const x = v[i] * a + b;
    // Clip to 0..255, round to nearest.
    data[i] = x >= 255 ? 255 : x > 0 ? Math.round(x) : 0;
  }
  return { data, height, width, channels };
}

/** Encodes raw 8-bit pixels as PNG. */
export async function rawToPng(img: RawImage): Promise<Buffer> {
  const s = sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
    raw: { width: img.width, height: img.height, channels: img.channels as 1 | 3 | 4 },
  });
  // Keep one-channel images as grayscale PNGs (sharp would otherwise write RGB).
  return (img.channels === 1 ? s.toColourspace('b-w') : s).png().toBuffer();
}

/** PNG bytes of [1,H,W,C] or [H,W,C] (C = 1, 3 or 4). Does not dispose t. */
export async function tensorToPng(t: tf.Tensor, range: PixelRange = '[0,1]'): Promise<Buffer> {
  return rawToPng(await tensorToRaw(t, range));
}

/** Saves [1,H,W,C] or [H,W,C] as a PNG file, atomically. Does not dispose t. */
export async function savePng(t: tf.Tensor, file: string, range: PixelRange = '[0,1]'): Promise<void> {
  writeFileAtomic(file, await tensorToPng(t, range));
}
