/**
 * A guard made by the reference implementation itself: fixtures written by Hugging Face diffusers
 * v0.27.2 (test/if/fixtures/make_diffusers_fixtures.py; its header says how to rerun it) compared
 * with this project's code at float32 tolerance. Only the committed fixtures are read; no Python.
 *
 *   scheduler.json    cosine ᾱ (squaredcos_cap_v2), set_timesteps(n) lists and previous_timestep
 *   step.json         DDPMScheduler.step (dynamic thresholding, learned-range variance, its own noise)
 *   course_loop.json  the course's iterative_denoise with add_variance → _get_variance (SPEC §1.4)
 *   tiny-unet-*       tiny random IF-shaped UNet2DConditionModels saved by save_pretrained, and their output
 *
 * Fixture tensors are torch's NCHW; the project is NHWC, so they are transposed on the way in/out.
 */
import { test, before } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

// ---- Every project import, in one block (re-point here when files move) ---------------------
import { initEngine } from '../../lib/engine';
import { cosineSchedule, type NoiseSchedule } from '../../lib/schedulers/schedule';
import { leadingTimesteps, previousTimestep, stridedTimesteps } from '../../lib/schedulers/timesteps';
import { DDPMScheduler, ifSchedule, schedulerFromConfig, STAGE_I_CONFIG, STAGE_II_CONFIG } from '../../lib/schedulers/ddpm';
import { iterativeDenoise } from '../../lib/algorithms';
import type { CondHandle, Denoiser, Prediction } from '../../lib/models/denoiser';
import { loadIFModel } from '../../lib/models/if/load';
import { Rng } from '../../lib/tensor/random';

type Stage = 'stage1' | 'stage2';
/** IF's ᾱ schedule as the project builds it (and cosineSchedule's defaults, which must agree). */
const projectSchedule = (): NoiseSchedule => ifSchedule();
const projectCosine = (): NoiseSchedule => cosineSchedule(1000);
/** A diffusers scheduler_config.json as the project reads it: the step settings and ᾱ it builds. */
function projectReadSchedulerConfig(raw: Record<string, unknown>) {
  const { scheduler, stepsOffset } = schedulerFromConfig(raw, 'diffusers scheduler_config.json');
  return { config: scheduler.config, alphasCumprod: scheduler.schedule.alphasCumprod, stepsOffset };
}
/** set_timesteps(n), "leading" spacing. */
const projectLeading = (n: number, stepsOffset = 0): number[] => leadingTimesteps(n, 1000, stepsOffset);
/** One scheduler.step of an IF stage on schedule `s`, t → the list's next entry (−1 after the last). */
function projectStep(
  s: NoiseSchedule,
  stage: Stage,
  ts: readonly number[],
  t: number,
  xt: tf.Tensor4D,
  eps: tf.Tensor4D,
  v: tf.Tensor4D,
  rng: Rng,
): tf.Tensor4D {
  const sch = new DDPMScheduler(s, stage === 'stage1' ? STAGE_I_CONFIG : STAGE_II_CONFIG);
  return sch.step(xt, { eps, variance: v }, t, previousTimestep(ts, t), rng);
}
/** x̂₀ as step() uses it (thresholded). */
function projectPredOriginal(s: NoiseSchedule, stage: Stage, t: number, xt: tf.Tensor4D, eps: tf.Tensor4D): tf.Tensor4D {
  return new DDPMScheduler(s, stage === 'stage1' ? STAGE_I_CONFIG : STAGE_II_CONFIG).predictOriginal(xt, eps, t);
}
/** The course's §1.4 loop from timesteps[iStart] to 0; onStep sees every new x. */
function projectCourseLoop(
  den: Denoiser,
  x: tf.Tensor4D,
  iStart: number,
  timesteps: number[],
  rng: Rng,
  onStep: (x: tf.Tensor4D) => void,
): tf.Tensor4D {
  return iterativeDenoise(den, x, iStart, { rng, timesteps, onStep: ({ x }) => onStep(x) });
}
/** A saved diffusers UNet folder through the project's loader, run once. [B,H,W,C] in and out. */
function projectUnet(dir: string, sample: tf.Tensor4D, t: number, text: tf.Tensor3D, classLabels?: number[]): Float32Array {
  const m = loadIFModel(dir);
  try {
    return tf.tidy(() => m.unet.apply(m.weights, sample, t, text, classLabels).dataSync() as Float32Array);
  } finally {
    m.dispose();
  }
}
// ----------------------------------------------------------------------------------------------

