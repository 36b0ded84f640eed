/**
 * Command lines (lib/cli.ts): the parser on its own, then every script and benchmark as a child
 * process from dist/: bad options fail fast with one line naming the option (exit 2, before the
 * engine starts or anything is written), and --help exits 0 listing every option.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CliError, exitCodeFor, helpText, parseCommandLine, seedOption, type CommandSpec } from '../lib/cli';

const DIST = path.resolve(__dirname, '..');

const SPEC = {
  model: { type: 'string', choices: ['class', 'time'], default: 'class', help: 'which model' },
  out: { type: 'string', valueName: 'DIR', help: 'output folder', defaultHelp: 'runs/<model>' },
  resume: { type: 'boolean', help: 'continue' },
  seed: seedOption(0),
  guidance: { type: 'number', min: 0, max: 100, default: 5, help: 'CFG scale' },
  'images-per-epoch': { type: 'number', integer: true, min: 1, help: 'images per epoch' },
  steps: { type: 'number', integer: true, min: 1, default: 5, help: 'timed steps' },
  shift: { type: 'number', help: 'any number' },
  D: { type: 'number', list: true, integer: true, min: 1, default: [32, 64], help: 'widths' },
  models: { type: 'string', list: true, choices: ['class', 'time', 'denoiser'], default: ['class'], help: 'models' },
  calls: { type: 'number', integer: true, min: 1, bare: 25, help: 'biggest calls' },
  even: {
    type: 'number',
    integer: true,
    help: 'an even number',
    check: (n: number) => (n % 2 ? `--even must be even, got ${n}` : undefined),
  },
} as const satisfies CommandSpec;

const parse = (...argv: string[]) => parseCommandLine(argv, SPEC, 'usage: x [options]').values;
const fails = (argv: string[], re: RegExp) =>
  assert.throws(
    () => parse(...argv),
    (e: Error) => {
      assert.ok(e instanceof CliError, `a CliError, got ${e}`);
      assert.match(e.message, re);
      assert.doesNotMatch(e.message, /\n/, 'one line');
      return true;
    },
  );

test('parseCommandLine: defaults, types, inline values with =, last occurrence wins', () => {
  const d = parse();
  assert.deepEqual(d, {
    model: 'class',
    out: undefined,
    resume: false,
    seed: 0,
    guidance: 5,
    'images-per-epoch': undefined,
    steps: 5,
    shift: undefined,
    D: [32, 64],
    models: ['class'],
    calls: undefined,
    even: undefined,
  });
  // The value is everything after the first '=' (the old parser cut it at the second).
  assert.equal(parse('--out=/x/a=b').out, '/x/a=b');
  assert.equal(parse('--out', '/x/a=b').out, '/x/a=b');
  const v = parse('--model', 'time', '--seed', '7', '--guidance=0', '--resume', '--D', '16,128', '--models', 'time,denoiser');
  assert.equal(v.model, 'time');
  assert.equal(v.seed, 7);
  assert.equal(v.guidance, 0);
  assert.equal(v.resume, true);
  assert.deepEqual(v.D, [16, 128]);
  assert.deepEqual(v.models, ['time', 'denoiser']);
  assert.equal(parse('--seed', '1', '--seed', '2').seed, 2);
  assert.equal(parse('--resume=false').resume, false);
  assert.equal(parse('--shift', '-1.5').shift, -1.5, 'a negative number is a value, not a flag');
  assert.equal(parse('--shift=-2').shift, -2);
  assert.equal(parse('--seed', '1e3').seed, 1000);
  assert.equal(parse('--even', '4').even, 4);
  // Which options were given (not defaulted): --resume compares only those with its checkpoint.
  assert.deepEqual([...parseCommandLine(['--seed', '0', '--resume=false'], SPEC, 'u').given].sort(), ['resume', 'seed']);
  assert.deepEqual([...parseCommandLine([], SPEC, 'u').given], []);
});

test("parseCommandLine: a flag is never taken as the previous option's value", () => {
  // `--out --resume` used to train into ./--resume.
  fails(['--out', '--resume'], /^--out needs a value \(got the flag --resume\)/);
  fails(['--out', '-h'], /^--out needs a value \(got the flag -h\)/);
  fails(['--out'], /^--out needs a value$/);
  fails(['--out='], /^--out needs a value$/);
  fails(['--steps', '--resume'], /^--steps needs a value \(got the flag --resume\)/);
  assert.equal(parse('--out=--x').out, '--x', 'a value that starts with -- is fine written inline');
  assert.equal(parse('--out', '-').out, '-');
});

test('parseCommandLine: numbers are finite, integers where counted, within min and max', () => {
  fails(['--seed', '0.5'], /^--seed must be an integer, got 0\.5$/);
  fails(['--seed', '-1'], /^--seed must be between 0 and 2147483647, got -1$/);
  fails(['--seed', 'abc'], /^--seed must be an integer, got "abc"$/);
  fails(['--guidance', '1e30'], /^--guidance must be between 0 and 100, got 1e30$/);
  fails(['--guidance', '-0.1'], /^--guidance must be between 0 and 100, got -0\.1$/);
  fails(['--guidance', 'Infinity'], /^--guidance must be a number, got "Infinity"$/);
  fails(['--guidance', '1e400'], /^--guidance must be a finite number, got 1e400$/);
  fails(['--guidance', 'NaN'], /^--guidance must be a number/);
  fails(['--guidance', '0x10'], /^--guidance must be a number/);
  fails(['--guidance', ''], /^--guidance needs a value$/);
  fails(['--images-per-epoch', '0'], /^--images-per-epoch must be at least 1, got 0$/);
  fails(['--images-per-epoch', '-64'], /^--images-per-epoch must be at least 1, got -64$/);
  fails(['--images-per-epoch', '100.5'], /^--images-per-epoch must be an integer, got 100\.5$/);
  fails(['--steps', '0'], /^--steps must be at least 1, got 0$/);
  fails(['--D', '32,x'], /^--D must be an integer, got "x"$/);
  fails(['--D', '32,0'], /^--D must be at least 1, got 0$/);
  fails(['--D', '32,,64'], /^--D needs comma-separated values/);
  fails(['--even', '3'], /^--even must be even, got 3$/);
});

test('parseCommandLine: choices, booleans, unknown options, positionals, required options', () => {
  fails(['--model', 'unet'], /^--model must be one of class, time, got "unet"$/);
  fails(['--models', 'class,unet9'], /^--models must be one of class, time, denoiser, got "unet9"$/);
  fails(['--resume=yes'], /^--resume takes no value/);
  fails(['--foo'], /^unknown option --foo; options are --model --out --resume --seed .* --help$/);
  fails(['--foo=1'], /^unknown option --foo;/);
  fails(['-x'], /^unknown option -x;/);
  fails(['stray'], /^unexpected argument "stray"; options are --model/);
  fails(['--', 'stray'], /^unexpected argument "stray"/);
  const spec = { full: { type: 'boolean', help: 'full' }, dir: { type: 'string', required: true, help: 'folder' } } as const;
  const p = parseCommandLine(['check', '--dir', 'd', 'a', '--full', '--', '--b'], spec, 'u', { positionals: { name: 'ARG', max: 3 } });
  assert.deepEqual(p.positionals, ['check', 'a', '--b']);
  assert.deepEqual(p.values, { full: true, dir: 'd' });
  assert.throws(
    () => parseCommandLine(['a', 'b', '--dir', 'd'], spec, 'u', { positionals: { name: 'ARG', max: 1 } }),
    /^CliError: too many arguments \(a b\): at most 1 ARG$/,
  );
  assert.throws(() => parseCommandLine([], spec, 'u'), /^CliError: --dir is required; see --help$/);
  // A bad value is reported before a missing required option.
  assert.throws(() => parseCommandLine(['--full=maybe'], spec, 'u'), /--full takes no value/);
});

test('parseCommandLine: an option whose value is optional (bare)', () => {
  assert.equal(parse('--calls').calls, 25);
  assert.equal(parse('--calls', '5').calls, 5);
  assert.equal(parse('--calls=7').calls, 7);
  const v = parse('--calls', '--steps', '3');
  assert.equal(v.calls, 25);
  assert.equal(v.steps, 3);
  fails(['--calls', '0'], /^--calls must be at least 1, got 0$/);
});

test('helpText: the usage line, then one line per option with its constraint and default', () => {
  const h = helpText(SPEC, 'usage: x [options]');
  const lines = h.split('\n');
  assert.equal(lines[0], 'usage: x [options]');
  for (const name of Object.keys(SPEC))
    assert.equal(
      lines.filter((l) => l.trimStart().startsWith(`--${name} `) || l.trim() === `--${name}`).length,
      1,
      `one line for --${name}`,
    );
  assert.match(h, /--model class\|time +which model \(default: class\)/);
  assert.match(h, /--out DIR +output folder \(default: runs\/<model>\)/);
  assert.match(h, /--resume +continue \(default: off\)/);
  assert.match(h, /--guidance N +CFG scale \(0 ≤ x ≤ 100; default: 5\)/);
  assert.match(h, /--seed N +random seed \(integer 0\.\.2147483647; default: 0\)/);
  assert.match(h, /--D N,N,… +widths \(integer ≥ 1, comma-separated; default: 32,64\)/);
  assert.match(h, /--calls \[N\] +biggest calls \(integer ≥ 1; bare: 25; default: none\)/);
  assert.match(h, /-h, --help +print this help and exit/);
  assert.equal(exitCodeFor(new CliError('x')), 2);
  assert.equal(exitCodeFor(new Error('x')), 1);
  assert.throws(() => parseCommandLine([], { help: { type: 'boolean', help: 'h' } }, 'u'), /--help is built in/);
});

// ---- the commands, as child processes ----

function run(script: string, args: string[]): { status: number | null; stdout: string; stderr: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [path.join(DIST, script), ...args], {
    encoding: 'utf8',
    timeout: 60_000, // a validation that failed to stop it would train or benchmark for much longer
    env: { ...process.env, DIFFUSION_ENGINE: 'cpu' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

/** Exit 2, one line `error: …` matching re on stderr, nothing on stdout (the engine line comes first in any work), fast. */
function refused(script: string, args: string[], re: RegExp): void {
  const r = run(script, args);
  const what = `${script} ${args.join(' ')}`;
  assert.equal(r.status, 2, `${what}: exit status\n${r.stdout}${r.stderr}`);
  assert.equal(r.stdout, '', `${what}: no work done (stdout)`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `${what}: one line, got\n${r.stderr}`);
  assert.match(lines[0], /^error: /, what);
  assert.match(lines[0], re, what);
  assert.ok(r.ms < 15_000, `${what}: refused before any work, took ${r.ms} ms`);
}

