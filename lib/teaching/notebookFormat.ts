/**
 * Notebook code cells in the library's style: Prettier with the project's options (.prettierrc.json)
 * at a width that fits a classic Notebook code cell without a horizontal scroll (CELL_WIDTH).
 * `npm run format:notebooks` rewrites the notebooks; test/teaching/notebookFormat.test.ts fails on a
 * cell that is not formatted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as prettier from 'prettier';
import { PROJECT_ROOT } from '../paths';
import { cellSource, type Notebook } from './exercises';

/** Characters per line in notebook cells: a classic Notebook 6 cell at a 1280-pixel window shows about 110. */
export const CELL_WIDTH = 100;

/**
 * The longest line a cell may hold: Prettier does not break comments and strings, so those are
 * wrapped by hand below this (a classic Notebook cell at 1280 pixels scrolls sideways past ~114).
 */
export const CELL_LINE_LIMIT = 110;

/** Lines of a cell longer than CELL_LINE_LIMIT: [line number from 1, length]. */
export function longLines(source: string): Array<[number, number]> {
  return source
    .split('\n')
    .map((l, i): [number, number] => [i + 1, [...l].length])
    .filter(([, n]) => n > CELL_LINE_LIMIT);
}

/** Prettier's options for notebook cells: the project's, at CELL_WIDTH, parsed as TypeScript (top-level await allowed). */
export async function cellOptions(): Promise<prettier.Options> {
  const project = (await prettier.resolveConfig(path.join(PROJECT_ROOT, 'lib', 'paths.ts'))) ?? {};
  return { ...project, printWidth: CELL_WIDTH, parser: 'typescript' };
}

/** One cell's source formatted (no trailing newline, as Jupyter stores cells). Throws "cell N: …" when it does not parse. */
export async function formatCell(source: string, options: prettier.Options, where = 'cell'): Promise<string> {
  try {
    return (await prettier.format(source, options)).replace(/\n+$/, '');
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** The notebook with every code cell formatted, and the indices of the cells that changed. */
export async function formatNotebook(nb: Notebook, name = 'notebook'): Promise<{ notebook: Notebook; changed: number[] }> {
  const options = await cellOptions();
  const changed: number[] = [];
  const cells = [];
  for (const [i, c] of nb.cells.entries()) {
    if (c.cell_type !== 'code') {
      cells.push(c);
      continue;
    }
    const before = cellSource(c);
    const after = await formatCell(before, options, `${name} cell ${i}`);
    if (after !== before) changed.push(i);
    cells.push(after === before ? c : { ...c, source: after.split(/(?<=\n)/) });
  }
  return { notebook: { ...nb, cells }, changed };
}

/** The teaching notebooks: notebooks/*.ipynb. */
export function teachingNotebooks(): string[] {
  const dir = path.join(PROJECT_ROOT, 'notebooks');
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.ipynb'))
    .sort()
    .map((f) => path.join(dir, f));
}

/** A notebook file's text as Jupyter writes it (one-space indent, a final newline). */
export function notebookText(nb: Notebook): string {
  return `${JSON.stringify(nb, null, 1)}\n`;
}
