/**
 * Figure grids: a batch of images as tiles, a caption under each tile, a title on top.
 * Pixels are composed in plain JS (nearest-neighbour upscaling keeps MNIST pixels crisp); the
 * text is an SVG overlay rendered by sharp's librsvg with the system fonts (DejaVu/Liberation on
 * Debian), so nothing is downloaded.
 */
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import type { PixelRange } from '../image/io';
import { escapeXml } from './notebook';

export interface GridOptions {
  /** One caption per image (tile order = batch order); missing entries leave the tile bare. */
  captions?: string[];
  /** Title drawn above the grid. */
  title?: string;
  /** Tiles per row (default min(n, 8)). */
  cols?: number;
  /** Pixel range of the tensors (default '[0,1]'). */
  range?: PixelRange;
  /** Upscaling factor (default: smallest integer making tiles at least 64 px, 1 for larger images). */
  scale?: number;
}

export const FONT_FAMILY = "'DejaVu Sans', 'Liberation Sans', Arial, Helvetica, sans-serif";
const MARGIN = 8;
const GAP = 6;
const TITLE_FONT = 16;
// Average advance of DejaVu Sans glyphs, in font sizes: used to fit text without measuring it.
const CHAR_W = 0.62;

/** Where everything goes in a grid, in pixels. */
export interface GridLayout {
  n: number;
  cols: number;
  rows: number;
  tileH: number;
  tileW: number;
  /** Width of one column (tile + room for its caption). */
  cellW: number;
  /** Height of one row (tile + caption band). */
  cellH: number;
  captionFont: number;
  captionH: number;
  titleH: number;
  width: number;
  height: number;
  /** Left x of the first column (the grid is centered when the title is wider). */
  x0: number;
  y0: number;
}

/** Default upscale: small images (MNIST 28 px) become at least 64 px tiles. */
export function defaultScale(h: number, w: number): number {
  const m = Math.max(h, w);
  return m >= 64 ? 1 : Math.ceil(64 / m);
}

/** Computes the grid geometry (pure; used by makeGrid and its tests). */
export function gridLayout(
  n: number,
  imgH: number,
  imgW: number,
  opts: { cols?: number; scale?: number; captions?: boolean; captionLines?: number; title?: string } = {},
): GridLayout {
  if (!(n > 0)) throw new Error('makeGrid: no images to show (empty batch).');
  const scale = opts.scale ?? defaultScale(imgH, imgW);
  if (!(scale > 0)) throw new Error(`makeGrid: scale must be > 0, got ${opts.scale}.`);
  const cols = Math.max(1, Math.min(n, Math.floor(opts.cols ?? 8)));
  const rows = Math.ceil(n / cols);
  const tileH = Math.max(1, Math.round(imgH * scale));
  const tileW = Math.max(1, Math.round(imgW * scale));
  const captionFont = opts.captions ? (tileW >= 72 ? 12 : tileW >= 48 ? 11 : 10) : 0;
  // Each caption line takes 1.2 em, plus 0.4 em of space above the first.
  const captionH = opts.captions ? Math.ceil(captionFont * (0.4 + 1.2 * Math.max(1, opts.captionLines ?? 1))) : 0;
  const cellW = tileW;
  const cellH = tileH + captionH;
  const titleH = opts.title ? Math.ceil(TITLE_FONT * 2) : 0;
  const gridW = cols * cellW + (cols - 1) * GAP;
  const titleW = opts.title ? Math.min(Math.ceil(opts.title.length * TITLE_FONT * CHAR_W), 1200) : 0;
  const width = 2 * MARGIN + Math.max(gridW, titleW);
  const height = 2 * MARGIN + titleH + rows * cellH + (rows - 1) * GAP;
  const x0 = MARGIN + Math.floor((width - 2 * MARGIN - gridW) / 2);
  return { n, cols, rows, tileH, tileW, cellW, cellH, captionFont, captionH, titleH, width, height, x0, y0: MARGIN + titleH };
}

/** The most lines a tile caption wraps onto (beyond them the last line ends in an ellipsis). */
export const MAX_CAPTION_LINES = 3;