test('sample: --guidance 1e30 (and other bad values) refused before anything is written', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-sample-'));
  const out = path.join(dir, 'out');
  const base = ['--model', 'class', '--digit', '7', '--count', '2', '--out', out];
  refused('scripts/sample.js', [...base, '--guidance', '1e30'], /--guidance must be between 0 and 100, got 1e30/);
  refused('scripts/sample.js', [...base, '--seed', '0.5'], /--seed must be an integer, got 0\.5/);
  refused('scripts/sample.js', [...base, '--digit', '10'], /--digit must be between 0 and 9, got 10/);
  refused('scripts/sample.js', [...base, '--count', '0'], /--count must be between 1 and 1024, got 0/);
  refused('scripts/sample.js', [...base, '--model', 'unet'], /--model must be one of class, time, flow-class, flow-time, got "unet"/);
  refused('scripts/sample.js', [...base, '--engine', 'tpu'], /--engine must be one of auto, node, node-gpu, webgpu, wasm, cpu, got "tpu"/);
  refused('scripts/sample.js', ['--model', 'class', '--count', '2', '--out', out], /--model class needs --digit/);
  refused('scripts/sample.js', ['--out', '--gif'], /--out needs a value \(got the flag --gif\)/);
  assert.equal(fs.existsSync(out), false, 'nothing written');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('train: --images-per-epoch 0, -64, 100.5 or below the batch, and --out --resume, refused before training', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-train-'));
  const out = path.join(dir, 'run');
  const base = ['--model', 'class', '--preset', 'cpu', '--out', out];
  refused('scripts/train.js', [...base, '--images-per-epoch', '0'], /--images-per-epoch must be at least 1, got 0/);
  refused('scripts/train.js', [...base, '--images-per-epoch', '-64'], /--images-per-epoch must be at least 1, got -64/);
  refused('scripts/train.js', [...base, '--images-per-epoch', '100.5'], /--images-per-epoch must be an integer, got 100\.5/);
  refused('scripts/train.js', [...base, '--images-per-epoch', '32'], /--images-per-epoch must be at least the batch \(64\), got 32/);
  refused(
    'scripts/train.js',
    [...base, '--batch', '16', '--images-per-epoch', '8'],
    /--images-per-epoch must be at least the batch \(16\), got 8/,
  );
  refused('scripts/train.js', ['--model', 'class', '--out', '--resume'], /--out needs a value \(got the flag --resume\)/);
  refused('scripts/train.js', [...base, '--seed', '0.5'], /--seed must be an integer, got 0\.5/);
  refused('scripts/train.js', [...base, '--epochs', '0'], /--epochs must be at least 1, got 0/);
  refused('scripts/train.js', [...base, '--preset', 'gpu'], /--preset must be one of cpu, reference, course, got "gpu"/);
  refused(
    'scripts/train.js',
    ['--preset', 'cpu'],
    /--model is required \(denoiser, denoiser-pure-noise, time, class, flow-time, flow-class, classifier\)/,
  );
  refused(
    'scripts/train.js',
    ['--model', 'classifier', '--epochs', '2', '--start-epoch', '2', '--out', path.join(dir, 'c.weights')],
    /--start-epoch must be below --epochs \(2\), got 2/,
  );
  refused('scripts/train.js', [...base, '--foo'], /unknown option --foo; options are --model --preset --epochs --resume --overwrite --out/);
  assert.equal(fs.existsSync(out), false, 'nothing written');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('bench: --steps 0 and unknown flags refused (no NaN table)', () => {
  refused('bench/bench.js', ['--steps', '0', '--no-torch'], /--steps must be at least 1, got 0/);
  refused(
    'bench/bench.js',
    ['--bogus'],
    /unknown option --bogus; options are --D --batch --steps --warmup --torch-variants --rounds --debian-torch --no-torch --help/,
  );
  refused(
    'bench/bench.js',
    ['--torch-variants', 'eager,jit'],
    /--torch-variants must be one of eager, channels_last, compile, bf16, got "jit"/,
  );
  refused('bench/bench.js', ['--D', '32,abc'], /--D must be an integer, got "abc"/);
  refused('bench/bench.js', ['--rounds', '0', '--no-torch'], /--rounds must be at least 1, got 0/);
  refused('bench/batchsize.js', ['--batches', '0,64'], /--batches must be at least 1, got 0/);
  refused('bench/profile.js', ['--mode', 'both'], /--mode must be one of train, infer, got "both"/);
});

test('bench --rounds 2: every engine measured in each round, one row per engine and D in the JSON', () => {
  const r = run('bench/bench.js', ['--no-torch', '--D', '4,6', '--batch', '2', '--steps', '1', '--warmup', '0', '--rounds', '2']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal((r.stdout.match(/^round \d of 2$/gm) ?? []).length, 2);
  const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as { rounds: number; rows: Array<{ D: number; train_img_s: number }> };
  assert.equal(result.rounds, 2);
  const engines = (r.stdout.match(/^tfjs .*: D=4 /gm) ?? []).length / 2; // measured lines: engines × rounds
  assert.ok(engines >= 1 && Number.isInteger(engines));
  assert.deepEqual(
    result.rows.map((row) => row.D),
    [...Array<number>(engines).fill(4), ...Array<number>(engines).fill(6)],
  );
  assert.ok(result.rows.every((row) => row.train_img_s > 0));
});

test('the other commands: bad options refused with one line, exit 2', () => {
  refused(
    'scripts/partb-quality.js',
    ['--models', 'class,unet'],
    /--models must be one of class, time, denoiser, denoiser-pure-noise, flow-time, flow-class, flow-time-reflow, got "unet"/,
  );
  refused('scripts/partb-quality.js', ['--per-digit', '2.5'], /--per-digit must be an integer, got 2\.5/);
  refused('scripts/sample.js', ['--model', 'class', '--precision', 'fp16'], /--precision must be one of fp32, bf16, got "fp16"/);
  refused('scripts/weights.js', [], /missing command: use if-i-l, .*embeddings, check/);
  refused('scripts/weights.js', ['if-x'], /unknown command "if-x"/);
  refused('scripts/weights.js', ['check'], /check needs a folder or file/);
  refused('scripts/weights.js', ['check', 'x', '--bogus'], /unknown option --bogus; options are --dir --full --help/);
  refused('scripts/makePartAData.js', ['--out'], /--out needs a value/);
  refused('scripts/figures.js', ['--html'], /unknown option --html; options are --out --executed --no-html --help/);
  refused('scripts/figures.js', ['notebooks/none.ipynb'], /no such notebook .*none\.ipynb/);
  refused('scripts/gpu/check.js', ['--models', 'unet9'], /unknown model "unet9" in --models: use denoiser,time,class/);
  refused('scripts/gpu/check.js', ['--warmup', '0'], /--warmup must be at least 1, got 0/);
  refused('scripts/gpu/check.js', ['--budget', '-1'], /--budget must be at least 0, got -1/);
});

test('--help on every command: exit 0, the usage line and every option', () => {
  const commands: Record<string, string[]> = {
    'scripts/train.js': [
      'model',
      'preset',
      'epochs',
      'resume',
      'overwrite',
      'out',
      'seed',
      'checkpoint-every',
      'D',
      'batch',
      'images-per-epoch',
      'reflow-from',
      'pairs',
      'pair-steps',
      'ema-decay',
      'lr',
      'lr-schedule',
      'warmup-steps',
      'engine',
      'precision',
      'init',
      'start-epoch',
    ],
    'scripts/sample.js': ['model', 'steps', 'digit', 'count', 'guidance', 'seed', 'out', 'weights', 'gif', 'engine', 'precision'],
    'scripts/partb-quality.js': [
      'ship',
      'ship-only',
      'models',
      'steps',
      'per-digit',
      'guidance',
      'count',
      'variance',
      'clip',
      'weights',
      'no-write',
      'test-images',
      'seed',
    ],
    'scripts/weights.js': ['dir', 'full'],
    'scripts/makePartAData.js': ['out'],
    'scripts/figures.js': ['out', 'executed', 'no-html'],
    'scripts/gpu/check.js': [
      'engine',
      'preset',
      'models',
      'steps',
      'warmup',
      'budget',
      'batch',
      'grid-steps',
      'sample-steps',
      'out',
      'mnist',
      'probe',
      'summary',
    ],
    'bench/bench.js': ['D', 'batch', 'steps', 'warmup', 'torch-variants', 'rounds', 'debian-torch', 'no-torch'],
    'bench/batchsize.js': ['D', 'batches', 'rounds'],
    'bench/profile.js': ['D', 'batch', 'model', 'mode', 'calls'],
  };
  for (const [script, options] of Object.entries(commands)) {
    for (const flag of ['--help', '-h']) {
      const r = run(script, flag === '--help' ? ['--bogus', flag] : [flag]);
      assert.equal(r.status, 0, `${script} ${flag}: ${r.stderr}`);
      assert.match(r.stdout, /^usage: /, script);
      for (const o of options) assert.match(r.stdout, new RegExp(`^  --${o}( |$)`, 'm'), `${script} --help lists --${o}`);
      const listed = r.stdout.split('\n').filter((l) => /^ {2}--/.test(l)).length;
      assert.equal(listed, options.length, `${script}: exactly its options`);
    }
  }
});
