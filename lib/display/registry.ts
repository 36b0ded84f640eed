/**
 * Figure registration for the report (`npm run figures`).
 *
 * scripts/figures.sh runs each notebook in its own kernel with two environment variables:
 *   FIGURES_DIR       the output folder (figures/ by default)
 *   FIGURES_NOTEBOOK  the notebook's name without .ipynb (e.g. "00-smoke")
 * Every show* call then writes its files under FIGURES_DIR/<notebook>/ (always <id>.png, plus
 * <id>.gif and <id>.poster.png (its first frame) for animations, <id>.plot.json, the Plotly spec,
 * for charts, and one <id>.anagram-<k>.png / <id>.hybrid-<k>.png per tile of the interactive
 * illusions) and appends one JSON line to FIGURES_DIR/<notebook>/manifest.jsonl, so the report
 * keeps the order figures were shown. Without FIGURES_DIR (interactive notebooks, commands)
 * nothing is written. Fields added since the first format (poster, anagrams, hybrids) are
 * optional: a manifest written without them still reads and renders.
 */
import type { ViewName } from '../image/views';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../files';
import { setting } from '../config';

export type FigureKind = 'image' | 'plot' | 'gif' | 'anagram' | 'hybrid';

/** Identifies a figure: id (file name stem, unique per notebook), title, optional figure caption. */
export interface FigureMeta {
  id: string;
  title: string;
  caption?: string;
}

/** One visual anagram of an 'anagram' figure: its upright image (native size) and both prompts. */
export interface AnagramTile {
  png: string;
  width: number;
  height: number;
  uprightPrompt: string;
  flippedPrompt: string;
  /** The anagram's view (lib/image/views.ts); absent = the vertical flip. */
  view?: ViewName;
}

/** One hybrid image of a 'hybrid' figure: the hybrid (native size) and what it shows far and near. */
export interface HybridTile {
  png: string;
  width: number;
  height: number;
  farPrompt: string;
  nearPrompt: string;
}

/** One line of manifest.jsonl. Paths are relative to FIGURES_DIR. */
export interface FigureRecord {
  notebook: string;
  id: string;
  title: string;
  caption?: string;
  kind: FigureKind;
  /** The static figure (for 'anagram' and 'hybrid' the grid, for 'gif' the last frame). */
  png: string;
  gif?: string;
  /** 'gif': the first frame as PNG, shown until the reader hovers or taps. */
  poster?: string;
  plot?: string;
  width?: number;
  height?: number;
  anagrams?: AnagramTile[];
  hybrids?: HybridTile[];
}

/** A tile's files before registration: the PNG bytes in place of its path. */
export type TileFiles<T extends { png: string }> = Omit<T, 'png'> & { png: Buffer };

export interface FigureFiles {
  png: Buffer;
  gif?: Uint8Array;
  /** First frame of the GIF, for kind 'gif'. */
  poster?: Buffer;
  /** Plotly {data, layout}, for kind 'plot'. */
  plot?: unknown;
  width?: number;
  height?: number;
  anagrams?: TileFiles<AnagramTile>[];
  hybrids?: TileFiles<HybridTile>[];
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Throws a one-line error unless id is a safe file name stem. */
export function checkFigureId(id: string): void {
  if (typeof id !== 'string' || !ID_RE.test(id)) {
    throw new Error(`Figure id "${id}" is not usable as a file name: use letters, digits, '.', '_' or '-' (e.g. "forward-noise").`);
  }
}

/** Where figures of this process go, or undefined when not registering. */
export function figuresTarget(): { dir: string; notebook: string } | undefined {
  const dir = setting('FIGURES_DIR');
  if (!dir) return undefined;
  const notebook = (setting('FIGURES_NOTEBOOK') ?? 'interactive').replace(/[^A-Za-z0-9._-]/g, '_');
  return { dir: path.resolve(dir), notebook };
}

/**
 * Saves a figure's files and appends its manifest line. Returns the PNG path, or undefined when
 * FIGURES_DIR is not set.
 */
export function registerFigure(
  meta: { id: string; title: string; caption?: string; kind: FigureKind },
  files: FigureFiles,
): string | undefined {
  checkFigureId(meta.id);
  const target = figuresTarget();
  if (!target) return undefined;
  const nbDir = path.join(target.dir, target.notebook);
  const rel = (f: string) => `${target.notebook}/${f}`;
  const rec: FigureRecord = { notebook: target.notebook, id: meta.id, title: meta.title, kind: meta.kind, png: rel(`${meta.id}.png`) };
  if (meta.caption) rec.caption = meta.caption;
  if (files.width) rec.width = files.width;
  if (files.height) rec.height = files.height;
  writeFileAtomic(path.join(nbDir, `${meta.id}.png`), files.png);
  if (files.gif) {
    writeFileAtomic(path.join(nbDir, `${meta.id}.gif`), files.gif);
    rec.gif = rel(`${meta.id}.gif`);
  }
  if (files.poster) {
    writeFileAtomic(path.join(nbDir, `${meta.id}.poster.png`), files.poster);
    rec.poster = rel(`${meta.id}.poster.png`);
  }
  const tiles = <T extends { png: string }>(list: TileFiles<T>[], kind: string): T[] =>
    list.map((t, k) => {
      const name = `${meta.id}.${kind}-${k}.png`;
      writeFileAtomic(path.join(nbDir, name), t.png);
      return { ...t, png: rel(name) } as unknown as T;
    });
  if (files.anagrams) rec.anagrams = tiles(files.anagrams, 'anagram');
  if (files.hybrids) rec.hybrids = tiles(files.hybrids, 'hybrid');
  if (files.plot !== undefined) {
    writeFileAtomic(path.join(nbDir, `${meta.id}.plot.json`), JSON.stringify(files.plot));
    rec.plot = rel(`${meta.id}.plot.json`);
  }
  fs.appendFileSync(path.join(nbDir, 'manifest.jsonl'), JSON.stringify(rec) + '\n');
  return path.join(nbDir, `${meta.id}.png`);
}

/**
 * Reads a notebook's manifest: one record per id, at the position it was first shown, with the
 * content of its last showing (a re-shown id overwrote its files).
 */
export function readManifest(file: string): FigureRecord[] {
  if (!fs.existsSync(file)) return [];
  const byId = new Map<string, FigureRecord>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const rec = JSON.parse(line) as FigureRecord;
    byId.set(rec.id, rec); // Map keeps first insertion order, set() replaces the value
  }
  return [...byId.values()];
}
