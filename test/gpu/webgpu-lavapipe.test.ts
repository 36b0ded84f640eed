/**
 * The WebGPU engine (tfjs-backend-webgpu on Dawn) on Mesa's software Vulkan driver (lavapipe):
 * one training step and one sampling step of each Part B model, checked against the cpu backend
 * on identical weights and data. This keeps the GPU code path exercised where no GPU exists.
 *
 * Needs a Vulkan loader and Mesa >= 23 lavapipe (scripts/setup-vulkan.sh installs them); without
 * them the tests skip with the reason, or fail when DIFFUSION_REQUIRE_WEBGPU=1 (CI sets it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { UNet, UNetKind } from '../../lib/models/unet';
import { PARTB_KINDS, makeBatch, lossAndGrads, trainStep, newAdam, sampleStep, predictorFor, ddpmSchedule } from '../../lib/gpu/hostSteps';
import { Rng } from '../../lib/tensor/random';
import { Trainer } from '../../lib/training/trainer';
import { presetConfig } from '../../lib/training/presets';
import * as os from 'node:os';
import * as path from 'node:path';

const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

/** Why WebGPU cannot run here, or undefined when a Vulkan driver is installed. */
function missingVulkan(): string | undefined {
  const icds = ICD_DIRS.flatMap((d) => (fs.existsSync(d) ? fs.readdirSync(d).filter((f) => f.endsWith('.json')) : []));
  if (icds.length === 0 && !process.env.VK_DRIVER_FILES && !process.env.VK_ICD_FILENAMES) {
    return 'no Vulkan driver (ICD) installed: run `bash scripts/setup-vulkan.sh` (Mesa lavapipe) to run the WebGPU tests';
  }
  return undefined;
}

const D = 4; // tiny: lavapipe runs every shader on the CPU
const B = 2;
const schedule = ddpmSchedule();

/** Max |a−b| over max(|a|, floor): a relative error that tolerates near-zero entries. */
function relErr(a: Float32Array | number[], b: Float32Array | number[], floor = 1e-3): number {
  let num = 0;
  let den = floor;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(a[i]));
  }
  return num / den;
}

interface StepResult {
  loss: number;
  grads: Map<string, Float32Array>;
  lossAfter: number;
  sample: Float32Array;
}

/** Runs on the active backend: gradients, one Adam step, the loss again, one eval sampling step. */
async function runModel(
  kind: UNetKind,
  weights?: Map<string, Float32Array>,
): Promise<{ result: StepResult; weights: Map<string, Float32Array> }> {
  const net = new UNet({ kind, D }, 7);
  if (weights) {
    for (const [name, v] of net.store.named()) tf.tidy(() => v.assign(tf.tensor(weights.get(name)!, v.shape)));
  }
  // Reads are async throughout: WebGPU in Node has no synchronous readback.
  const initial = new Map<string, Float32Array>();
  for (const [n, v] of net.store.named()) initial.set(n, (await v.data()) as Float32Array);
  const batch = makeBatch(B, 11, schedule.T);
  const { loss, grads } = await lossAndGrads(net, batch, schedule);
  const g = new Map<string, Float32Array>();
  for (const [n, t] of grads) g.set(n, (await t.data()) as Float32Array);
  grads.forEach((t) => t.dispose());
  const adam = newAdam(net);
  tf.dispose(trainStep(net, adam, batch, schedule, 1e-3));
  const after = await lossAndGrads(net, batch, schedule);
  after.grads.forEach((t) => t.dispose());
  const rng = new Rng(5);
  const sample = tf.tidy(() => {
    const xt = rng.normal([B, 28, 28, 1]) as tf.Tensor4D;
    const z = rng.normal([B, 28, 28, 1]) as tf.Tensor4D;
    return sampleStep(predictorFor(net, [3, 8]), xt, 150, 149, z, schedule);
  });
  const s = (await sample.data()) as Float32Array;
  sample.dispose();
  adam.dispose();
  net.dispose();
  return { result: { loss, grads: g, lossAfter: after.loss, sample: s }, weights: initial };
}

const reason = missingVulkan();
const required = process.env.DIFFUSION_REQUIRE_WEBGPU === '1';

