/**
 * `npm run bench`: training and inference images/s of the Part B class-conditioned UNet on the
 * chosen engine and, in the same run, of the same network in PyTorch 2.13 (bench/torch_unet.py,
 * installed on first use into .venv/bench-torch by scripts/pip-venv.sh): eager, channels_last and
 * torch.compile in fp32, and bf16 autocast where the CPU has bf16. Every row is compared with
 * PyTorch's best fp32 variant at its D and with its bf16 autocast. Warm-up excluded, median of
 * several steps; with --rounds N, every engine N times in turn (D by D, ours then PyTorch's), each
 * row's img/s the median of the rounds and each ratio the median of the rounds' ratios. When
 * the oneDNN addon is loaded, one row per engine variant: without it (lever native off) and with it.
 *
 * Options: see USAGE (--help). Environment: DIFFUSION_ENGINE / DIFFUSION_THREADS choose the engine (see README).
 * The last line printed is one JSON object (the machine-readable result), every row in it.
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, withLevers } from '../lib/engine';
import { setNativePrecision } from '../lib/engine/native';
import { median, unetBench } from './common';
import { CliError, exitCodeFor, parseCommandLine } from '../lib/cli';
import { projectPath } from '../lib/paths';

interface Row {
  /** the engine variant, e.g. 'wasm' or 'wasm + oneDNN 2.6.3' */
  engine: string;
  D: number;
  batch: number;
  train_img_s: number;
  infer_img_s: number;
}

/** One PyTorch variant's row (bench/torch_unet.py). */
interface TorchRow {
  /** e.g. 'PyTorch 2.13.0 compile' */
  engine: string;
  version: string;
  variant: 'eager' | 'channels_last' | 'compile' | 'bf16';
  D: number;
  train_img_s: number;
  infer_img_s: number;
}

/** The PyTorch the bench compares with, installed into its own virtual environment on first use. */
const TORCH_REQUIREMENTS = ['torch==2.13.0', 'numpy==2.3.5'];
const TORCH_VENV = projectPath('.venv', 'bench-torch');
const TORCH_VARIANTS = ['eager', 'channels_last', 'compile', 'bf16'] as const;

/** Seconds per call of fn: warm-up calls excluded, median of `steps` timed calls. */
function timeMedian(fn: () => void, warmup: number, steps: number): number {
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    fn();
    ts.push((performance.now() - t0) / 1000);
  }
  return median(ts);
}

function benchTfjs(engine: string, D: number, batch: number, warmup: number, steps: number): Row {
  const b = unetBench('class', D, batch); // its first step builds cached tensors (schedule tables)
  const before = tf.memory().numTensors;
  // One full training step: noise draw, forward process, UNet forward, loss, backward, Adam.
  const trainS = timeMedian(() => b.train(), warmup, steps);
  const inferS = timeMedian(() => b.infer(), warmup, steps);
  if (tf.memory().numTensors !== before)
    console.warn(`warning: tensor count changed during the benchmark (${before} → ${tf.memory().numTensors})`);
  b.dispose();
  return { engine, D, batch, train_img_s: batch / trainS, infer_img_s: batch / inferS };
}

/**
 * Runs bench/torch_unet.py under `python` for every D and variant; returns a row per result (a
 * variant the CPU cannot run, bf16 without AVX512-BF16/AMX, is reported and left out).
 */
function benchTorch(
  python: string,
  variants: readonly string[],
  Ds: number[],
  batch: number,
  warmup: number,
  steps: number,
  threads: number,
): TorchRow[] {
  const probe = spawnSync(python, ['-c', 'import torch; print(torch.__version__.split("+")[0])'], { encoding: 'utf8' });
  if (probe.status !== 0) throw new Error(`${python} cannot import torch: ${probe.stderr.split('\n').filter(Boolean).pop()}`);
  const version = probe.stdout.trim();
  const script = projectPath('bench', 'torch_unet.py');
  const r = spawnSync(
    python,
    [
      script,
      JSON.stringify({
        D: Ds,
        batch,
        warmup,
        steps,
        threads,
        variants,
        inductor_cache: python.startsWith(TORCH_VENV) ? path.join(TORCH_VENV, 'inductor-cache') : undefined,
      }),
    ],
    {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    },
  );
  if (r.status !== 0) throw new Error(`PyTorch ${version} failed: ${r.stderr.split('\n').filter(Boolean).pop()}`);
  const rows: TorchRow[] = [];
  for (const line of r.stdout.split('\n').filter((l) => l.startsWith('{'))) {
    const o = JSON.parse(line) as Omit<TorchRow, 'engine' | 'version'> & { skipped?: string };
    if (o.skipped) {
      console.log(`PyTorch ${version} ${o.variant}: skipped (${o.skipped})`);
      continue;
    }
    rows.push({ ...o, engine: `PyTorch ${version} ${o.variant}`, version });
    console.log(
      `${rows[rows.length - 1]!.engine}: D=${o.D} train ${o.train_img_s.toFixed(1)} img/s, infer ${o.infer_img_s.toFixed(1)} img/s`,
    );
  }
  return rows;
}

