/**
 * `npm run train` and its run folder, as child processes on a tiny crafted MNIST (MNIST_DIR):
 * a new run never silently replaces a folder's checkpoint, --resume refuses options that
 * contradict the checkpoint and an --epochs total that leaves nothing to do, and a run killed
 * with SIGKILL again and again always leaves a loadable checkpoint and finishes with the loss
 * history of an uninterrupted run.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { loadTensorFile } from '../../lib/weights/tensorFile';
import { parseCheckpointHeader, parseUNetHeader } from '../../lib/weights/headers';
import { mulberry32 } from '../helpers';

const script = path.resolve(__dirname, '..', '..', 'scripts', 'train.js');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'train-cli-'));

/** An MNIST folder of 16 random 28×28 images per split. */
const mnist = path.join(root, 'mnist');
{
  fs.mkdirSync(mnist);
  const idx = (magic: number, dims: number[], data: Uint8Array) => {
    const h = Buffer.alloc(4 + 4 * dims.length);
    h.writeUInt32BE(magic, 0);
    dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
    return Buffer.concat([h, data]);
  };
  const r = mulberry32(4);
  const N = 16;
  const px = Uint8Array.from({ length: N * 784 }, () => Math.floor(r() * 256));
  const lab = Uint8Array.from({ length: N }, (_, i) => i % 10);
  for (const s of ['train', 't10k']) {
    fs.writeFileSync(path.join(mnist, `${s}-images-idx3-ubyte`), idx(2051, [N, 28, 28], px));
    fs.writeFileSync(path.join(mnist, `${s}-labels-idx1-ubyte`), idx(2049, [N], lab));
  }
}

const env = { ...process.env, DIFFUSION_ENGINE: 'cpu', MNIST_DIR: mnist };
/** 2 epochs of 4 steps (batch 2, 8 images), a checkpoint every step. */
const args = (out: string, ...more: string[]) => [
  '--model',
  'time',
  '--D',
  '2',
  '--batch',
  '2',
  '--images-per-epoch',
  '8',
  '--epochs',
  '2',
  '--checkpoint-every',
  '1',
  '--out',
  out,
  ...more,
];

function train(argv: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [script, ...argv], { encoding: 'utf8', env, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Exit 2 with one line `error: …` matching re, and nothing trained (stdout empty). */
function refused(argv: string[], re: RegExp): void {
  const r = train(argv);
  assert.equal(r.status, 2, `${argv.join(' ')}\n${r.stdout}${r.stderr}`);
  assert.equal(r.stdout, '', 'nothing done');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], re);
}

/** The loss history in a run's final.weights. */
function finalLosses(dir: string): number[] {
  const file = path.join(dir, 'final.weights');
  const h = parseUNetHeader(loadTensorFile(file).meta, file);
  assert.equal(h.kind, 'partb-weights');
  return h.kind === 'partb-weights' ? h.losses : [];
}

const files = (dir: string) => Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f))]));
let reference: number[] = [];