/**
 * Wraps text into lines of about maxWidth pixels at the given font size, breaking at spaces (a
 * word longer than a line is split), at most maxLines lines: captions stay whole under their tile.
 */
export function wrapText(s: string, font: number, maxWidth: number, maxLines = MAX_CAPTION_LINES): string[] {
  const max = Math.max(1, Math.floor(maxWidth / (font * CHAR_W)));
  const lines: string[] = [];
  let cur = '';
  for (let word of s.split(/\s+/).filter(Boolean)) {
    while (word.length > max) {
      if (cur) lines.push(cur);
      lines.push(word.slice(0, max));
      cur = '';
      word = word.slice(max);
    }
    if (!cur) cur = word;
    else if (cur.length + 1 + word.length <= max) cur += ' ' + word;
    else {
      lines.push(cur);
      cur = word;
    }
  }
  if (cur) lines.push(cur);
  if (lines.length <= maxLines) return lines;
  const kept = lines.slice(0, maxLines);
  kept[maxLines - 1] = fitText(kept[maxLines - 1] + ' ' + lines[maxLines], font, maxWidth);
  return kept;
}

/** Shortens text to about maxWidth pixels at the given font size, with an ellipsis. */
export function fitText(s: string, font: number, maxWidth: number): string {
  const max = Math.max(1, Math.floor(maxWidth / (font * CHAR_W)));
  return s.length <= max ? s : s.slice(0, Math.max(1, max - 1)) + '…';
}

interface Batch {
  data: Float32Array;
  b: number;
  h: number;
  w: number;
  c: number;
}

async function readBatches(images: tf.Tensor4D | tf.Tensor4D[]): Promise<Batch[]> {
  const list = Array.isArray(images) ? images : [images];
  if (list.length === 0) throw new Error('makeGrid: no images to show (empty list).');
  const out: Batch[] = [];
  for (const t of list) {
    if (!t || t.rank !== 4) {
      throw new Error(
        `makeGrid: expected NHWC tensors [B,H,W,C], got shape [${t?.shape?.join(',')}]; add a batch axis with t.expandDims(0).`,
      );
    }
    const [b, h, w, c] = t.shape;
    if (c !== 1 && c !== 3 && c !== 4) {
      throw new Error(`makeGrid: channel count must be 1, 3 or 4 (NHWC), got ${c} in [${t.shape.join(',')}]; is the tensor NCHW?`);
    }
    out.push({ data: (await t.data()) as Float32Array, b, h, w, c });
  }
  return out;
}

/** A grid as raw RGB pixels (text not yet drawn) plus the SVG overlay with the text. */
export interface GridRaster {
  layout: GridLayout;
  rgb: Uint8Array;
  svg: string;
  /** Tile captions that did not fit in MAX_CAPTION_LINES lines (shown cut, ending in an ellipsis). */
  captionsCut: number;
}