/** The bench's PyTorch: its virtual environment's python, made on first use (scripts/pip-venv.sh). */
function torchPython(): string {
  const r = spawnSync('bash', [projectPath('scripts', 'pip-venv.sh'), TORCH_VENV, ...TORCH_REQUIREMENTS], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`could not install ${TORCH_REQUIREMENTS.join(' ')} into ${TORCH_VENV}`);
  return `${TORCH_VENV}/bin/python`;
}

const USAGE = `usage: npm run bench -- [--D 32,64] [--batch 64] [--steps 5] [--warmup 2] [--rounds 1] [--torch-variants eager,channels_last,compile,bf16] [--debian-torch] [--no-torch]
Training and inference images/s of the Part B class-conditioned UNet on the chosen engine (DIFFUSION_ENGINE), and in
PyTorch ${TORCH_REQUIREMENTS[0]!.split('==')[1]} (installed into .venv/bench-torch on first use) in the same run, with the ratios.`;

const BENCH_OPTIONS = {
  D: { type: 'number', list: true, integer: true, min: 1, default: [32, 64], help: 'UNet widths to measure' },
  batch: { type: 'number', integer: true, min: 1, default: 64, help: 'batch size' },
  steps: { type: 'number', integer: true, min: 1, default: 5, help: 'timed steps (the median is reported)' },
  warmup: { type: 'number', integer: true, min: 0, default: 2, help: 'untimed steps before timing' },
  'torch-variants': {
    type: 'string',
    list: true,
    choices: TORCH_VARIANTS,
    default: [...TORCH_VARIANTS],
    help: 'PyTorch variants: eager fp32, channels_last fp32, torch.compile fp32, bf16 autocast',
  },
  rounds: {
    type: 'number',
    integer: true,
    min: 1,
    default: 1,
    help: 'rounds of every engine in turn (ours, then PyTorch), each row the median over them: on a shared machine whose speed drifts by 10-15% over minutes, 3 keep a drift from landing on one side only',
  },
  'debian-torch': { type: 'boolean', help: "also Debian's PyTorch (/usr/bin/python3, 1.13), eager" },
  'no-torch': { type: 'boolean', help: 'skip PyTorch' },
} as const;

/** One row per engine and D (as in the first round), its img/s the median over the rounds. */
function medianRows<R extends { engine: string; D: number; train_img_s: number; infer_img_s: number }>(rounds: R[][]): R[] {
  return (rounds[0] ?? []).map((first) => {
    const same = rounds.flatMap((rs) => rs.filter((r) => r.engine === first.engine && r.D === first.D));
    return { ...first, train_img_s: median(same.map((r) => r.train_img_s)), infer_img_s: median(same.map((r) => r.infer_img_s)) };
  });
}