test('a new run into a folder holding a checkpoint is refused unless --resume or --overwrite; the folder stays byte-identical', () => {
  const out = path.join(root, 'run');
  const first = train(args(out));
  assert.equal(first.status, 0, first.stderr);
  reference = finalLosses(out);
  assert.equal(reference.length, 8);
  const before = files(out);
  refused(
    args(out),
    /already holds a checkpoint \(last\.ckpt: time, epoch 2 of 2, step 8\): pass --resume to continue it, --overwrite to start a new run there, or another --out/,
  );
  refused(args(out, '--resume', '--overwrite'), /--resume and --overwrite contradict each other/);
  // --resume with options that contradict the checkpoint: refused, naming the option and its value there.
  const resume = (...more: string[]) => ['--model', 'time', '--resume', '--out', out, '--epochs', '3', ...more];
  refused(
    ['--model', 'class', '--resume', '--out', out, '--epochs', '3'],
    /--model class contradicts .*last\.ckpt, which was trained with model time: drop --model/,
  );
  refused(resume('--D', '4'), /--D 4 contradicts .*last\.ckpt, which was trained with D 2/);
  refused(resume('--batch', '4'), /--batch 4 contradicts .*, which was trained with batch 2/);
  refused(resume('--seed', '5'), /--seed 5 contradicts .*, which was trained with seed 0/);
  refused(resume('--preset', 'reference'), /--preset reference contradicts .*, which was trained with preset cpu/);
  refused(resume('--images-per-epoch', '16'), /--images-per-epoch 16 contradicts .*, which was trained with images-per-epoch 8/);
  refused(resume('--ema-decay', '0.9'), /--ema-decay 0\.9 contradicts .*, which was trained with ema-decay 0/);
  refused(resume('--lr-schedule', 'constant'), /--lr-schedule constant contradicts .*, which was trained with lr-schedule exponential/);
  refused(resume('--warmup-steps', '10'), /--warmup-steps 10 contradicts .*, which was trained with warmup-steps 0/);
  // Nothing left to train: said, exit nonzero (it used to finish silently).
  refused(
    ['--model', 'time', '--resume', '--out', out, '--epochs', '1'],
    /has already done 2 epochs, so --epochs 1 leaves nothing to train: pass --epochs 3 or more/,
  );
  refused(
    ['--model', 'time', '--resume', '--out', out],
    /has already done 2 epochs \(final\.weights is written\), so --epochs 2 leaves nothing to train/,
  );
  assert.deepEqual(files(out), before, 'the folder changed');
  // The checkpoint's own values are no contradiction; --overwrite starts afresh.
  const more = train(resume('--D', '2', '--seed', '0', '--preset', 'cpu'));
  assert.equal(more.status, 0, more.stderr);
  assert.equal(parseCheckpointHeader(loadTensorFile(path.join(out, 'last.ckpt')).meta, 'ckpt').state.epoch, 3);
  const over = train(args(out, '--overwrite'));
  assert.equal(over.status, 0, over.stderr);
  assert.equal(parseCheckpointHeader(loadTensorFile(path.join(out, 'last.ckpt')).meta, 'ckpt').state.step, 8);
});

test('kill -9 during training, a few times: the checkpoint always loads, and the finished run has the uninterrupted loss history', async () => {
  assert.equal(reference.length, 8, 'needs the first test');
  const out = path.join(root, 'killed');
  const r = mulberry32(9);
  let kills = 0;
  for (let round = 0; round < 4 && kills < 3; round++) {
    const resume = fs.existsSync(path.join(out, 'last.ckpt'));
    const child = spawn(process.execPath, [script, ...args(out, ...(resume ? ['--resume'] : []))], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (d) => (text += d));
    child.stderr.on('data', (d) => (text += d));
    const exited = new Promise<number | null>((ok) => child.on('exit', (code) => ok(code)));
    // Once it trains (the line before its first step), kill it a random fraction of the run later.
    const started = await new Promise<boolean>((ok) => {
      const t = setInterval(() => {
        if (/steps\/epoch/.test(text)) {
          clearInterval(t);
          ok(true);
        }
      }, 5);
      void exited.then(() => {
        clearInterval(t);
        ok(false);
      });
    });
    if (started) {
      await new Promise((ok) => setTimeout(ok, 100 + r() * 800));
      if (child.kill('SIGKILL')) kills++;
    }
    const code = await exited;
    if (!started || code === 0) break; // it finished first
    const ck = path.join(out, 'last.ckpt');
    if (fs.existsSync(ck)) assert.ok(parseCheckpointHeader(loadTensorFile(ck).meta, ck).state.step > 0, 'the checkpoint loads');
    for (const f of fs.readdirSync(out).filter((x) => x.endsWith('.weights')))
      assert.ok(loadTensorFile(path.join(out, f)).tensors.size > 0, f);
  }
  assert.ok(kills >= 1, 'killed at least once');
  // Finish it: resume (or start, if no checkpoint was written yet) until done.
  const last = train(args(out, ...(fs.existsSync(path.join(out, 'last.ckpt')) ? ['--resume'] : [])));
  // A kill that landed after final.weights leaves nothing to train: said so, exit 2.
  if (last.status !== 0) assert.match(last.stderr, /nothing to train/, last.stderr);
  const losses = finalLosses(out);
  assert.equal(losses.length, reference.length);
  losses.forEach((l, i) => assert.ok(Math.abs(l - reference[i]) < 1e-5, `step ${i + 1}: ${l} vs ${reference[i]}`));
  for (const e of [1, 2]) assert.ok(fs.existsSync(path.join(out, `epoch-${e}.weights`)), `epoch-${e}.weights`);
  // The finishing run removed what killed writes left behind.
  if (last.status === 0)
    assert.deepEqual(
      fs.readdirSync(out).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary file left',
    );
  console.log(`# ${kills} kills`);
});

