/**
 * The main job's runner (called by scripts/figures.sh after setup and build):
 *
 *   node dist/scripts/figures.js [--out DIR] [--executed DIR] [--no-html] [notebooks/X.ipynb ...]
 *
 * Executes each notebook (default: every notebooks/*.ipynb, sorted) headless in the tslab kernel
 * with `jupyter nbconvert --execute`, saves it under notebooks/executed/ (signed with `jupyter
 * trust`, so Jupyter runs its chart scripts, plus an HTML rendering), and rebuilds
 * figures/index.html from every notebook's figures. The display layer registers figures because
 * FIGURES_DIR and FIGURES_NOTEBOOK are set in the kernel's environment (lib/display/registry.ts).
 * Running one notebook replaces only that notebook's figures; the report keeps the others.
 * Exits 1 when a notebook failed (the report is still written, with the failure listed).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { buildReport, type NotebookRun } from '../lib/report';
import { writeFileAtomic } from '../lib/files';
import { CliError, parseCommandLine } from '../lib/cli';
import { PROJECT_ROOT } from '../lib/paths';

const root = PROJECT_ROOT;

interface Args {
  out: string;
  executed: string;
  html: boolean;
  notebooks: string[];
}

const USAGE = `usage: node dist/scripts/figures.js [--out DIR] [--executed DIR] [--no-html] [notebooks/X.ipynb ...]   (npm run figures -- ...)
Executes the notebooks (default: every notebooks/*.ipynb) headless and rebuilds DIR/index.html from their figures.`;

const FIGURES_OPTIONS = {
  out: { type: 'string', valueName: 'DIR', help: 'figures folder (DIR/<notebook>/*.png, DIR/index.html)', defaultHelp: 'figures/' },
  executed: {
    type: 'string',
    valueName: 'DIR',
    help: 'where the executed notebooks (and their HTML) go',
    defaultHelp: 'notebooks/executed/',
  },
  'no-html': { type: 'boolean', help: 'skip the HTML rendering of each executed notebook' },
} as const;

function parseArgs(argv: string[]): Args {
  const { values, positionals } = parseCommandLine(argv, FIGURES_OPTIONS, USAGE, { positionals: { name: 'notebook' } });
  const a: Args = {
    out: values.out !== undefined ? path.resolve(values.out) : path.join(root, 'figures'),
    executed: values.executed !== undefined ? path.resolve(values.executed) : path.join(root, 'notebooks', 'executed'),
    html: !values['no-html'],
    notebooks: positionals.map((v) => path.resolve(v)),
  };
  if (a.notebooks.length === 0) {
    const dir = path.join(root, 'notebooks');
    a.notebooks = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.ipynb'))
      .sort()
      .map((f) => path.join(dir, f));
  }
  for (const nb of a.notebooks) {
    if (!fs.existsSync(nb)) throw new CliError(`no such notebook ${nb}`);
    if (!nb.endsWith('.ipynb')) throw new CliError(`${nb} is not a .ipynb notebook`);
  }
  return a;
}

function jupyter(): string {
  return fs.existsSync('/usr/bin/jupyter') ? '/usr/bin/jupyter' : 'jupyter';
}

function lastLines(s: string, n: number): string {
  return s.trim().split('\n').slice(-n).join('\n');
}

/**
 * tslab sends no execute_input messages, so nbclient leaves every execution_count empty ("In [ ]");
 * the cells ran once each, top to bottom, so number them 1..n.
 */
function numberCells(file: string): void {
  const nb = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    cells: Array<{ cell_type: string; execution_count?: number | null; outputs?: Array<Record<string, unknown>> }>;
  };
  let n = 0;
  for (const c of nb.cells) {
    if (c.cell_type !== 'code') continue;
    n++;
    if (c.execution_count == null) c.execution_count = n;
    for (const o of c.outputs ?? [])
      if (o.output_type === 'execute_result' && o.execution_count == null) o.execution_count = c.execution_count;
  }
  writeFileAtomic(file, JSON.stringify(nb, null, 1) + '\n');
}