async function main(): Promise<void> {
  const { values: a } = parseCommandLine(process.argv.slice(2), BENCH_OPTIONS, USAGE);
  const info = await initEngine();
  const Ds = a.D;
  const batch = a.batch;
  const steps = a.steps;
  const warmup = a.warmup;
  // Without the addon first (the engine as it was), then with it, when it is loaded; not when the
  // addon left the wasm kernels one thread (lib/engine tryWasm): that row would not be the engine
  // a machine without the addon runs.
  const variants: Array<[string, boolean]> = [];
  if (!info.native || info.wasmThreads === undefined) variants.push([info.name, !info.native]);
  if (info.native) variants.push([`${info.name} + ${info.native}`, true]);
  if (info.native && info.wasmThreads !== undefined)
    console.log(
      `${info.name} row left out (its kernels run on ${info.wasmThreads} thread beside the addon): DIFFUSION_NATIVE=0 npm run bench measures it`,
    );
  // Debian 12's oneDNN is 2.6.3; the 3.x of scripts/build-onednn.sh is the faster one on AVX2 CPUs.
  if (info.native?.startsWith('oneDNN 2.'))
    console.log(
      `${info.native} is Debian 12's: bash scripts/build-onednn.sh builds oneDNN 3.7.2 for the addon (7-11% faster on AVX2 CPUs)`,
    );
  // bf16 convolutions (fp32 accumulation and weights) where the addon and the CPU have them.
  const ours16 = info.native ? setNativePrecision('bf16') : { precision: 'fp32' as const, why: 'no oneDNN addon' };
  setNativePrecision('fp32');
  if (ours16.precision === 'bf16') variants.push([`${info.name} + ${info.native} bf16`, true]);
  else console.log(`bf16 row left out: ${ours16.why}`);
  const threads = info.threads || os.cpus().length;
  const python = a['no-torch'] ? undefined : torchPython();
  // Every round measures every engine once, D by D: ours, then PyTorch's at the same D, so that the
  // two sides of a ratio are measured a minute apart rather than several; a drift of the machine's
  // speed then falls on both. Each row's img/s is the median of its rounds; each ratio the median
  // of the rounds' ratios (a paired comparison: each round's ratio sets both sides of one minute
  // against each other).
  const oursByRound: Row[][] = [];
  const torchByRound: TorchRow[][] = [];
  for (let round = 1; round <= a.rounds; round++) {
    if (a.rounds > 1) console.log(`round ${round} of ${a.rounds}`);
    const ours: Row[] = [];
    const theirs: TorchRow[] = [];
    for (const D of Ds) {
      for (const [engine, native] of variants) {
        const precision = engine.endsWith(' bf16') ? 'bf16' : 'fp32';
        setNativePrecision(precision);
        const row = withLevers({ native }, () => benchTfjs(engine, D, batch, warmup, steps));
        setNativePrecision('fp32');
        ours.push(row);
        console.log(
          `tfjs ${engine}: D=${D} batch=${batch} train ${row.train_img_s.toFixed(1)} img/s, infer ${row.infer_img_s.toFixed(1)} img/s`,
        );
      }
      if (python) {
        theirs.push(...benchTorch(python, a['torch-variants'], [D], batch, warmup, steps, threads));
        if (a['debian-torch']) theirs.push(...benchTorch('/usr/bin/python3', ['eager'], [D], batch, warmup, steps, threads));
      }
    }
    oursByRound.push(ours);
    torchByRound.push(theirs);
  }
  const rows = medianRows(oursByRound);
  const torch = medianRows(torchByRound);
  type Key = 'train_img_s' | 'infer_img_s';
  // The references of one round: PyTorch's best fp32 variant (per D, per measure) and its bf16 autocast.
  const bestIn = (ts: TorchRow[], D: number, key: Key) => {
    const fp32 = ts.filter((t) => t.D === D && t.variant !== 'bf16' && t.version === ts[0]?.version);
    return fp32.length ? Math.max(...fp32.map((t) => t[key])) : undefined;
  };
  const bf16In = (ts: TorchRow[], D: number, key: Key) => ts.find((t) => t.D === D && t.variant === 'bf16')?.[key];
  // A row's ratio to a reference: the median over the rounds of that round's ratio.
  const pairedRatio = (engine: string, D: number, key: Key, ref: typeof bestIn): number | undefined => {
    const each = oursByRound.map((ours, i) => {
      const mine = [...ours, ...torchByRound[i]!].find((r) => r.engine === engine && r.D === D)?.[key];
      const theirs = ref(torchByRound[i]!, D, key);
      return mine === undefined || theirs === undefined ? undefined : mine / theirs;
    });
    return each.includes(undefined) ? undefined : median(each as number[]);
  };
  console.log(
    '\n| engine | D | batch | train img/s | infer img/s | train vs best fp32 | infer vs best fp32 | train vs bf16 | infer vs bf16 |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  const all = [...rows, ...torch.map((t) => ({ ...t, batch }))].sort((x, y) => x.D - y.D);
  const ratios = all.map((r) => ({
    train_vs_best_fp32: pairedRatio(r.engine, r.D, 'train_img_s', bestIn),
    infer_vs_best_fp32: pairedRatio(r.engine, r.D, 'infer_img_s', bestIn),
    train_vs_bf16: pairedRatio(r.engine, r.D, 'train_img_s', bf16In),
    infer_vs_bf16: pairedRatio(r.engine, r.D, 'infer_img_s', bf16In),
  }));
  const x = (v?: number) => (v === undefined ? '–' : `${v.toFixed(2)}×`);
  all.forEach((r, i) => {
    const q = ratios[i]!;
    console.log(
      `| ${r.engine} | ${r.D} | ${r.batch} | ${r.train_img_s.toFixed(1)} | ${r.infer_img_s.toFixed(1)} | ` +
        `${x(q.train_vs_best_fp32)} | ${x(q.infer_vs_best_fp32)} | ${x(q.train_vs_bf16)} | ${x(q.infer_vs_bf16)} |`,
    );
  });
  const round = (v?: number) => (v === undefined ? undefined : Math.round(v * 100) / 100);
  console.log(
    JSON.stringify({
      engine: info.name,
      threads: info.threads,
      cpu: os.cpus()[0]?.model,
      rounds: a.rounds,
      rows: all.map((r, i) => ({
        ...r,
        train_img_s: round(r.train_img_s),
        infer_img_s: round(r.infer_img_s),
        ...Object.fromEntries(Object.entries(ratios[i]!).map(([k, v]) => [k, round(v)])),
      })),
    }),
  );
}

main().catch((e) => {
  console.error(e instanceof CliError ? `error: ${e.message}` : `bench: ${(e as Error).message}`);
  process.exit(exitCodeFor(e));
});
