/**
 * The GPU check: times each Part B model's training steps on one engine and samples a
 * class-conditioned grid. scripts/gpu-check.sh runs it twice (WebGPU, then wasm on the CPUs)
 * and prints the ratio and the projected time of the full reference Part B training.
 *
 *   node dist/scripts/gpu/check.js --engine webgpu --preset reference --out OUT [--mnist FILE]
 *     --engine webgpu|wasm|cpu|auto   engine to time (forced, so a software adapter is accepted)
 *     --preset reference|smoke        reference: §2.3 D=128 B=256, §2.4–2.5 D=64 B=128; smoke: D=4 B=4
 *     --models denoiser,time,class    which models
 *     --steps N --warmup W            timed steps after W >= 1 untimed ones (shader compiles, optimizer state)
 *     --budget S                      seconds per model: timing stops early past it (at least one step)
 *     --batch N                       batch for every model instead of the preset's (for slow engines:
 *                                     img/s is then measured at N, and the projection scales by img/s)
 *     --grid-steps N                  sampling steps of the class-conditioned grid (0 = no grid)
 *     --sample-steps N                timed sampling steps per DDPM model (no grid written)
 *     --out DIR                       writes check-<engine>.json and grid-class-<engine>.png there
 *     --mnist FILE                    MNIST train images (IDX, optionally .gz) + FILE's labels sibling
 *   node dist/scripts/gpu/check.js --probe [--engine E]   start the engine, print it and the adapter, exit
 *   node dist/scripts/gpu/check.js --summary DIR          compare DIR/check-*.json: ratios, projections
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, describeEngine, EngineChoice } from '../../lib/engine';
import { mnistDenoiser } from '../../lib/models/mnistDenoiser';
import { classGuidedEstimator, ddpmSample } from '../../lib/algorithms/ddpmSampling';
import { toClean } from '../../lib/schedulers/timesteps';
import { describeAdapter } from '../../lib/engine/webgpu';
import { CliError, ENGINE_CHOICES, exitCodeFor, parseCommandLine } from '../../lib/cli';
import { UNet, UNET_INPUTS, UNetKind } from '../../lib/models/unet';
import { PARTB_KINDS, REFERENCE, HostBatch, makeBatch, trainStep, newAdam, ddpmSchedule } from '../../lib/gpu/hostSteps';
import { describeConfig } from '../../lib/models/registry';
import { samplePartB } from '../../lib/algorithms/partBSampling';

const MNIST_TRAIN = 60000;

interface Args {
  engine: EngineChoice;
  preset: 'reference' | 'smoke';
  models: UNetKind[];
  steps: number;
  warmup: number;
  budget: number;
  /** Overrides every model's batch (throughput in img/s barely depends on it on CPUs). */
  batch?: number;
  gridSteps: number;
  sampleSteps: number;
  out?: string;
  mnist?: string;
  probe: boolean;
  summary?: string;
}

const USAGE = `usage: node dist/scripts/gpu/check.js --engine webgpu --preset reference --out OUT [--mnist FILE] [options]
       node dist/scripts/gpu/check.js --probe [--engine E]   start the engine, print it and the adapter, exit
       node dist/scripts/gpu/check.js --summary DIR          compare DIR/check-*.json: ratios, projections
Times each Part B model's training steps on one engine and samples a class-conditioned grid (scripts/gpu-check.sh runs it).`;