function runNotebook(nb: string, a: Args): NotebookRun {
  const name = path.basename(nb, '.ipynb');
  const figDir = path.join(a.out, name);
  fs.rmSync(figDir, { recursive: true, force: true });
  fs.mkdirSync(figDir, { recursive: true });
  fs.mkdirSync(a.executed, { recursive: true });
  const env = {
    ...process.env,
    // The kernel spec runs `tslab`, found on PATH; the kernel inherits this environment.
    PATH: `${path.join(root, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH ?? ''}`,
    FIGURES_DIR: a.out,
    FIGURES_NOTEBOOK: name,
    PYDEVD_DISABLE_FILE_VALIDATION: '1',
  };
  const t0 = Date.now();
  console.log(`figures: executing ${path.relative(root, nb)} ...`);
  const res = spawnSync(
    jupyter(),
    [
      'nbconvert',
      '--to',
      'notebook',
      '--execute',
      '--ExecutePreprocessor.kernel_name=tslab',
      '--ExecutePreprocessor.timeout=-1',
      '--output-dir',
      a.executed,
      '--output',
      name,
      nb,
    ],
    { env, encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'inherit', 'pipe'] },
  );
  const seconds = (Date.now() - t0) / 1000;
  const executed = path.join(a.executed, `${name}.ipynb`);
  const run: NotebookRun = { notebook: name, ok: res.status === 0, seconds, executed: path.relative(a.out, executed) };
  if (!run.ok) {
    const err = res.error ? String(res.error.message) : lastLines(res.stderr ?? '', 30);
    process.stderr.write(err + '\n');
    run.error = (res.error?.message ?? res.stderr?.match(/\w*Error[^\n]*/g)?.pop() ?? `nbconvert exited with ${res.status}`).slice(0, 300);
    console.log(`figures: ${name} FAILED after ${seconds.toFixed(1)} s`);
    return run;
  }
  numberCells(executed);
  // Sign the executed notebook so Jupyter runs its output scripts (the Plotly charts).
  // (`jupyter trust` is nbformat's TrustNotebookApp; Debian ships the module without the jupyter-trust entry point.)
  const py = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const signed = spawnSync(py, ['-m', 'nbformat.sign', executed], { env, encoding: 'utf8' });
  if (signed.status !== 0)
    process.stderr.write(
      `figures: could not sign ${executed} (charts draw only after re-running it): ${lastLines(signed.stderr ?? '', 2)}\n`,
    );
  if (a.html) {
    const h = spawnSync(jupyter(), ['nbconvert', '--to', 'html', '--output-dir', a.executed, executed], {
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    if (h.status === 0) run.html = path.relative(a.out, path.join(a.executed, `${name}.html`));
    else process.stderr.write(`figures: HTML rendering of ${name} failed: ${lastLines(h.stderr ?? '', 3)}\n`);
  }
  console.log(`figures: ${name} ok in ${seconds.toFixed(1)} s`);
  return run;
}

function main(): void {
  let a: Args;
  try {
    a = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    process.exit(2);
  }
  const runs = a.notebooks.map((nb) => runNotebook(nb, a));
  // The report covers the notebooks that exist now (this run's and earlier runs' figures).
  const nbDir = path.join(root, 'notebooks');
  const existing = fs
    .readdirSync(nbDir)
    .filter((f) => f.endsWith('.ipynb'))
    .map((f) => path.basename(f, '.ipynb'));
  const n = buildReport(a.out, runs, [...new Set([...existing, ...runs.map((r) => r.notebook)])]);
  const rel = path.relative(process.cwd(), path.join(a.out, 'index.html'));
  console.log(`figures: ${n} figures in ${rel.startsWith('..') ? path.join(a.out, 'index.html') : rel}`);
  const failed = runs.filter((r) => !r.ok);
  if (failed.length) {
    console.error(`figures: ${failed.length} notebook(s) failed: ${failed.map((r) => r.notebook).join(', ')}`);
    process.exit(1);
  }
}

main();
