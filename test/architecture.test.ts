/**
 * The layout rules of lib/ (README "Layout"): imports flow one way through the rooms, every room
 * has a place in that order, lib/ never reaches into scripts/, bench/, test/ or notebooks/, tests
 * import no script code, and environment variables are read only through lib/config.ts.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

/**
 * The order of the rooms: a file may import from its own rank or a lower one, never a higher one.
 * image/data -> tensor -> schedulers -> models -> guidance/algorithms/training -> display/teaching/gpu -> report.
 */
const RANK: Record<string, number> = {
  'config.ts': 0,
  'paths.ts': 0,
  'cli.ts': 0,
  'files.ts': 0,
  engine: 1,
  image: 1,
  data: 1,
  tensor: 2,
  weights: 3,
  schedulers: 3,
  models: 4,
  guidance: 5,
  algorithms: 6,
  training: 6,
  evaluation: 6,
  display: 7,
  gpu: 7,
  teaching: 7,
  report: 8,
};

function walk(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

/** Relative module specifiers of a source file (static imports and exports, import(), require()). */
export function relativeImports(src: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)(['"])(\.{1,2}\/[^'"]+)\1/gm;
  for (let m = re.exec(src); m; m = re.exec(src)) out.push(m[2]);
  return out;
}

/** The room of a file under lib/ ('engine', 'config.ts', ...). */
function roomOf(file: string): string {
  const rel = path.relative(path.join(root, 'lib'), file).split(path.sep);
  return rel.length === 1 ? rel[0] : rel[0];
}

/** Resolves a relative specifier from `file` to a project path (without extension). */
function resolve(file: string, spec: string): string {
  return path.resolve(path.dirname(file), spec.replace(/\.js$/, ''));
}

const libFiles = walk(path.join(root, 'lib'));

test('every room of lib/ has a place in the import order', () => {
  const rooms = new Set(libFiles.map(roomOf));
  const missing = [...rooms].filter((r) => !(r in RANK) && !r.endsWith('.d.ts'));
  assert.deepEqual(missing, [], `rooms without a rank: ${missing.join(', ')} (add them to RANK and to the README layout)`);
});

test('imports in lib/ run one way: never from a higher room, never out of lib/', () => {
  const bad: string[] = [];
  for (const f of libFiles) {
    const from = roomOf(f);
    for (const spec of relativeImports(fs.readFileSync(f, 'utf8'))) {
      const target = resolve(f, spec);
      const relToLib = path.relative(path.join(root, 'lib'), target);
      if (relToLib.startsWith('..')) {
        bad.push(`${path.relative(root, f)} imports ${spec}: lib/ must not import outside lib/`);
        continue;
      }
      const to = relToLib.split(path.sep).length === 1 ? `${relToLib}.ts` : relToLib.split(path.sep)[0];
      if (RANK[to] === undefined || RANK[from] === undefined) continue; // reported by the test above
      if (RANK[to] > RANK[from])
        bad.push(`${path.relative(root, f)} (${from}, rank ${RANK[from]}) imports ${spec} (${to}, rank ${RANK[to]})`);
    }
  }
  assert.deepEqual(bad, [], `imports against the direction:\n  ${bad.join('\n  ')}`);
});

test('the direction check catches an import that runs back up', () => {
  // A planted arrow: a scheduler importing a model would be reported.
  const fake = path.join(root, 'lib', 'schedulers', 'planted.ts');
  const spec = relativeImports("import { UNet } from '../models/unet';\n")[0];
  const to = path.relative(path.join(root, 'lib'), resolve(fake, spec)).split(path.sep)[0];
  assert.equal(to, 'models');
  assert.ok(RANK[to] > RANK[roomOf(fake)]);
  assert.deepEqual(relativeImports("const m = await import('../models/if/load.js');\nexport * from './x';"), [
    '../models/if/load.js',
    './x',
  ]);
});

test('tests, scripts and benchmarks import no code from scripts/ (shared code lives in lib/)', () => {
  const bad: string[] = [];
  for (const dir of ['test', 'bench', 'notebooks/support']) {
    for (const f of walk(path.join(root, dir))) {
      for (const spec of relativeImports(fs.readFileSync(f, 'utf8'))) {
        if (path.relative(root, resolve(f, spec)).startsWith(`scripts${path.sep}`)) bad.push(`${path.relative(root, f)} imports ${spec}`);
      }
    }
  }
  assert.deepEqual(bad, []);
});

test('environment variables are read only through lib/config.ts (its table lists them all)', () => {
  const bad: string[] = [];
  const files = ['lib', 'scripts', 'bench', 'notebooks/support'].flatMap((d) => walk(path.join(root, d)));
  for (const f of files) {
    if (f === path.join(root, 'lib', 'config.ts')) continue;
    fs.readFileSync(f, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        // Passing the whole environment (and PATH) on to a child process is not reading a setting.
        const uses = line.match(/process\.env(\.[A-Z_]+|\[)?/g) ?? [];
        for (const u of uses)
          if (u !== 'process.env' && u !== 'process.env.PATH') bad.push(`${path.relative(root, f)}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(bad, [], `read these through setting() and list them in lib/config.ts:\n  ${bad.join('\n  ')}`);
});
