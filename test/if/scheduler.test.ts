/**
 * IF scheduler: SPEC §1.11 fixture values, timestep lists, dynamic thresholding against a float64
 * torch.quantile reference, and one DDPM step against a float64 closed form.
 */
import { test, before } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DDPMScheduler, ifSchedule, loadSchedulerConfig, STAGE_I_CONFIG } from '../../lib/schedulers/ddpm';
import { dynamicThreshold } from '../../lib/schedulers/thresholding';
import { leadingTimesteps as pipelineTimesteps, previousTimestep } from '../../lib/schedulers/timesteps';
import { Rng } from '../../lib/tensor/random';
import { randArray } from './tiny';

before(async () => {
  await initEngine({ quiet: true });
});

test('squaredcos_cap_v2 matches the SPEC §1.11 table', () => {
  const s = ifSchedule();
  const table: [number, number, number][] = [
    [0, 4.128e-5, 0.999959],
    [90, 4.82e-4, 0.976539],
    [250, 1.327e-3, 0.845888],
    [390, 2.227e-3, 0.660822],
    [500, 3.156e-3, 0.492285],
    [690, 5.935e-3, 0.214523],
    [750, 7.579e-3, 0.143179],
    [960, 0.04931, 0.0036896],
    [990, 0.18999, 1.967e-4],
    [999, 0.999, 2.43e-9],
  ];
  for (const [t, beta, ab] of table) {
    assert.ok(Math.abs(s.betas[t] - beta) / beta < 2e-3, `β_${t} = ${s.betas[t]}, table ${beta}`);
    assert.ok(Math.abs(s.alphasCumprod[t] - ab) / ab < 2e-3, `ᾱ_${t} = ${s.alphasCumprod[t]}, table ${ab}`);
  }
});