const FIX = path.join(__dirname, '..', '..', '..', 'test', 'if', 'fixtures', 'diffusers');
const load = (f: string) => JSON.parse(fs.readFileSync(path.join(FIX, f), 'utf8'));

interface Arr {
  shape: number[];
  layout: string;
  data: number[];
}

before(async () => {
  await initEngine({ quiet: true });
});

/** NCHW float32 data → NHWC. */
function nchwToNhwc(a: Arr, c0 = 0, c1 = a.shape[1]): { data: Float32Array; shape: [number, number, number, number] } {
  const [B, C, H, W] = a.shape;
  const Cs = c1 - c0;
  const out = new Float32Array(B * H * W * Cs);
  for (let b = 0; b < B; b++)
    for (let c = c0; c < c1; c++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) out[((b * H + h) * W + w) * Cs + (c - c0)] = a.data[((b * C + c) * H + h) * W + w];
  return { data: out, shape: [B, H, W, Cs] };
}

function tensor(a: Arr, c0?: number, c1?: number): tf.Tensor4D {
  const { data, shape } = nchwToNhwc(a, c0, c1);
  return tf.tensor4d(data, shape);
}

/** The fixture's NCHW data reordered as NHWC, for comparing with project output. */
const expectedNhwc = (a: Arr) => nchwToNhwc(a).data;

interface Err {
  abs: number;
  rel: number;
  /** max |x−y| / max |y|. */
  relMax: number;
}

/** max |x−y|, max |x−y|/(|y|+floor) and max |x−y| / max |y|. */
function errors(x: ArrayLike<number>, y: ArrayLike<number>, floor = 1e-3): Err {
  assert.equal(x.length, y.length, 'length');
  let abs = 0,
    rel = 0,
    den = 0;
  for (let i = 0; i < y.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    abs = Math.max(abs, d);
    rel = Math.max(rel, d / (Math.abs(y[i]) + floor));
    den = Math.max(den, Math.abs(y[i]));
  }
  return { abs, rel, relMax: abs / (den || 1) };
}

const fmt = (e: Err) => `max abs ${e.abs.toExponential(2)}, max rel ${e.rel.toExponential(2)}, abs/max|ref| ${e.relMax.toExponential(2)}`;

// ---------------------------------------------------------------------------------------------
// scheduler.json

test("cosine ᾱ (squaredcos_cap_v2) matches diffusers' float32 alphas_cumprod for stage I, II and the image-noising scheduler", (t) => {
  const fx = load('scheduler.json');
  const s = projectSchedule();
  for (const stage of ['stage1', 'stage2', 'image_noising']) {
    const ref: Arr = fx.stages[stage].alphas_cumprod;
    assert.deepEqual(ref.shape, [1000]);
    assert.equal(fx.stages[stage].scheduler_config_json.beta_schedule, 'squaredcos_cap_v2');
    // diffusers keeps ᾱ in float32; ours is float64: compare relatively, ᾱ_999 ≈ 2e-9
    const e = errors(s.alphasCumprod, ref.data, 0);
    t.diagnostic(`${stage} alphas_cumprod: ${fmt(e)}`);
    assert.ok(e.rel < 2e-5, `${stage} ᾱ: ${fmt(e)}`);
  }
  const betas: Arr = fx.stages.stage1.betas;
  const eb = errors(s.betas, betas.data, 0);
  t.diagnostic(`betas: ${fmt(eb)}`);
  assert.ok(eb.rel < 1e-6, `β: ${fmt(eb)}`);
  assert.deepEqual(projectCosine().alphasCumprod, s.alphasCumprod, "cosineSchedule(1000) is IF's schedule");
});

test("diffusers' own scheduler_config.json of each stage reads as the project's IF settings", () => {
  const fx = load('scheduler.json');
  const want = {
    stage1: STAGE_I_CONFIG,
    stage2: STAGE_II_CONFIG,
    // image_noising_scheduler: only add_noise is used; its step settings are diffusers' defaults
    image_noising: { varianceType: 'fixed_small', thresholding: false, clipSample: 1 },
  } as const;
  for (const stage of ['stage1', 'stage2', 'image_noising'] as const) {
    const raw = fx.stages[stage].scheduler_config_json;
    assert.equal(raw._class_name, 'DDPMScheduler');
    const got = projectReadSchedulerConfig(raw);
    assert.deepEqual(got.config, want[stage], `${stage}: step settings`);
    assert.equal(got.stepsOffset, 0, `${stage}: steps_offset`);
    assert.deepEqual(got.alphasCumprod, projectSchedule().alphasCumprod, `${stage}: the ᾱ it builds`);
  }
});

