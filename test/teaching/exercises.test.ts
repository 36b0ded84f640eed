/**
 * `npm run exercises` (lib/teaching/exercises.ts, scripts/exercises.ts): regions become stubs, the
 * mode line and imports are rewritten, malformed regions are refused; and the generated Part A
 * exercise notebook, executed headless, reports "not implemented yet" for every exercise while the
 * rest of the notebook runs, and with the solutions pasted back passes every check (Part A and Part B).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { cellSource, findRegions, makeExerciseNotebook, type Notebook } from '../../lib/teaching/exercises';
import { PROJECT_ROOT } from '../../lib/paths';

const code = (src: string) => ({ cell_type: 'code' as const, metadata: {}, source: src, outputs: [], execution_count: 3 });
const nb = (...cells: ReturnType<typeof code>[]): Notebook => ({ cells, metadata: {}, nbformat: 4, nbformat_minor: 5 });

test('regions become stubs that keep the signature; mode line, imports and outputs are rewritten', () => {
  const src = nb(
    code("import * as A from '../dist/lib/algorithms';\nsetExerciseMode(false);"),
    code(
      'function f(x: number): number {\n  // BEGIN EXERCISE double (Eq. 1)\n  const y = 2 * x;\n  return y;\n  // END EXERCISE\n}\nconst g = verify(f);',
    ),
  );
  const { notebook, regions } = makeExerciseNotebook(src, { source: 'toy.ipynb' });
  assert.deepEqual(
    regions.map((r) => [r.name, r.cell, r.solution]),
    [['double (Eq. 1)', 1, ['  const y = 2 * x;', '  return y;']]],
  );
  assert.equal(notebook.cells[0].cell_type, 'markdown');
  assert.match(cellSource(notebook.cells[0]), /exercise version of `notebooks\/toy\.ipynb`.*\*\*double \(Eq\. 1\)\*\*/s);
  assert.equal(cellSource(notebook.cells[1]), "import * as A from '../../dist/lib/algorithms';\nsetExerciseMode(true);");
  const stub = cellSource(notebook.cells[2]);
  assert.match(
    stub,
    /^function f\(x: number\): number \{\n {2}\/\/ TODO double \(Eq\. 1\): .*\n {2}throw new NotImplementedYet\("double \(Eq\. 1\)"\);\n\}\nconst g = verify\(f\);$/,
  );
  assert.doesNotMatch(stub, /2 \* x/);
  assert.equal(notebook.cells[2].execution_count, null);
  const withSolutions = makeExerciseNotebook(src, { withSolutions: true, distPath: '../x/dist' }).notebook;
  assert.equal(
    cellSource(withSolutions.cells[2]),
    'function f(x: number): number {\n  const y = 2 * x;\n  return y;\n}\nconst g = verify(f);',
  );
  assert.match(cellSource(withSolutions.cells[1]), /'\.\.\/x\/dist\/lib\/algorithms'/);
});

test('malformed regions and a missing mode line are refused with the cell named', () => {
  assert.throws(
    () => findRegions(nb(code('// BEGIN EXERCISE a\nx')), 't.ipynb'),
    /t\.ipynb: cell 0: exercise "a" has no \/\/ END EXERCISE/,
  );
  assert.throws(() => findRegions(nb(code('// END EXERCISE')), 't.ipynb'), /cell 0 line 1: \/\/ END EXERCISE without a BEGIN/);
  assert.throws(() => findRegions(nb(code('// BEGIN EXERCISE a\n// BEGIN EXERCISE b')), 't.ipynb'), /exercise "b" starts inside "a"/);
  assert.throws(
    () => findRegions(nb(code('// BEGIN EXERCISE a\n// END EXERCISE'), code('// BEGIN EXERCISE a\n// END EXERCISE'))),
    /two exercises are named "a"/,
  );
  assert.throws(
    () => makeExerciseNotebook(nb(code('// BEGIN EXERCISE a\n// END EXERCISE'))),
    /expected the line "setExerciseMode\(false\);" in exactly one code cell, found 0/,
  );
});

/**
 * Fewer samples in the figure cells that take minutes (Part B's 300-step chains), so the suite
 * stays short: each [from, to] must match exactly once in the copy that is executed, so a changed
 * cell fails here instead of silently running at full size. The exercises and checks are unchanged.
 */
const SMALLER_FIGURES: Record<string, Array<[string, string]>> = {
  partB: [
    ['      16,\n      tSeed,', '      4,\n      tSeed,'],
    ['const labels = Array.from({ length: 40 }, (_, i) => i % 10);', 'const labels = Array.from({ length: 10 }, (_, i) => i % 10);'],
  ],
};

