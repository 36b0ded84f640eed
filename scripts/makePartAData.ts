/**
 * Writes Part A's test images to data/partA/ (committed; rerun to regenerate, the output is
 * deterministic):
 *   digit-<label>-test<index>.png   MNIST test digits, this project's "Campanile" (§1.0c)
 *   sketch-<d>.png                  digits drawn as strokes (SVG paths, rendered by sharp)
 *   outside-font-<d>.png            a digit rendered from a TrueType font: not MNIST (§1.7.1's web image)
 *   mask-<name>.png                 inpainting masks, white (1) = generate, black (0) = keep (§1.7.2)
 * All 28×28 grayscale, white digit on black like MNIST.
 *   node dist/scripts/makePartAData.js [--out data/partA]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { loadMnist } from '../lib/data/mnist';
import { writeFileAtomic } from '../lib/files';
import { CAMPANILE_INDICES } from '../notebooks/support/partAData';
import { CliError, exitCodeFor, parseCommandLine } from '../lib/cli';

const SIZE = 28;
const BIG = 280; // strokes are drawn at 10× and downsampled, which antialiases them like a pen scan

async function svgToPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg)).resize(SIZE, SIZE, { kernel: 'lanczos3' }).flatten({ background: '#000000' }).grayscale().png().toBuffer();
}

function strokeSvg(paths: string[], width = 26): string {
  const p = paths
    .map((d) => `<path d="${d}" fill="none" stroke="#fff" stroke-width="${width}" stroke-linecap="round" stroke-linejoin="round"/>`)
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${BIG}" height="${BIG}" viewBox="0 0 ${BIG} ${BIG}"><rect width="100%" height="100%" fill="#000"/>${p}</svg>`;
}

/** Hand-drawn-looking digit sketches: a few pen strokes each, inside MNIST's central 20×20 box. */
const SKETCHES: Record<string, string[]> = {
  // an open 4: down-stroke, cross-bar, long vertical
  '4': ['M 110 60 C 100 100, 85 140, 78 165 L 200 162', 'M 170 70 C 168 120, 170 180, 172 225'],
  // a 3: two bumps
  '3': ['M 90 70 C 130 40, 200 55, 180 105 C 170 130, 140 135, 125 138 C 175 140, 205 170, 185 205 C 165 235, 110 230, 85 210'],
  // a 0 as a slightly tilted loop
  '0': ['M 140 55 C 80 60, 75 150, 95 200 C 115 240, 180 235, 190 180 C 205 120, 195 60, 140 55 Z'],
};

const USAGE = `usage: node dist/scripts/makePartAData.js [--out data/partA]
Writes Part A's test images (MNIST test digits, sketches, font digits, inpainting masks), deterministically.`;

async function main(): Promise<void> {
  const { values } = parseCommandLine(
    process.argv.slice(2),
    { out: { type: 'string', valueName: 'DIR', default: 'data/partA', help: 'output folder' } },
    USAGE,
  );
  const out = path.resolve(values.out);
  fs.mkdirSync(out, { recursive: true });
  const test = loadMnist('test');
  for (const i of CAMPANILE_INDICES) {
    const px = Buffer.alloc(SIZE * SIZE);
    for (let p = 0; p < SIZE * SIZE; p++) px[p] = Math.round(test.images[i * SIZE * SIZE + p] * 255);
    const png = await sharp(px, { raw: { width: SIZE, height: SIZE, channels: 1 } })
      .png()
      .toBuffer();
    writeFileAtomic(path.join(out, `digit-${test.labels[i]}-test${i}.png`), png);
  }
  for (const [d, paths] of Object.entries(SKETCHES)) writeFileAtomic(path.join(out, `sketch-${d}.png`), await svgToPng(strokeSvg(paths)));
  // A printed digit (DejaVu Serif Bold, shipped with Debian): the "image from the web" of §1.7.1.
  for (const d of ['5', '2']) {
    const svg =
      `<svg xmlns="http://www.w3.org/2000/svg" width="${BIG}" height="${BIG}"><rect width="100%" height="100%" fill="#000"/>` +
      `<text x="140" y="218" font-family="DejaVu Serif" font-weight="bold" font-size="220" fill="#fff" text-anchor="middle">${d}</text></svg>`;
    writeFileAtomic(path.join(out, `outside-font-${d}.png`), await svgToPng(svg));
  }
  // Masks (1 = generate new content): the top (like the course's Campanile top), the right half, a centre square.
  const masks: Record<string, (r: number, c: number) => boolean> = {
    top: (r) => r < 12,
    right: (_r, c) => c >= 14,
    center: (r, c) => r >= 9 && r < 19 && c >= 9 && c < 19,
  };
  for (const [name, f] of Object.entries(masks)) {
    const px = Buffer.alloc(SIZE * SIZE);
    for (let r = 0; r < SIZE; r++) for (let c = 0; c < SIZE; c++) px[r * SIZE + c] = f(r, c) ? 255 : 0;
    writeFileAtomic(
      path.join(out, `mask-${name}.png`),
      await sharp(px, { raw: { width: SIZE, height: SIZE, channels: 1 } })
        .png()
        .toBuffer(),
    );
  }
  console.log(`wrote ${fs.readdirSync(out).length} files to ${out}`);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e instanceof CliError ? `error: ${e.message}` : String(e?.message ?? e));
    process.exit(exitCodeFor(e));
  });
}
