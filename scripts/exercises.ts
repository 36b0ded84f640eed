/**
 * Writes the exercise notebooks: `npm run exercises [-- --out DIR] [--with-solutions] [notebooks/X.ipynb ...]`.
 * Each teaching notebook (default: those with // BEGIN EXERCISE regions) becomes DIR/<name>.ipynb
 * with every region replaced by a stub (lib/teaching/exercises.ts); imports are rewritten so the
 * notebook finds the compiled library from DIR. --with-solutions keeps the reference lines (in
 * exercise mode): a teacher's answer key, and what the tests execute.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exitCodeFor, parseCommandLine } from '../lib/cli';
import { writeFileAtomic } from '../lib/files';
import { PROJECT_ROOT } from '../lib/paths';
import { findRegions, makeExerciseNotebook, type Notebook } from '../lib/teaching/exercises';

const USAGE = `usage: npm run exercises -- [--out DIR] [--with-solutions] [notebooks/X.ipynb ...]
Writes DIR/<notebook>.ipynb (default notebooks/exercises/) from each teaching notebook: the marked regions become stubs to fill in.`;

const OPTIONS = {
  out: { type: 'string', valueName: 'DIR', help: 'where the exercise notebooks go', defaultHelp: 'notebooks/exercises/' },
  'with-solutions': { type: 'boolean', help: 'keep the reference solutions (an answer key; still in exercise mode)' },
} as const;

function readNotebook(file: string): Notebook {
  let nb: Notebook;
  try {
    nb = JSON.parse(fs.readFileSync(file, 'utf8')) as Notebook;
  } catch (e) {
    throw new Error(`${file} is not a readable notebook (${(e as Error).message.split('\n')[0]})`);
  }
  if (!Array.isArray(nb.cells)) throw new Error(`${file} is not a Jupyter notebook (no cells)`);
  return nb;
}

function main(): void {
  const { values: a, positionals } = parseCommandLine(process.argv.slice(2), OPTIONS, USAGE, {
    positionals: { name: 'NOTEBOOK', max: Infinity },
  });
  const out = path.resolve(a.out ?? path.join(PROJECT_ROOT, 'notebooks', 'exercises'));
  const sources = positionals.length
    ? positionals.map((p) => path.resolve(p))
    : fs
        .readdirSync(path.join(PROJECT_ROOT, 'notebooks'))
        .filter((f) => f.endsWith('.ipynb'))
        .map((f) => path.join(PROJECT_ROOT, 'notebooks', f))
        .filter((f) => findRegions(readNotebook(f), path.basename(f)).length > 0);
  if (sources.length === 0) throw new Error('no teaching notebook has // BEGIN EXERCISE regions');
  fs.mkdirSync(out, { recursive: true });
  for (const src of sources) {
    const nb = readNotebook(src);
    // The notebook imports '../dist/…' from notebooks/; from DIR the compiled library is here:
    const dist = path.relative(out, path.join(PROJECT_ROOT, 'dist')).split(path.sep).join('/');
    const { notebook, regions } = makeExerciseNotebook(nb, {
      withSolutions: a['with-solutions'],
      source: path.basename(src),
      distPath: dist,
    });
    const file = path.join(out, path.basename(src));
    writeFileAtomic(file, JSON.stringify(notebook, null, 1) + '\n');
    console.log(`${path.relative(process.cwd(), file)}: ${regions.length} exercises (${regions.map((r) => r.name).join('; ')})`);
  }
}

try {
  main();
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  process.exit(exitCodeFor(e));
}