/** Rewrites a notebook file in place with SMALLER_FIGURES[name]. */
function shrinkFigures(file: string, name: string): void {
  const book = JSON.parse(fs.readFileSync(file, 'utf8')) as Notebook;
  for (const [from, to] of SMALLER_FIGURES[name] ?? []) {
    const hits = book.cells.filter((c) => cellSource(c).includes(from));
    assert.equal(hits.length, 1, `${name}: expected one cell with ${from}`);
    const src = cellSource(hits[0]).replace(from, to);
    hits[0].source = src.split(/(?<=\n)/);
  }
  fs.writeFileSync(file, JSON.stringify(book));
}

/** Executes a notebook headless in the tslab kernel; returns every stdout line of its cells. */
function execute(file: string): { ok: boolean; lines: string[]; stderr: string } {
  const out = `${file}.out.ipynb`;
  const res = spawnSync(
    'jupyter',
    [
      'nbconvert',
      '--to',
      'notebook',
      '--execute',
      '--ExecutePreprocessor.kernel_name=tslab',
      '--ExecutePreprocessor.timeout=900',
      '--output',
      path.basename(out),
      file,
    ],
    {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${path.join(PROJECT_ROOT, 'node_modules', '.bin')}:${process.env.PATH}`, PARTA_MODEL: 'mnist' },
      maxBuffer: 64 << 20,
    },
  );
  if (res.status !== 0) return { ok: false, lines: [], stderr: (res.stderr ?? '').split('\n').slice(-25).join('\n') };
  const ran = JSON.parse(fs.readFileSync(out, 'utf8')) as Notebook;
  const lines = ran.cells.flatMap((c) =>
    ((c.outputs ?? []) as Array<{ name?: string; text?: string | string[] }>)
      .filter((o) => o.name === 'stdout')
      .flatMap((o) => (Array.isArray(o.text) ? o.text.join('') : (o.text ?? '')).split('\n')),
  );
  return { ok: true, lines, stderr: '' };
}

for (const name of ['partA', 'partA-flow', 'partB', 'partB-flow']) {
  test(
    `the ${name} exercise notebook runs headless: every stub says "not implemented yet" and later sections still run; with the solutions every check passes`,
    { timeout: 1_800_000 },
    () => {
      const source = path.join(PROJECT_ROOT, 'notebooks', `${name}.ipynb`);
      const dir = path.join(PROJECT_ROOT, 'notebooks', 'exercises', `.test-${name}-${process.pid}`);
      fs.rmSync(dir, { recursive: true, force: true });
      try {
        for (const [sub, flags] of [
          ['stubs', []],
          ['solutions', ['--with-solutions']],
        ] as const) {
          const script = path.join(PROJECT_ROOT, 'dist', 'scripts', 'exercises.js');
          const r = spawnSync(process.execPath, [script, '--out', path.join(dir, sub), ...flags, source], { encoding: 'utf8' });
          assert.equal(r.status, 0, r.stderr);
          shrinkFigures(path.join(dir, sub, `${name}.ipynb`), name);
        }
        const names = findRegions(JSON.parse(fs.readFileSync(source, 'utf8')) as Notebook).map((r) => r.name);
        assert.ok(names.length >= (name === 'partB-flow' ? 4 : 7), `${name} has ${names.length} exercises`);

        const stubs = execute(path.join(dir, 'stubs', `${name}.ipynb`));
        assert.ok(stubs.ok, `the exercise notebook failed:\n${stubs.stderr}`);
        for (const n of names) {
          const said = stubs.lines.some((l) => l.startsWith(`… not implemented yet: ${n} (later cells use `));
          assert.ok(said, `no "not implemented yet" line for ${n}`);
        }
        assert.ok(!stubs.lines.some((l) => l.startsWith('✗')), stubs.lines.filter((l) => l.startsWith('✗')).join('\n'));
        // Checks of algorithms composed from the exercises (now the library's fallbacks) still pass, and the last cell ran
        // (partA-flow: its staff validation checks, "✓ check: …", run on those fallbacks).
        assert.ok(
          stubs.lines.some((l) => /^✓ (SDEdit|inpainting \(§1\.7\.2\)|guided sampling|guided Euler sampling|check: )/.test(l)),
          'composed checks after the stubs',
        );
        assert.ok(
          stubs.lines.some((l) => /^(TF\.js )?tensors alive: \d+/.test(l)),
          'the notebook ran to its last cell',
        );

        const solved = execute(path.join(dir, 'solutions', `${name}.ipynb`));
        assert.ok(solved.ok, `the solved exercise notebook failed:\n${solved.stderr}`);
        for (const n of names)
          assert.ok(
            solved.lines.some((l) => l.startsWith(`✓ ${n}: `)),
            `no ✓ for ${n}:\n${solved.lines.join('\n')}`,
          );
        assert.ok(!solved.lines.some((l) => l.startsWith('✗') || l.startsWith('…')));
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );
}