test('flow models: train writes velocity-trained weights; reflow makes pairs from them and resumes; sample integrates them; wrong pairings are refused', () => {
  const out = path.join(root, 'flow');
  const flowArgs = (dir: string, ...more: string[]) => args(dir, ...more).map((a) => (a === 'time' ? 'flow-time' : a));
  const r = train(flowArgs(out));
  assert.equal(r.status, 0, r.stderr);
  const h = parseUNetHeader(loadTensorFile(path.join(out, 'final.weights')).meta, 'final');
  assert.equal(h.config.model, 'time');
  assert.equal(h.config.objective, 'flow');
  assert.equal(h.config.emaDecay, 0.999, 'the flow preset keeps an EMA');
  refused(
    ['--model', 'time', '--reflow-from', path.join(out, 'final.weights'), '--out', path.join(root, 'x')],
    /--reflow-from needs a flow model/,
  );
  refused(['--model', 'flow-time', '--resume', '--out', out, '--epochs', '3', '--model', 'time'], /--model time contradicts .*flow-time/);
  // One reflow round: 64 pairs of 2 Euler steps, 1 epoch (then resumed for a second), from a teacher's weights.
  const reflow = (teacher: string, dir: string) =>
    train([
      '--model',
      'flow-time',
      '--reflow-from',
      teacher,
      '--pairs',
      '64',
      '--pair-steps',
      '2',
      '--batch',
      '32',
      '--epochs',
      '1',
      '--out',
      dir,
    ]);
  const rf = path.join(root, 'reflow');
  const pairsRun = reflow(path.join(out, 'final.weights'), rf);
  assert.equal(pairsRun.status, 0, pairsRun.stderr);
  assert.ok(fs.existsSync(path.join(rf, 'pairs.tensors')));
  const rh = parseUNetHeader(loadTensorFile(path.join(rf, 'final.weights')).meta, 'reflow');
  assert.equal(rh.config.reflowPairs, 'pairs.tensors');
  assert.equal(rh.config.imagesPerEpoch, 64);
  assert.equal(rh.config.timeConditioning, undefined, 'an additive teacher gives an additive student');
  // A course teacher (multiplicative time conditioning): its student keeps the conditioning, so its weights load.
  const course = path.join(root, 'flow-course');
  const c = train([
    '--model',
    'flow-time',
    '--preset',
    'course',
    '--D',
    '2',
    '--batch',
    '2',
    '--images-per-epoch',
    '4',
    '--epochs',
    '1',
    '--out',
    course,
  ]);
  assert.equal(c.status, 0, c.stderr);
  assert.equal(
    parseUNetHeader(loadTensorFile(path.join(course, 'final.weights')).meta, 'course').config.timeConditioning,
    'multiplicative',
  );
  const rfc = path.join(root, 'reflow-course');
  const cr = reflow(path.join(course, 'final.weights'), rfc);
  assert.equal(cr.status, 0, cr.stderr);
  assert.equal(parseUNetHeader(loadTensorFile(path.join(rfc, 'final.weights')).meta, 'reflow').config.timeConditioning, 'multiplicative');
  const more = train(['--model', 'flow-time', '--resume', '--out', rf, '--epochs', '2']);
  assert.equal(more.status, 0, more.stderr);
  assert.equal(finalLosses(rf).length, 4, '2 epochs of 2 steps on the same pairs');
  // Sampling: a flow model with --steps; a DDPM's --steps must divide its T; a model/weights mismatch is named.
  const sampleScript = path.resolve(__dirname, '..', '..', 'scripts', 'sample.js');
  const sample = (...a: string[]) => spawnSync(process.execPath, [sampleScript, ...a], { encoding: 'utf8', env, timeout: 120_000 });
  const dir = path.join(root, 'samples');
  const s = sample('--model', 'flow-time', '--weights', path.join(out, 'final.weights'), '--steps', '3', '--count', '2', '--out', dir);
  assert.equal(s.status, 0, s.stderr);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['grid.png', 'sample-000.png', 'sample-001.png']);
  const ddpm = sample('--model', 'time', '--steps', '7', '--out', dir);
  assert.equal(ddpm.status, 2);
  assert.match(ddpm.stderr, /--steps 7: DDPM steps must divide T = 300/);
  const wrong = sample('--model', 'time', '--weights', path.join(out, 'final.weights'), '--out', dir);
  assert.notEqual(wrong.status, 0);
  assert.match(wrong.stderr, /holds the flow-time model, not time/);
});
