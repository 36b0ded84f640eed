/**
 * Exercise notebooks from the teaching notebooks (`npm run exercises`). In a teaching notebook the
 * lines a student should write sit inside a function body between
 *     // BEGIN EXERCISE <name>
 *     // END EXERCISE
 * The exercise version replaces each region by a stub that throws NotImplementedYet(<name>) (the
 * function keeps its signature, so every later cell still type-checks), switches the notebook's
 * `setExerciseMode(false);` line on, points its imports at the compiled library, clears the outputs
 * and adds a first cell saying how to work through it. The check after each region (lib/teaching/
 * check.ts verify) then reports "not implemented yet" and hands later cells the library's version.
 */

/** The parts of a notebook this module reads and writes (nbformat 4). */
export interface Notebook {
  cells: NotebookCell[];
  metadata: Record<string, unknown>;
  nbformat: number;
  nbformat_minor: number;
}

export interface NotebookCell {
  cell_type: 'code' | 'markdown' | 'raw';
  source: string | string[];
  metadata: Record<string, unknown>;
  outputs?: unknown[];
  execution_count?: number | null;
  id?: string;
}

/** One marked region. */
export interface ExerciseRegion {
  name: string;
  /** Index of the code cell holding it. */
  cell: number;
  /** The reference solution's lines (without the markers). */
  solution: string[];
  indent: string;
}

const BEGIN = /^(\s*)\/\/ BEGIN EXERCISE (.+?)\s*$/;
const END = /^\s*\/\/ END EXERCISE\s*$/;
export const MODE_LINE = 'setExerciseMode(false);';

export const cellSource = (c: NotebookCell): string => (Array.isArray(c.source) ? c.source.join('') : c.source);

/** Every region of a notebook, in order; throws on an unclosed, nested or unnamed-twice region. */
export function findRegions(nb: Notebook, file = 'notebook'): ExerciseRegion[] {
  const out: ExerciseRegion[] = [];
  const names = new Set<string>();
  nb.cells.forEach((c, ci) => {
    if (c.cell_type !== 'code') return;
    let open: ExerciseRegion | null = null;
    cellSource(c)
      .split('\n')
      .forEach((line, li) => {
        const b = BEGIN.exec(line);
        if (b) {
          if (open)
            throw new Error(
              `${file}: cell ${ci} line ${li + 1}: exercise "${b[2]}" starts inside "${open.name}"; close the first with // END EXERCISE`,
            );
          if (names.has(b[2])) throw new Error(`${file}: two exercises are named "${b[2]}"; give each a unique name`);
          names.add(b[2]);
          open = { name: b[2], cell: ci, solution: [], indent: b[1] };
        } else if (END.test(line)) {
          if (!open) throw new Error(`${file}: cell ${ci} line ${li + 1}: // END EXERCISE without a BEGIN`);
          out.push(open);
          open = null;
        } else if (open) {
          (open as ExerciseRegion).solution.push(line);
        }
      });
    if (open) throw new Error(`${file}: cell ${ci}: exercise "${(open as ExerciseRegion).name}" has no // END EXERCISE`);
  });
  return out;
}

/** The stub that replaces a region: a comment and the throw, at the region's indentation. */
export function stubLines(name: string, indent: string): string[] {
  return [
    `${indent}// TODO ${name}: write this part (the formula is in the text above); the check below tells you when it matches.`,
    `${indent}throw new NotImplementedYet(${JSON.stringify(name)});`,
  ];
}

const toSource = (text: string): string[] => text.split(/(?<=\n)/);

export interface ExerciseOptions {
  /** Keep the reference solution in each region (still in exercise mode): what the tests run. */
  withSolutions?: boolean;
  /** The compiled library (`dist/`) relative to the exercise notebook's folder (default '../../dist': notebooks/exercises/). */
  distPath?: string;
  /** Source notebook name, for the intro cell. */
  source?: string;
}

/** The exercise version of a teaching notebook. */
export function makeExerciseNotebook(nb: Notebook, opts: ExerciseOptions = {}): { notebook: Notebook; regions: ExerciseRegion[] } {
  const file = opts.source ?? 'notebook';
  const regions = findRegions(nb, file);
  if (regions.length === 0) throw new Error(`${file} has no // BEGIN EXERCISE regions`);
  const modeCells = nb.cells.filter((c) => c.cell_type === 'code' && cellSource(c).includes(MODE_LINE));
  if (modeCells.length !== 1)
    throw new Error(`${file}: expected the line "${MODE_LINE}" in exactly one code cell, found ${modeCells.length}`);
  const dist = opts.distPath ?? '../../dist';
  const cells: NotebookCell[] = nb.cells.map((c) => {
    if (c.cell_type !== 'code') return { ...c, source: toSource(cellSource(c)) };
    let src = cellSource(c);
    src = src.replace(MODE_LINE, 'setExerciseMode(true);');
    // Imports of the compiled library, relative to the notebook's folder.
    src = src.replace(/(['"])\.\.\/dist\//g, `$1${dist}/`);
    if (!opts.withSolutions) {
      const lines: string[] = [];
      let inRegion = false;
      for (const line of src.split('\n')) {
        const b = BEGIN.exec(line);
        if (b) {
          inRegion = true;
          lines.push(...stubLines(b[2], b[1]));
        } else if (END.test(line)) {
          inRegion = false;
        } else if (!inRegion) {
          lines.push(line);
        }
      }
      src = lines.join('\n');
    } else {
      src = src
        .split('\n')
        .filter((l) => !BEGIN.test(l) && !END.test(l))
        .join('\n');
    }
    return { ...c, source: toSource(src), outputs: [], execution_count: null };
  });
  const intro: NotebookCell = {
    cell_type: 'markdown',
    metadata: {},
    source: toSource(
      `# Exercises: ${file}\n\n` +
        `This is the exercise version of \`notebooks/${file}\`, made by \`npm run exercises\`. ` +
        `${regions.length} functions have their bodies removed; each says \`TODO\` and throws "not implemented yet". ` +
        "Write the missing lines from the formula in the text, then run the cell: the check under it compares your result with the library's on the same inputs and seed and prints ✓, or what differs (shape, value range, largest error). " +
        "Until a part passes, the cells after it use the library's version, so the rest of the notebook still runs.\n\n" +
        `Exercises: ${regions.map((r) => `**${r.name}**`).join(', ')}.`,
    ),
  };
  return { notebook: { ...nb, cells: [intro, ...cells] }, regions };
}