/** Composes the tiles and text of a grid (shared by makeGrid and showGif). */
export async function renderGrid(images: tf.Tensor4D | tf.Tensor4D[], opts: GridOptions = {}): Promise<GridRaster> {
  const range = opts.range ?? '[0,1]';
  if (range !== '[0,1]' && range !== '[-1,1]') throw new Error(`makeGrid: unknown range "${range}": use '[0,1]' or '[-1,1]'.`);
  const batches = await readBatches(images);
  const n = batches.reduce((s, b) => s + b.b, 0);
  const imgH = Math.max(...batches.map((b) => b.h));
  const imgW = Math.max(...batches.map((b) => b.w));
  const hasCaptions = Boolean(opts.captions && opts.captions.some((c) => c));
  // The caption band is as tall as the longest wrapped caption.
  const probe = gridLayout(n, imgH, imgW, { cols: opts.cols, scale: opts.scale, captions: hasCaptions, title: opts.title });
  const wrapped = (opts.captions ?? []).map((c) => (c ? wrapText(String(c), probe.captionFont, probe.cellW + GAP - 2) : []));
  const captionLines = Math.max(1, ...wrapped.map((w) => w.length));
  const squeeze = (t: string) => t.replace(/\s+/g, '');
  const captionsCut = (opts.captions ?? []).filter((c, i) => c && squeeze(wrapped[i].join('')) !== squeeze(String(c))).length;
  const L = gridLayout(n, imgH, imgW, { cols: opts.cols, scale: opts.scale, captions: hasCaptions, captionLines, title: opts.title });
  const scale = L.tileW / imgW;
  const rgb = new Uint8Array(L.width * L.height * 3).fill(255);
  const a = range === '[0,1]' ? 255 : 127.5;
  const off = range === '[0,1]' ? 0 : 127.5;
  let k = 0;
  for (const B of batches) {
    const th = Math.round(B.h * scale);
    const tw = Math.round(B.w * scale);
    for (let i = 0; i < B.b; i++, k++) {
      const col = k % L.cols;
      const row = Math.floor(k / L.cols);
      // Smaller images sit centered in their tile.
      const left = L.x0 + col * (L.cellW + GAP) + Math.floor((L.tileW - tw) / 2);
      const top = L.y0 + row * (L.cellH + GAP) + Math.floor((L.tileH - th) / 2);
      const base = i * B.h * B.w * B.c;
      for (let y = 0; y < th; y++) {
        const sy = Math.min(B.h - 1, Math.floor(y / scale));
        for (let x = 0; x < tw; x++) {
          const sx = Math.min(B.w - 1, Math.floor(x / scale));
          const s = base + (sy * B.w + sx) * B.c;
          const d = ((top + y) * L.width + left + x) * 3;
          for (let ch = 0; ch < 3; ch++) {
            const v = B.data[s + (B.c === 1 ? 0 : ch)] * a + off;
            rgb[d + ch] = v >= 255 ? 255 : v > 0 ? Math.round(v) : 0;
          }
        }
      }
    }
  }
  const texts: string[] = [];
  if (opts.title) {
    const t = fitText(opts.title, TITLE_FONT, L.width - 2 * MARGIN);
    texts.push(
      `<text x="${L.width / 2}" y="${MARGIN + TITLE_FONT * 1.2}" font-size="${TITLE_FONT}" font-weight="bold" text-anchor="middle">${escapeXml(t)}</text>`,
    );
  }
  if (hasCaptions) {
    for (let i = 0; i < n; i++) {
      const lines = wrapped[i] ?? [];
      if (!lines.length) continue;
      const col = i % L.cols;
      const row = Math.floor(i / L.cols);
      const cx = L.x0 + col * (L.cellW + GAP) + L.cellW / 2;
      lines.forEach((line, k) => {
        const cy = L.y0 + row * (L.cellH + GAP) + L.tileH + L.captionFont * (1.25 + 1.2 * k);
        texts.push(`<text x="${cx}" y="${cy.toFixed(1)}" font-size="${L.captionFont}" text-anchor="middle">${escapeXml(line)}</text>`);
      });
    }
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${L.width}" height="${L.height}"><g font-family="${FONT_FAMILY}" fill="#111">${texts.join('')}</g></svg>`;
  return { layout: L, rgb, svg, captionsCut };
}

/** Draws the text overlay onto the raster; output format chosen by the caller. */
export function rasterToSharp(r: GridRaster): sharp.Sharp {
  const L = r.layout;
  const base = sharp(Buffer.from(r.rgb.buffer, r.rgb.byteOffset, r.rgb.byteLength), {
    raw: { width: L.width, height: L.height, channels: 3 },
  });
  return base.composite([{ input: Buffer.from(r.svg), top: 0, left: 0 }]);
}

/**
 * PNG of a grid of images (NHWC, C = 1, 3 or 4; a list is shown as one sequence of tiles),
 * with a caption under each tile and an optional title. Does not dispose the tensors.
 */
export async function makeGrid(images: tf.Tensor4D | tf.Tensor4D[], opts: GridOptions = {}): Promise<Buffer> {
  return (await gridPng(images, opts)).png;
}

/** makeGrid's PNG, and how many tile captions had to be cut (see GridRaster.captionsCut). */
export async function gridPng(images: tf.Tensor4D | tf.Tensor4D[], opts: GridOptions = {}): Promise<{ png: Buffer; captionsCut: number }> {
  const r = await renderGrid(images, opts);
  return { png: await rasterToSharp(r).png().toBuffer(), captionsCut: r.captionsCut };
}