test('set_timesteps(n) ("leading") and previous_timestep match diffusers for every n, with steps_offset, and for the custom strided list', (t) => {
  const fx = load('scheduler.json');
  /** diffusers' previous_timestep is t − T//n, negative after the last entry; ours is −1 there. Both mean ᾱ = 1. */
  const asProject = (p: number) => (p < 0 ? -1 : p);
  for (const stage of ['stage1', 'stage2', 'image_noising']) {
    for (const [n, want] of Object.entries(fx.stages[stage].set_timesteps) as [string, { timesteps: number[]; previous: number[] }][]) {
      const ours = projectLeading(Number(n));
      assert.deepEqual(ours, want.timesteps, `${stage} set_timesteps(${n})`);
      assert.deepEqual(
        ours.map((x) => previousTimestep(ours, x)),
        want.previous.map(asProject),
        `${stage} previous_timestep, n = ${n}`,
      );
    }
    const custom = fx.stages[stage].custom_strided;
    assert.deepEqual(custom.timesteps, fx.strided);
    assert.deepEqual(
      custom.timesteps.map((x: number) => previousTimestep(custom.timesteps, x)),
      custom.previous,
      `${stage} custom list previous_timestep`,
    );
  }
  for (const [n, want] of Object.entries(fx.steps_offset_1) as [string, { timesteps: number[]; previous: number[] }][]) {
    const ours = projectLeading(Number(n), 1);
    assert.deepEqual(ours, want.timesteps, `steps_offset 1, set_timesteps(${n})`);
    assert.deepEqual(
      ours.map((x) => previousTimestep(ours, x)),
      want.previous.map(asProject),
      `steps_offset 1, previous_timestep, n = ${n}`,
    );
  }
  // the course's list (SPEC §1.4) is what set_timesteps(timesteps=strided) keeps
  assert.deepEqual(stridedTimesteps(1000), fx.strided);
  t.diagnostic(
    `n = ${Object.keys(fx.stages.stage1.set_timesteps).join(', ')}; steps_offset 1 for n = ${Object.keys(fx.steps_offset_1).join(', ')}`,
  );
});

// ---------------------------------------------------------------------------------------------
// step.json

/** Rng whose normal() returns recorded draws, in order, and fails on anything else. */
class ReplayRng extends Rng {
  private k = 0;
  constructor(private readonly draws: { data: Float32Array; shape: number[] }[]) {
    super(0);
  }
  override normal(shape: number[]): tf.Tensor {
    const d = this.draws[this.k];
    assert.ok(d, `draw ${this.k + 1}: the fixture recorded only ${this.draws.length} draws`);
    assert.deepEqual(shape, d.shape, `draw ${this.k + 1}: shape`);
    this.k++;
    return tf.tensor(d.data, d.shape);
  }
  override uniform(): number {
    throw new Error('ReplayRng: only normal() draws were recorded');
  }
  get used(): number {
    return this.k;
  }
}

/**
 * diffusers' own float32 ᾱ as a NoiseSchedule. Running the project's step on it isolates the
 * step's algebra from the schedule's precision: the project keeps ᾱ in float64, diffusers in
 * float32, and near t = 0 its 1 − ᾱ_t (≈ 4e-5 at t = 0, where float32 spacing is 6e-8) then carries
 * a relative error up to ~1e-3, which reaches the posterior variance and x̂₀ of the last steps.
 */
function diffusersSchedule(): NoiseSchedule {
  const fx = load('scheduler.json');
  const betas = Float64Array.from(fx.stages.stage1.betas.data as number[]);
  return {
    T: 1000,
    betas,
    alphas: betas.map((b) => 1 - b),
    alphasCumprod: Float64Array.from(fx.stages.stage1.alphas_cumprod.data as number[]),
    name: "diffusers' float32 alphas_cumprod",
  };
}