test('WebGPU on a software Vulkan adapter: train and sample each Part B model like the cpu backend', { timeout: 300_000 }, async (t) => {
  if (reason) {
    assert.ok(!required, `DIFFUSION_REQUIRE_WEBGPU=1 but ${reason}`);
    t.skip(reason);
    return;
  }
  let info;
  try {
    info = await initEngine({ engine: 'webgpu', quiet: true });
  } catch (e) {
    const msg = `WebGPU did not start (${(e as Error).message}); Mesa older than 23 is refused by Dawn: run \`bash scripts/setup-vulkan.sh\``;
    assert.ok(!required, msg);
    t.skip(msg);
    return;
  }
  // The adapter report the engine prints: a Vulkan adapter with sane limits.
  assert.equal(info.name, 'webgpu');
  assert.equal(info.backend, 'webgpu');
  assert.ok(info.adapter, 'engine reports its adapter');
  assert.ok(info.adapter.vendor.length > 0 || info.adapter.description.length > 0, 'adapter has a vendor or description');
  const limits = info.adapter.limits;
  assert.ok(limits && limits.maxStorageBufferBindingSize >= 128 * 1024 * 1024, 'storage bindings of at least 128 MiB');
  t.diagnostic(`adapter: ${JSON.stringify(info.adapter)}`);

  for (const kind of PARTB_KINDS) {
    await t.test(kind, async () => {
      await tf.setBackend('cpu');
      const ref = await runModel(kind);
      await tf.setBackend('webgpu');
      const before = tf.memory().numTensors;
      const t0 = Date.now();
      const got = (await runModel(kind, ref.weights)).result;
      t.diagnostic(`${kind}: webgpu train+sample step ${Date.now() - t0} ms (first run: includes shader compiles)`);
      assert.equal(tf.memory().numTensors, before, 'no tensors leak');
      assert.ok(Number.isFinite(got.loss) && got.loss > 0, `finite loss ${got.loss}`);
      assert.ok(Math.abs(got.loss - ref.result.loss) <= 1e-3 * ref.result.loss, `loss ${got.loss} vs cpu ${ref.result.loss}`);
      for (const [name, g] of ref.result.grads) {
        const e = relErr(g, got.grads.get(name)!);
        assert.ok(e < 2e-2, `gradient of ${name} differs from cpu by ${e.toExponential(2)} (relative)`);
      }
      // One Adam step on the same batch lowers its loss, on both backends alike.
      assert.ok(got.lossAfter < got.loss, `loss fell after one step: ${got.loss} → ${got.lossAfter}`);
      assert.ok(
        Math.abs(got.lossAfter - ref.result.lossAfter) <= 1e-2 * ref.result.lossAfter,
        `loss after the step ${got.lossAfter} vs cpu ${ref.result.lossAfter}`,
      );
      const e = relErr(ref.result.sample, got.sample);
      assert.ok(e < 1e-2, `sampling step differs from cpu by ${e.toExponential(2)} (relative)`);
    });
  }

  await t.test('the Part B Trainer (trainStepAsync, async checkpoint) on WebGPU matches cpu', async () => {
    const x = new Float32Array(B * 28 * 28).map((_, i) => (i % 29) / 29);
    const run = async () => {
      const tr = new Trainer(presetConfig('class', 'cpu', { D, batch: B, seed: 3 }));
      const xt = tf.tensor4d(x, [B, 28, 28, 1]);
      const losses = [await tr.trainStepAsync(xt, [1, 2], 1e-3), await tr.trainStepAsync(xt, [1, 2], 1e-3)];
      xt.dispose();
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'webgpu-ckpt-')), 'last.ckpt');
      await tr.saveCheckpoint(file);
      tr.dispose();
      return { losses, file };
    };
    await tf.setBackend('cpu');
    const ref = await run();
    await tf.setBackend('webgpu');
    const before = tf.memory().numTensors;
    const got = await run();
    assert.equal(tf.memory().numTensors, before, 'no tensors leak');
    for (let i = 0; i < 2; i++)
      assert.ok(
        Math.abs(got.losses[i] - ref.losses[i]) <= 1e-3 * ref.losses[i],
        `step ${i + 1} loss ${got.losses[i]} vs cpu ${ref.losses[i]}`,
      );
    const resumed = Trainer.resume(got.file);
    assert.equal(resumed.state.step, 2, 'the checkpoint written on WebGPU resumes at step 2');
    resumed.dispose();
  });
});
