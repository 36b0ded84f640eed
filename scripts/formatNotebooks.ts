/**
 * Formats the notebooks' code cells like the library (lib/teaching/notebookFormat.ts):
 * `npm run format:notebooks [-- --check] [notebooks/X.ipynb ...]` (default: every notebooks/*.ipynb).
 * Outputs and metadata are kept; only cell sources change. --check writes nothing and exits 1 when
 * a cell would change.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exitCodeFor, parseCommandLine } from '../lib/cli';
import { writeFileAtomic } from '../lib/files';
import { formatNotebook, notebookText, teachingNotebooks } from '../lib/teaching/notebookFormat';
import type { Notebook } from '../lib/teaching/exercises';

const USAGE = `usage: npm run format:notebooks -- [--check] [notebooks/X.ipynb ...]
Formats every code cell with Prettier (the project's options, lines of at most 100 characters).`;

const OPTIONS = {
  check: { type: 'boolean', help: 'write nothing; exit 1 if a cell is not formatted' },
} as const;

async function main(): Promise<number> {
  const { values: a, positionals } = parseCommandLine(process.argv.slice(2), OPTIONS, USAGE, {
    positionals: { name: 'NOTEBOOK', max: Infinity },
  });
  const files = positionals.length ? positionals.map((p) => path.resolve(p)) : teachingNotebooks();
  let unformatted = 0;
  for (const file of files) {
    let nb: Notebook;
    try {
      nb = JSON.parse(fs.readFileSync(file, 'utf8')) as Notebook;
    } catch (e) {
      throw new Error(`${file} is not a readable notebook (${(e as Error).message.split('\n')[0]})`);
    }
    if (!Array.isArray(nb.cells)) throw new Error(`${file} is not a Jupyter notebook (no cells)`);
    const { notebook, changed } = await formatNotebook(nb, path.basename(file));
    const name = path.relative(process.cwd(), file);
    if (changed.length === 0) continue;
    unformatted++;
    if (a.check) console.log(`${name}: cells ${changed.join(', ')} are not formatted (run npm run format:notebooks)`);
    else {
      writeFileAtomic(file, notebookText(notebook));
      console.log(`${name}: formatted cells ${changed.join(', ')}`);
    }
  }
  return a.check && unformatted > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`error: ${(e as Error).message}`);
    process.exit(exitCodeFor(e));
  },
);