test('timestep lists: pipeline "leading" spacing and previous_timestep', () => {
  assert.deepEqual(pipelineTimesteps(5), [800, 600, 400, 200, 0]);
  const t20 = pipelineTimesteps(20);
  assert.equal(t20.length, 20);
  assert.deepEqual([t20[0], t20[1], t20[19]], [950, 900, 0]);
  assert.deepEqual(pipelineTimesteps(40).slice(0, 2), [975, 950]);
  const strided = Array.from({ length: 34 }, (_, i) => 990 - 30 * i); // the course's list (SPEC §1.4)
  assert.equal(previousTimestep(strided, 990), 960);
  assert.equal(previousTimestep(strided, 30), 0);
  assert.equal(previousTimestep(strided, 0), -1);
  assert.throws(() => previousTimestep(strided, 500), /timestep 500 is not in the scheduler's timestep list/);
  assert.throws(() => pipelineTimesteps(0), /num_inference_steps/);
});

/** torch.quantile(|x|, q) with linear interpolation, in float64. */
function quantile(xs: number[], q: number): number {
  const a = xs.map(Math.abs).sort((x, y) => x - y);
  const pos = q * (a.length - 1);
  const lo = Math.floor(pos);
  return a[lo] + (a[Math.min(lo + 1, a.length - 1)] - a[lo]) * (pos - lo);
}

test('dynamic thresholding: per-sample quantile clamped to [1, max], then clamp and divide', () => {
  const B = 3,
    n = 4 * 4 * 3;
  const scales = [0.5, 1.3, 4]; // s below 1 → 1; inside → quantile; above max → 1.5
  const x = Float32Array.from(randArray(B * n, 9, 1).map((v, i) => v * scales[Math.floor(i / n)]));
  const xt = tf.tensor4d(x, [B, 4, 4, 3]);
  const { x0, s } = dynamicThreshold(xt, 0.95, 1.5);
  const got = x0.dataSync();
  for (let b = 0; b < B; b++) {
    const row = Array.from(x.subarray(b * n, (b + 1) * n));
    const want = Math.min(Math.max(quantile(row, 0.95), 1), 1.5);
    assert.ok(Math.abs(s[b] - want) < 1e-6, `s[${b}] = ${s[b]}, want ${want}`);
    row.forEach((v, i) => assert.ok(Math.abs(got[b * n + i] - Math.min(Math.max(v, -want), want) / want) < 1e-6));
  }
  assert.equal(s[0], 1);
  assert.equal(s[2], 1.5);
  assert.ok(s[1] > 1 && s[1] < 1.5);
  tf.dispose([xt, x0]);
});

test('DDPMScheduler.step (IF stage I settings): thresholded x̂₀, posterior mean and learned-range noise, as a float64 closed form', () => {
  const sch = ifSchedule();
  const ts = pipelineTimesteps(20);
  const shape = [2, 4, 4, 3];
  const n = 2 * 4 * 4 * 3;
  const xt = Float32Array.from(randArray(n, 1, 1.5));
  const eps = Float32Array.from(randArray(n, 2, 1.5));
  const v = Float32Array.from(randArray(n, 3, 1));
  const before = tf.memory().numTensors;
  for (const t of [900, 0]) {
    const tPrev = previousTimestep(ts, t);
    const scheduler = new DDPMScheduler(sch, STAGE_I_CONFIG);
    const s4 = shape as [number, number, number, number];
    const out = tf.tidy(() =>
      scheduler.step(tf.tensor4d(xt, s4), { eps: tf.tensor4d(eps, s4), variance: tf.tensor4d(v, s4) }, t, tPrev, new Rng(42)).dataSync(),
    );
    const z = t > 0 ? tf.tidy(() => new Rng(42).normal(shape).dataSync()) : new Float32Array(n);
    const ab = sch.alphasCumprod[t];
    const abp = tPrev < 0 ? 1 : sch.alphasCumprod[tPrev];
    const beta = 1 - ab / abp;
    const post = Math.max(((1 - abp) / (1 - ab)) * beta, 1e-20);
    const per = n / 2;
    for (let b = 0; b < 2; b++) {
      const x0 = Array.from({ length: per }, (_, i) => (xt[b * per + i] - Math.sqrt(1 - ab) * eps[b * per + i]) / Math.sqrt(ab));
      const s = Math.min(Math.max(quantile(x0, 0.95), 1), 1.5);
      for (let i = 0; i < per; i++) {
        const k = b * per + i;
        const x0t = Math.min(Math.max(x0[i], -s), s) / s;
        const mean = ((Math.sqrt(abp) * beta) / (1 - ab)) * x0t + ((Math.sqrt(ab / abp) * (1 - abp)) / (1 - ab)) * xt[k];
        const frac = (v[k] + 1) / 2;
        const logv = frac * Math.log(beta) + (1 - frac) * Math.log(post);
        const want = mean + (t > 0 ? Math.exp(0.5 * logv) * z[k] : 0);
        assert.ok(Math.abs(out[k] - want) < 2e-5 * (1 + Math.abs(want)), `t=${t} k=${k}: ${out[k]} vs ${want}`);
      }
    }
  }
  assert.equal(tf.memory().numTensors, before);
});

test("a model folder's scheduler/scheduler_config.json is read; without one, IF's published settings are used", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'if-sched-'));
  try {
    const none = loadSchedulerConfig(dir, STAGE_I_CONFIG);
    assert.deepEqual(none.scheduler.config, STAGE_I_CONFIG);
    assert.equal(none.source, 'built-in IF settings');
    fs.mkdirSync(path.join(dir, 'scheduler'));
    const cfg = {
      _class_name: 'DDPMScheduler',
      beta_schedule: 'squaredcos_cap_v2',
      num_train_timesteps: 1000,
      variance_type: 'learned_range',
      thresholding: true,
      dynamic_thresholding_ratio: 0.9,
      sample_max_value: 1.2,
      clip_sample: true,
      clip_sample_range: 1.0,
      steps_offset: 1,
    };
    fs.writeFileSync(path.join(dir, 'scheduler', 'scheduler_config.json'), JSON.stringify(cfg));
    const read = loadSchedulerConfig(dir, STAGE_I_CONFIG);
    assert.deepEqual(read.scheduler.config, {
      varianceType: 'learned_range',
      thresholding: { ratio: 0.9, sampleMaxValue: 1.2 },
      clipSample: 1,
    });
    assert.equal(read.stepsOffset, 1);
    fs.writeFileSync(path.join(dir, 'scheduler', 'scheduler_config.json'), JSON.stringify({ ...cfg, prediction_type: 'v_prediction' }));
    assert.throws(() => loadSchedulerConfig(dir, STAGE_I_CONFIG), /prediction_type "v_prediction" is not supported/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