const CHECK_OPTIONS = {
  engine: {
    type: 'string',
    choices: ENGINE_CHOICES,
    default: 'webgpu',
    help: 'engine to time (forced, so a software adapter is accepted)',
  },
  preset: {
    type: 'string',
    choices: ['reference', 'smoke'],
    default: 'reference',
    help: 'reference: §2.3 D=128 B=256, §2.4–2.5 D=64 B=128; smoke: D=4 B=4',
  },
  models: {
    type: 'string',
    list: true,
    valueName: PARTB_KINDS.join(','),
    default: PARTB_KINDS,
    help: 'which models',
    check: (ms: string[]) =>
      ms
        .filter((m) => !PARTB_KINDS.includes(m as UNetKind))
        .map((m) => `unknown model "${m}" in --models: use ${PARTB_KINDS.join(',')}`)[0],
  },
  steps: { type: 'number', integer: true, min: 1, default: 20, help: 'timed training steps per model' },
  warmup: {
    type: 'number',
    integer: true,
    min: 1,
    default: 2,
    help: 'untimed steps first (shader compiles; the first allocates the optimizer state)',
  },
  budget: { type: 'number', min: 0, default: 60, help: 'seconds per model: timing stops early past it (at least one step)' },
  batch: {
    type: 'number',
    integer: true,
    min: 1,
    help: 'batch for every model (img/s then measured at N; the projection scales by img/s)',
    defaultHelp: "the preset's",
  },
  'grid-steps': { type: 'number', integer: true, min: 0, default: 300, help: 'sampling steps of the class-conditioned grid (0 = no grid)' },
  'sample-steps': { type: 'number', integer: true, min: 0, default: 0, help: 'timed sampling steps per DDPM model (no grid written)' },
  out: { type: 'string', valueName: 'DIR', help: 'writes check-<engine>.json and grid-class-<engine>.png there' },
  mnist: {
    type: 'string',
    valueName: 'FILE',
    help: 'MNIST train images (IDX, optionally .gz) with its labels sibling',
    defaultHelp: 'synthetic blobs',
  },
  probe: { type: 'boolean', help: 'start the engine, print it and the adapter, run one op, exit' },
  summary: { type: 'string', valueName: 'DIR', help: 'compare DIR/check-*.json (ratios, projections) and exit' },
} as const;

function parseArgs(argv: string[]): Args {
  const { values: v } = parseCommandLine(argv, CHECK_OPTIONS, USAGE);
  return {
    engine: v.engine,
    preset: v.preset,
    models: v.models as UNetKind[],
    steps: v.steps,
    warmup: v.warmup,
    budget: v.budget,
    batch: v.batch,
    gridSteps: v['grid-steps'],
    sampleSteps: v['sample-steps'],
    out: v.out,
    mnist: v.mnist,
    probe: v.probe,
    summary: v.summary,
  };
}

/** Reads an IDX file (optionally gzipped): the payload after its header. */
function readIdx(file: string, headerBytes: number): Uint8Array {
  let buf = fs.readFileSync(file);
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = zlib.gunzipSync(buf);
  return new Uint8Array(buf.buffer, buf.byteOffset + headerBytes, buf.length - headerBytes);
}

/** MNIST images (uint8 [N*784]) and labels from an images IDX file and its labels sibling. */
function loadMnist(imagesFile: string): { pixels: Uint8Array; labels: Uint8Array } {
  const labelsFile = imagesFile.replace('images-idx3', 'labels-idx1');
  if (labelsFile === imagesFile || !fs.existsSync(labelsFile))
    throw new Error(`--mnist: no labels file ${labelsFile} beside ${imagesFile}`);
  const pixels = readIdx(imagesFile, 16);
  const labels = readIdx(labelsFile, 8);
  const n = Math.min(Math.floor(pixels.length / 784), labels.length);
  return { pixels: pixels.subarray(0, n * 784), labels: labels.subarray(0, n) };
}