/**
 * Tolerances (max abs). Values are O(1); plain float32 arithmetic gives ~1e-6. Near the end of the
 * chain (1 − ᾱ_t < 0.01: t ≤ 30 here) the reference itself is ill-conditioned in float32:
 * β = 1 − ᾱ_t/ᾱ_{t'} is a difference of nearly equal numbers, evaluated by diffusers in float32
 * (e.g. t = 30 → 0: 0.00349307 vs 0.00349310 in float64 from the same float32 ᾱ), and the x̂₀
 * coefficient √ᾱ_{t'}·β/(1 − ᾱ_t) ≈ 1 there passes that error on whole; at t = 0, 1 − ᾱ_0 ≈ 4e-5
 * is known to float32 ᾱ_0 only to ~1e-3 relative. Recomputing diffusers' step in float64 from its
 * own float32 ᾱ reproduces these differences (7.5e-6 at t = 30, 9.2e-6 at t = 20 → 0), so they are
 * the reference's rounding, not a disagreement. A real one (wrong t', variance, quantile, ᾱ index)
 * shows as 1e-3 or more.
 */
const lastSteps = (abT: number) => 1 - abT < 0.01;
const STEP_TOL = {
  good: { x0: 2e-6, prev: 4e-6 },
  last: { diffusers: { x0: 1e-5, prev: 2e-5 }, project: { x0: 1e-5, prev: 1e-4 } },
};

test("scheduler.step (stage I and II: dynamic thresholding, learned-range variance, diffusers' own noise) matches diffusers", (t) => {
  const fx = load('step.json');
  assert.equal(fx.configs.stage1.sample_max_value, 1.5);
  assert.equal(fx.configs.stage2.sample_max_value, 1.0);
  const schedules = { diffusers: diffusersSchedule(), project: projectSchedule() };
  const worst = { diffusers: { x0: 0, prev: 0 }, project: { x0: 0, prev: 0 } };
  for (const c of fx.cases) {
    const name = `${c.stage} n=${c.num_inference_steps} t=${c.t}`;
    const ts: number[] = c.num_inference_steps === 'strided' ? stridedTimesteps(1000) : projectLeading(c.num_inference_steps);
    assert.deepEqual(ts, c.timesteps, `${name}: timestep list`);
    const lines: string[] = [];
    for (const which of ['diffusers', 'project'] as const) {
      const draws = c.noise ? [nchwToNhwc(c.noise)] : [];
      const rng = new ReplayRng(draws);
      const { x0, prev } = tf.tidy(() => {
        const xt = tensor(c.sample);
        const eps = tensor(c.model_output, 0, 3);
        const v = tensor(c.model_output, 3, 6);
        const sch = schedules[which];
        return {
          x0: projectPredOriginal(sch, c.stage, c.t, xt, eps).dataSync(),
          prev: projectStep(sch, c.stage, ts, c.t, xt, eps, v, rng).dataSync(),
        };
      });
      assert.equal(rng.used, draws.length, `${name}: step drew ${rng.used} noise tensors, diffusers ${draws.length}`);
      const e0 = errors(x0, expectedNhwc(c.pred_original_sample));
      const e1 = errors(prev, expectedNhwc(c.prev_sample));
      lines.push(
        `${which} ᾱ: x̂₀ ${e0.abs.toExponential(2)} (rel ${e0.rel.toExponential(2)}), prev ${e1.abs.toExponential(2)} (rel ${e1.rel.toExponential(2)})`,
      );
      const tol = lastSteps(schedules.diffusers.alphasCumprod[c.t]) ? STEP_TOL.last[which] : STEP_TOL.good;
      assert.ok(e0.abs < tol.x0, `${name}, ${which} ᾱ: pred_original_sample ${fmt(e0)}`);
      assert.ok(e1.abs < tol.prev, `${name}, ${which} ᾱ: prev_sample ${fmt(e1)}`);
      worst[which] = { x0: Math.max(worst[which].x0, e0.abs), prev: Math.max(worst[which].prev, e1.abs) };
    }
    t.diagnostic(`${name} (s = ${c.threshold_s.map((s: number) => s.toFixed(4)).join(', ')}) max abs: ${lines.join('; ')}`);
  }
  for (const which of ['diffusers', 'project'] as const) {
    t.diagnostic(
      `${fx.cases.length} cases, ${which} ᾱ: worst max abs pred_original_sample ${worst[which].x0.toExponential(2)}, prev_sample ${worst[which].prev.toExponential(2)}`,
    );
  }
});

// ---------------------------------------------------------------------------------------------
// course_loop.json

/** The fixture's toy model as a Denoiser: ε̂ = 0.3·x + 0.1·sin(t/100), v = tanh(0.5·x). */
class ToyDenoiser implements Denoiser {
  readonly name = 'toy (course_loop.json)';
  readonly imageSize: [number, number] = [8, 8];
  readonly channels = 3;
  readonly valueRange: [number, number] = [-1, 1];
  readonly learnedVariance = true;
  /** The Denoiser field before lib/models/denoiser.ts had learnedVariance. */
  readonly varianceType = 'learned_range' as const;
  readonly neutralPrompt = 'toy';
  readonly emptyPrompt = '';
  readonly prompts = ['toy', ''];
  constructor(readonly schedule: NoiseSchedule) {}
  encodePrompt(prompt: string): CondHandle {
    return { prompt, owner: this.name };
  }
  predict(xt: tf.Tensor4D, t: number): Prediction {
    return tf.tidy(() => ({
      eps: tf.add(tf.mul(xt, 0.3), 0.1 * Math.sin(t / 100)) as tf.Tensor4D,
      variance: tf.tanh(tf.mul(xt, 0.5)) as tf.Tensor4D,
    }));
  }
}

/** Per step of the loop (errors accumulate over up to 23 steps; the last step, 30 → 0, as in STEP_TOL). */
const LOOP_TOL = { good: 1.5e-5, last: 5e-5 };

test("the course's strided iterative_denoise (Eq. A.3 + add_variance via _get_variance) matches diffusers on a toy model", (t) => {
  const fx = load('course_loop.json');
  assert.match(fx.toy_model, /0\.3\*x \+ 0\.1\*sin\(t\/100\); v = tanh\(0\.5\*x\)/);
  const ts = stridedTimesteps(1000);
  assert.deepEqual(ts, fx.strided_timesteps);
  for (const [which, schedule] of [
    ['diffusers', diffusersSchedule()],
    ['project', projectSchedule()],
  ] as const) {
    const rng = new ReplayRng(fx.z.map((z: Arr) => nchwToNhwc(z)));
    const steps: Float32Array[] = [];
    const x = tensor(fx.input);
    const out = projectCourseLoop(new ToyDenoiser(schedule), x, fx.i_start, ts, rng, (xi) => steps.push(xi.dataSync() as Float32Array));
    const got = out.dataSync();
    tf.dispose([x, out]);
    assert.equal(rng.used, fx.z.length, `the loop drew ${rng.used} z, the course ${fx.z.length}`);
    assert.equal(steps.length, fx.x_after_step.length);
    let worst = 0;
    steps.forEach((xi, k) => {
      const e = errors(xi, expectedNhwc(fx.x_after_step[k]));
      worst = Math.max(worst, e.abs);
      const tol = lastSteps(schedule.alphasCumprod[fx.steps[k].t]) ? LOOP_TOL.last : LOOP_TOL.good;
      assert.ok(e.abs < tol, `${which} ᾱ, after step ${k + 1} (t = ${fx.steps[k].t} → ${fx.steps[k].prev_t}): ${fmt(e)}`);
    });
    const e = errors(got, expectedNhwc(fx.output));
    t.diagnostic(
      `${which} ᾱ, ${steps.length} steps from i_start ${fx.i_start} (t = ${ts[fx.i_start]}): final ${fmt(e)}; worst step max abs ${worst.toExponential(2)}`,
    );
    assert.ok(e.abs < LOOP_TOL.last, `${which} ᾱ, final: ${fmt(e)}`);
  }
});

// ---------------------------------------------------------------------------------------------
// tiny-unet-stage1 / tiny-unet-stage2

for (const name of ['tiny-unet-stage1', 'tiny-unet-stage2']) {
  test(`${name}: diffusers' save_pretrained folder through loadIFModel gives diffusers' output`, (t) => {
    const io = load(`${name}-io.json`);
    const text: Arr = io.encoder_hidden_states;
    const got = tf.tidy(() => {
      const sample = tensor(io.sample);
      const enc = tf.tensor3d(Float32Array.from(text.data), text.shape as [number, number, number]);
      return projectUnet(path.join(FIX, name), sample, io.timestep, enc, io.class_labels ?? undefined);
    });
    const e = errors(got, expectedNhwc(io.output));
    t.diagnostic(`${name} (${io.params} parameters${io.class_labels ? `, class_labels ${io.class_labels}` : ''}): ${fmt(e)}`);
    assert.ok(e.relMax < 1e-5, `${name}: ${fmt(e)}`);
  });
}