/** An 8-bit grayscale PNG (zlib from Node; no image library needed on the device). */
function grayPng(width: number, height: number, pixels: Uint8Array): Buffer {
  const crcTable = new Int32Array(256).map((_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c;
  });
  const crc = (b: Buffer) => {
    let c = -1;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ -1) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grayscale
  const raw = Buffer.alloc((width + 1) * height);
  for (let y = 0; y < height; y++) Buffer.from(pixels.buffer, pixels.byteOffset + y * width, width).copy(raw, y * (width + 1) + 1);
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

function writeAtomic(file: string, data: Buffer | string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

interface TrainResult {
  model: UNetKind;
  D: number;
  batch: number;
  steps: number;
  seconds: number;
  imagesPerSecond: number;
  secondsPerStep: number;
  firstLoss: number;
  lastLoss: number;
  /** Steps of the full reference run of this model: epochs × ⌈60000 / batch⌉. */
  referenceSteps: number;
  /** Projected seconds of the full reference run (referenceSteps × reference batch images) at this img/s. */
  projectedSeconds: number;
  sampleSecondsPerStep?: number;
}

/**
 * Errors the GPU reports asynchronously (validation, out of memory): Dawn only logs them, and the
 * kernels then compute nothing, so a run with any is void. Filled by watchGpuErrors().
 */
const gpuErrors: string[] = [];

/** Subscribes to the WebGPU device's uncaptured errors (no-op on other engines). */
function watchGpuErrors(): void {
  const device = (tf.backend() as unknown as { device?: EventTarget }).device;
  device?.addEventListener?.('uncapturederror', (ev) => {
    const msg = String((ev as unknown as { error?: { message?: string } }).error?.message ?? ev).trim();
    gpuErrors.push(msg.split('\n')[0]);
  });
}

function checkGpuErrors(where: string): void {
  if (gpuErrors.length > 0)
    throw new Error(`${where}: the GPU reported ${gpuErrors.length} error(s), results void; first: ${gpuErrors[0]}`);
}

async function timeTraining(
  kind: UNetKind,
  args: Args,
  mnist?: { pixels: Uint8Array; labels: Uint8Array },
): Promise<{ result: TrainResult; net: UNet }> {
  const ref = REFERENCE[kind];
  const D = args.preset === 'smoke' ? 4 : ref.D;
  const B = args.batch ?? (args.preset === 'smoke' ? 4 : ref.batch);
  const schedule = ddpmSchedule();
  const net = new UNet({ kind, D }, 1);
  const adam = newAdam(net);
  // A few batches made ahead and cycled, so host-side data making is not timed.
  const batches: HostBatch[] = [];
  for (let i = 0; i < 4; i++) batches.push(makeBatch(B, 100 + i, schedule.T, mnist ? { ...mnist, offset: i * B } : undefined));
  let step = 0;
  const run = async () => {
    const loss = trainStep(net, adam, batches[step++ % batches.length], schedule, ref.lr);
    const v = (await loss.data())[0]; // a real loop reads every loss (the loss curve); this also waits for the GPU
    loss.dispose();
    checkGpuErrors(`${kind} step ${step}`);
    if (!Number.isFinite(v)) throw new Error(`${kind}: loss is ${v} at step ${step}`);
    return v;
  };
  for (let i = 0; i < args.warmup; i++) await run();
  const tensorsBefore = tf.memory().numTensors;
  const t0 = performance.now();
  let first = NaN;
  let last = NaN;
  let n = 0;
  while (n < args.steps) {
    last = await run();
    if (n === 0) first = last;
    n++;
    if ((performance.now() - t0) / 1000 > args.budget) break;
  }
  const seconds = (performance.now() - t0) / 1000;
  if (tf.memory().numTensors !== tensorsBefore)
    throw new Error(`${kind}: ${tf.memory().numTensors - tensorsBefore} tensors leaked per run`);
  adam.dispose();
  const referenceSteps = ref.epochs * Math.ceil(MNIST_TRAIN / ref.batch);
  const secondsPerStep = seconds / n;
  const result: TrainResult = {
    model: kind,
    D,
    batch: B,
    steps: n,
    seconds,
    imagesPerSecond: (n * B) / seconds,
    secondsPerStep,
    firstLoss: first,
    lastLoss: last,
    referenceSteps,
    projectedSeconds: args.preset === 'reference' ? (referenceSteps * ref.batch) / ((n * B) / seconds) : NaN,
  };
  return { result, net };
}

/** Times `steps` DDPM sampling steps on a batch of 40 (the class model: 4 per class, with CFG), from t = T−1 down, on the one loop. */
async function timeSampling(net: UNet, steps: number): Promise<number> {
  const desc = describeConfig({ model: net.config.kind, objective: 'ddpm' });
  const T = desc.T;
  const timesteps = Array.from({ length: Math.min(steps, T - 1) + 1 }, (_, i) => T - 1 - i);
  const labels = Array.from({ length: 40 }, (_, i) => i % 10);
  const t0 = performance.now();
  const res = samplePartB(desc, net, { seed: 3, timesteps, ...(desc.numClasses > 0 ? { labels } : { count: 40 }) });
  await res.images.data();
  res.images.dispose();
  checkGpuErrors('sampling');
  return (performance.now() - t0) / 1000 / (timesteps.length - 1);
}

/**
 * Samples a 10×4 grid (columns = classes 0..9) with the class model and CFG γ = 5, striding the
 * 300-step chain down to `steps` steps when fewer are asked for. Returns seconds taken.
 */
async function sampleGrid(net: UNet, steps: number, file: string): Promise<number> {
  const schedule = ddpmSchedule();
  const rows = 4;
  const labels = Int32Array.from({ length: 10 * rows }, (_, i) => i % 10);
  // The library's Alg. B.4 (the one scheduler step and CFG), over the 300-step chain strided to `steps` entries.
  const ts = Array.from({ length: steps }, (_, i) =>
    steps === 1 ? schedule.T - 1 : Math.round(((schedule.T - 1) * (steps - 1 - i)) / (steps - 1)),
  );
  const t0 = performance.now();
  const den = mnistDenoiser(net, { T: schedule.T });
  const x = ddpmSample(den, classGuidedEstimator(den, labels, 5), { count: labels.length, seed: 0, timesteps: toClean(ts) }).images;
  const px = (await x.data()) as Float32Array;
  x.dispose();
  checkGpuErrors('grid');
  const seconds = (performance.now() - t0) / 1000;
  const W = 10 * 28;
  const img = new Uint8Array(W * rows * 28);
  for (let b = 0; b < labels.length; b++) {
    const gx = (b % 10) * 28;
    const gy = Math.floor(b / 10) * 28;
    for (let p = 0; p < 784; p++)
      img[(gy + Math.floor(p / 28)) * W + gx + (p % 28)] = Math.round(255 * Math.min(1, Math.max(0, px[b * 784 + p])));
  }
  writeAtomic(file, grayPng(W, rows * 28, img));
  return seconds;
}

function hms(s: number): string {
  if (!Number.isFinite(s)) return '-';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min ${Math.round(s % 60)} s` : `${s.toFixed(1)} s`;
}

interface Summary {
  engine: { name: string; adapter?: { description: string; device: string } };
  preset: string;
  results: TrainResult[];
  projectedTotalSeconds: number;
}

/** Prints, per model, each engine's img/s, the GPU-to-CPU ratio and the projected reference training time. */
function summarize(dir: string): void {
  const files = fs.readdirSync(dir).filter((f) => /^check-.*\.json$/.test(f));
  if (files.length === 0) throw new Error(`--summary: no check-*.json in ${dir}; run the check first`);
  const runs = files.map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Summary);
  const gpu = runs.find((r) => r.engine.name === 'webgpu' || r.engine.name === 'node-gpu');
  const cpu = runs.find((r) => r.engine.name === 'wasm' || r.engine.name === 'node' || r.engine.name === 'cpu');
  console.log('summary (img/s at the preset; projection = full reference Part B training):');
  for (const kind of PARTB_KINDS) {
    const g = gpu?.results.find((r) => r.model === kind);
    const c = cpu?.results.find((r) => r.model === kind);
    const cell = (r?: TrainResult) =>
      r ? `${r.imagesPerSecond.toFixed(1)} img/s (D=${r.D}, B=${r.batch}), ≈ ${hms(r.projectedSeconds)}` : '-';
    const ratio = g && c ? `, ratio ${(g.imagesPerSecond / c.imagesPerSecond).toFixed(1)}×` : '';
    console.log(`  ${kind.padEnd(8)} ${gpu?.engine.name ?? 'gpu'}: ${cell(g)} | ${cpu?.engine.name ?? 'cpu'}: ${cell(c)}${ratio}`);
  }
  for (const r of [gpu, cpu]) {
    if (r && r.results.length === PARTB_KINDS.length && r.preset === 'reference') {
      console.log(
        `  projected full reference Part B training on ${r.engine.name}${r.engine.adapter ? ` (${r.engine.adapter.description || r.engine.adapter.device})` : ''}: ${hms(r.projectedTotalSeconds)}`,
      );
    }
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.summary) return summarize(args.summary);
  const info = await initEngine({ engine: args.engine, quiet: true });
  console.log(describeEngine(info));
  if (info.adapter) console.log(describeAdapter(info.adapter));
  watchGpuErrors();
  if (args.probe) {
    // A tiny op end to end proves the device runs kernels, not only that an adapter exists.
    const v = await tf.tidy(() => tf.sum(tf.matMul(tf.ones([64, 64]), tf.ones([64, 64])))).data();
    if (v[0] !== 64 * 64 * 64) throw new Error(`probe: a 64×64 matMul of ones summed to ${v[0]}, expected ${64 ** 3}`);
    checkGpuErrors('probe');
    console.log('probe: kernels run and read back correctly');
    return;
  }
  const mnist = args.mnist ? loadMnist(args.mnist) : undefined;
  console.log(`data: ${mnist ? `MNIST, ${mnist.labels.length} images from ${args.mnist}` : 'synthetic blobs (no --mnist)'}`);
  if (args.out) fs.mkdirSync(args.out, { recursive: true });
  const results: TrainResult[] = [];
  let gridSeconds: number | undefined;
  for (const kind of args.models) {
    const { result, net } = await timeTraining(kind, args, mnist);
    if (args.sampleSteps > 0 && UNET_INPUTS[kind].time) result.sampleSecondsPerStep = await timeSampling(net, args.sampleSteps);
    results.push(result);
    console.log(
      `train ${kind.padEnd(8)} D=${result.D} B=${result.batch}: ${result.steps} steps in ${result.seconds.toFixed(2)} s = ` +
        `${result.imagesPerSecond.toFixed(1)} img/s (${(result.secondsPerStep * 1000).toFixed(1)} ms/step), loss ${result.firstLoss.toFixed(4)} → ${result.lastLoss.toFixed(4)}` +
        (args.preset === 'reference' ? `; full reference run (${result.referenceSteps} steps) ≈ ${hms(result.projectedSeconds)}` : '') +
        (result.sampleSecondsPerStep !== undefined
          ? `; sampling 40 images${UNET_INPUTS[kind].classes ? ' (CFG: 2 passes)' : ''} ${(result.sampleSecondsPerStep * 1000).toFixed(1)} ms/step`
          : ''),
    );
    if (UNET_INPUTS[kind].classes && args.gridSteps > 0 && args.out) {
      const file = path.join(args.out, `grid-class-${info.name}.png`);
      gridSeconds = await sampleGrid(net, args.gridSteps, file);
      console.log(
        `grid: 10 classes × 4, ${args.gridSteps} steps, CFG 5 → ${file} in ${gridSeconds.toFixed(2)} s (the model is only lightly trained: expect blobs)`,
      );
    }
    net.dispose();
  }
  const total = results.reduce((s, r) => s + r.projectedSeconds, 0);
  if (args.preset === 'reference' && results.length === PARTB_KINDS.length) {
    console.log(`projected full reference Part B training on ${info.name}: ${hms(total)} (${total.toFixed(0)} s)`);
  }
  if (args.out) {
    const summary = {
      engine: info,
      preset: args.preset,
      results,
      gridSeconds,
      projectedTotalSeconds: total,
      date: new Date().toISOString(),
    };
    writeAtomic(path.join(args.out, `check-${info.name}.json`), JSON.stringify(summary, null, 2));
  }
}

main().then(
  // Exit explicitly: Dawn's native handles can keep the event loop alive after the work is done.
  () => process.exit(0),
  (e) => {
    console.error(e instanceof CliError ? `error: ${e.message}` : `gpu check failed: ${(e as Error).stack ?? e}`);
    process.exit(exitCodeFor(e));
  },
);
