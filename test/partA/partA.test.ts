/**
 * Part A's algorithms (lib/algorithms/) on two different closed-form Gaussian oracles
 * (test/partA/models.ts), against a float64 plain-TS reference replaying the same noise draws,
 * closed forms (posterior mean, exact sampled distribution) and the identities of the spec.
 */
import { before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { Rng } from '../../lib/tensor/random';
import * as A from '../../lib/algorithms';
import type { Denoiser, Prediction } from '../../lib/models/denoiser';
import { modelA, modelB, type ModelPair } from './models';
import {
  Replay,
  ab,
  blurRef,
  cfgRef,
  epsRef,
  flipRef,
  forwardRef,
  loopRef,
  maxAbsDiff,
  tileV,
  toF64,
  type Est,
  type RefModel,
} from './reference';
import { mulberry32 } from '../helpers';

before(async () => {
  await initEngine({ quiet: true });
});

/** A random image batch in the model's value range, as a tensor and as float64. */
function randomImage(m: RefModel, B: number, seed: number, lo = -1, hi = 1): { t: tf.Tensor4D; f: Float64Array } {
  const r = mulberry32(seed);
  const a = new Float32Array(B * m.H * m.W * m.C);
  for (let i = 0; i < a.length; i++) a[i] = lo + (hi - lo) * r();
  return { t: tf.tensor4d(a, [B, m.H, m.W, m.C]), f: Float64Array.from(a) };
}

const run = <T extends tf.Tensor>(f: () => T): Float64Array => {
  const t = f();
  const d = toF64(t);
  t.dispose();
  return d;
};

/** float64 estimators of the reference */
const plain =
  (m: RefModel, B: number, p: string) =>
  (x: Float64Array, t: number): Est => ({ eps: epsRef(m, x, t, p), v: tileV(m, t, B) });
const cfg =
  (m: RefModel, B: number, p: string, u: string, g: number) =>
  (x: Float64Array, t: number): Est => ({
    eps: cfgRef(epsRef(m, x, t, u), epsRef(m, x, t, p), g),
    v: tileV(m, t, B),
  });

describe('schedule helpers', () => {
  test('strided timesteps: the seed 990→0 by 30 at T=1000, 290→0 by 10 at T=300, configurable', () => {
    assert.deepEqual(
      A.stridedTimesteps(1000),
      Array.from({ length: 34 }, (_, i) => 990 - 30 * i),
    );
    assert.deepEqual(
      A.stridedTimesteps(300),
      Array.from({ length: 30 }, (_, i) => 290 - 10 * i),
    );
    assert.deepEqual(
      A.stridedTimesteps(100),
      Array.from({ length: 34 }, (_, i) => 99 - 3 * i),
    );
    assert.deepEqual(A.stridedTimesteps(1000, { start: 20, stride: 7 }), [20, 13, 6, 0]);
    // SDEdit levels of the seed (SPEC §1.7): t = 960, 900, 840, 780, 690, 390
    const ts = A.stridedTimesteps(1000);
    assert.deepEqual(
      A.SDEDIT_I_STARTS.map((i) => ts[i]),
      [960, 900, 840, 780, 690, 390],
    );
    assert.throws(() => A.stridedTimesteps(0), /T = 0/);
    assert.throws(() => A.stridedTimesteps(300, { start: 300 }), /start 300/);
    assert.throws(() => A.stridedTimesteps(300, { stride: 0 }), /stride 0/);
  });

  test('§1.1 levels 250/500/750 of 1000 scale to the model T', () => {
    assert.deepEqual(
      [250, 500, 750].map((t) => A.scaleTimestep(t, 300)),
      [75, 150, 225],
    );
    assert.deepEqual(
      [250, 500, 750].map((t) => A.scaleTimestep(t, 1000)),
      [250, 500, 750],
    );
  });

  test('blur parameters scale with image size as Visual Anagrams does', () => {
    assert.deepEqual(A.hybridBlur(64), { kernelSize: 33, sigma: 2 });
    assert.deepEqual(A.hybridBlur(256), { kernelSize: 133, sigma: 8 });
    assert.deepEqual(A.hybridBlur(28), { kernelSize: 15, sigma: 0.875 });
    assert.throws(() => A.gaussianKernel1d(4, 1), /odd/);
    assert.throws(() => A.gaussianKernel1d(5, 0), /sigma/);
  });
});

describe('forward process and blur', () => {
  test('forward: mean √ᾱ x₀ and variance 1−ᾱ (sampling error), and equal to the float64 formula', () => {
    const { den, ref } = modelA();
    const t = 150;
    const a = den.schedule.alphasCumprod[t];
    const x0 = tf.fill([64, 12, 10, 1], 0.4) as tf.Tensor4D;
    const xt = run(() => A.forward(x0, t, den.schedule, new Rng(3)));
    const N = xt.length;
    const mean = xt.reduce((s, v) => s + v, 0) / N;
    const variance = xt.reduce((s, v) => s + (v - mean) ** 2, 0) / (N - 1);
    assert.ok(Math.abs(mean - Math.sqrt(a) * 0.4) < (4 * Math.sqrt(1 - a)) / Math.sqrt(N), `mean ${mean}`);
    assert.ok(Math.abs(variance - (1 - a)) < 4 * (1 - a) * Math.sqrt(2 / N), `variance ${variance} vs ${1 - a}`);
    const expect = forwardRef(ref, new Float64Array(N).fill(0.4), t, new Replay(3).next([64, 12, 10, 1]));
    assert.ok(maxAbsDiff(xt, expect) < 1e-5);
    assert.deepEqual(Array.from(run(() => A.forward(x0, -1, den.schedule, new Rng(1)))), Array.from(x0.dataSync()));
    assert.throws(() => A.forward(x0, 300, den.schedule, new Rng(1)), /outside 0\.\.299/);
    x0.dispose();
  });

  test('gaussianBlur equals a direct float64 convolution with reflect borders (kernels narrower and wider than the image)', () => {
    const r = mulberry32(7);
    const [B, H, W, C] = [2, 12, 10, 3];
    const x = Float64Array.from({ length: B * H * W * C }, () => r() * 2 - 1);
    const xt = tf.tensor4d(Float32Array.from(x), [B, H, W, C]);
    for (const [k, s] of [
      [1, 1],
      [5, 1],
      [15, 0.875],
      [33, 2],
      [33, 6],
    ] as const) {
      const got = run(() => A.gaussianBlur(xt, { kernelSize: k, sigma: s }));
      assert.ok(maxAbsDiff(got, blurRef(Float64Array.from(xt.dataSync()), B, H, W, C, k, s)) < 1e-5, `k=${k}`);
    }
    const c = tf.fill([1, 9, 7, 1], 0.7) as tf.Tensor4D;
    assert.ok(
      maxAbsDiff(
        run(() => A.gaussianBlur(c, { kernelSize: 33, sigma: 2 })),
        new Array(63).fill(0.7),
      ) < 1e-6,
    );
    const hp = run(() => tf.tidy(() => tf.add(A.gaussianBlur(xt, A.hybridBlur(10)), A.highPass(xt, A.hybridBlur(10)))));
    assert.ok(maxAbsDiff(hp, xt.dataSync()) < 1e-5, 'lowpass + highpass = identity');
    tf.dispose([xt, c]);
  });
});

test('bestBlurDenoise keeps the candidate closest to the clean image', () => {
  const r = mulberry32(3);
  const clean = tf.tensor4d(
    Float32Array.from({ length: 2 * 12 * 10 }, (_, i) => (Math.floor(i / 10) % 12 < 6 ? 1 : 0)),
    [2, 12, 10, 1],
  );
  const noisy = tf.tidy(() =>
    tf.add(
      clean,
      tf.tensor4d(
        Float32Array.from({ length: 240 }, () => (r() - 0.5) * 1.2),
        [2, 12, 10, 1],
      ),
    ),
  ) as tf.Tensor4D;
  const cands = [0.3, 0.8, 1.5, 4].map((sigma) => ({ sigma, kernelSize: 2 * Math.ceil(2 * sigma) + 1 }));
  const mses = cands.map((b) => {
    const y = A.gaussianBlur(noisy, b);
    const d = y.dataSync();
    const c = clean.dataSync();
    let s = 0;
    for (let i = 0; i < d.length; i++) s += (d[i] - c[i]) ** 2;
    y.dispose();
    return s / d.length;
  });
  const best = A.bestBlurDenoise(noisy, clean, cands);
  const k = mses.indexOf(Math.min(...mses));
  assert.deepEqual(best.blur, cands[k]);
  assert.ok(Math.abs(best.mse - mses[k]) < 1e-6);
  assert.ok(new Set(mses.map((m) => m.toFixed(4))).size > 1, 'candidates differ');
  tf.dispose([clean, noisy, best.image]);
});

describe('one-step denoising', () => {
  for (const mk of [modelA, modelB]) {
    test(`x̂₀ equals the exact posterior mean E[x₀|x_t] (${mk.name})`, () => {
      const { den, ref, p1 } = mk();
      for (const t of [0, Math.floor(den.schedule.T / 2), den.schedule.T - 1]) {
        const x = randomImage(ref, 2, 11 + t);
        const got = run(() => A.oneStepDenoise(den, x.t, t, p1));
        const a = ab(ref, t);
        const { mu, s } = ref.classes[p1];
        const n = mu.length;
        const want = x.f.map((v, i) => mu[i % n] + (Math.sqrt(a) * s * s * (v - Math.sqrt(a) * mu[i % n])) / (a * s * s + 1 - a));
        assert.ok(maxAbsDiff(got, want) < 2e-4 * Math.max(1, 1 / Math.sqrt(a)), `t=${t}: ${maxAbsDiff(got, want)}`);
        x.t.dispose();
      }
    });
  }
});

describe('every loop matches a float64 reference with the same noise draws', () => {
  for (const mk of [modelA, modelB]) {
    const pair: () => ModelPair = mk;
    test(`all algorithms on ${mk.name}`, () => {
      const { den, ref, p1, p2 } = pair();
      const B = 2;
      const shape = [B, ref.H, ref.W, ref.C];
      const ts = A.stridedTimesteps(den.schedule.T);
      const nb = den.neutralPrompt;
      const u = den.emptyPrompt;
      const tol = 1e-4;
      const check = (what: string, got: Float64Array, want: Float64Array) => {
        const d = maxAbsDiff(got, want);
        if (process.env.PARTA_VERBOSE) console.log(`${den.name} ${what}: max |float32 − float64| = ${d.toExponential(2)}`);
        assert.ok(d < tol, `${what}: max |float32 − float64| = ${d}`);
      };
      const img = randomImage(ref, B, 5, den.valueRange[0], den.valueRange[1]);

      // §1.4 iterative_denoise from i_start = 10
      check(
        'iterativeDenoise',
        run(() => A.iterativeDenoise(den, img.t, 10, { varianceType: ref.varianceType, rng: new Rng(1), prompt: p1 })),
        loopRef(ref, img.f, B, ts, 10, plain(ref, B, p1), new Replay(1)),
      );
      // §1.5 sampling: start noise, then the loop from i_start = 0 under the neutral prompt
      {
        const rp = new Replay(2);
        check(
          'sample',
          run(() => A.sample(den, B, { varianceType: ref.varianceType, rng: new Rng(2) })),
          loopRef(ref, rp.next(shape), B, ts, 0, plain(ref, B, nb), rp),
        );
      }
      // §1.6 CFG loop and CFG sampling
      check(
        'iterativeDenoiseCfg',
        run(() => A.iterativeDenoiseCfg(den, img.t, 5, { varianceType: ref.varianceType, rng: new Rng(3), prompt: p1, gamma: 7 })),
        loopRef(ref, img.f, B, ts, 5, cfg(ref, B, p1, u, 7), new Replay(3)),
      );
      {
        const rp = new Replay(4);
        check(
          'sampleCfg',
          run(() => A.sampleCfg(den, B, { varianceType: ref.varianceType, rng: new Rng(4), gamma: 5 })),
          loopRef(ref, rp.next(shape), B, ts, 0, cfg(ref, B, nb, u, 5), rp),
        );
      }
      // §1.7 SDEdit and §1.7.3 text-conditional image-to-image: forward noise, then the CFG loop
      for (const [iStart, prompt] of [
        [3, nb],
        [7, p2],
      ] as const) {
        const rp = new Replay(5 + iStart);
        const noisy = forwardRef(ref, img.f, ts[iStart], rp.next(shape));
        const want = loopRef(ref, noisy, B, ts, iStart, cfg(ref, B, prompt, u, 7), rp);
        const got =
          prompt === nb
            ? run(() => A.sdedit(den, img.t, iStart, { varianceType: ref.varianceType, rng: new Rng(5 + iStart) }))
            : run(() => A.textImageToImage(den, img.t, iStart, { varianceType: ref.varianceType, rng: new Rng(5 + iStart), prompt }));
        check(`sdedit i_start=${iStart}`, got, want);
      }
      // §1.7.2 inpainting: per step the variance draw, then the re-noising draw (Eq. A.5)
      {
        const m = new Float64Array(ref.H * ref.W);
        for (let h = 0; h < ref.H; h++) for (let w = 0; w < ref.W; w++) m[h * ref.W + w] = h < ref.H / 2 && w > 2 ? 1 : 0;
        const mask = tf.tensor4d(Float32Array.from(m), [1, ref.H, ref.W, 1]);
        const rp = new Replay(9);
        const start = rp.next(shape);
        const want = loopRef(ref, start, B, ts, 0, cfg(ref, B, p1, u, 7), rp, (x, tp) => {
          const re = forwardRef(ref, img.f, tp, rp.next(shape));
          return x.map((v, i) => {
            const mm = m[Math.floor(i / ref.C) % (ref.H * ref.W)];
            return mm * v + (1 - mm) * re[i];
          });
        });
        check(
          'inpaint',
          run(() => A.inpaint(den, img.t, mask, { varianceType: ref.varianceType, rng: new Rng(9), prompt: p1 })),
          want,
        );
        mask.dispose();
      }
      // §1.8 visual anagrams: ε = (CFG(x,p1) + flip(CFG(flip x, p2)))/2, variances averaged likewise
      {
        const rp = new Replay(10);
        const fl = (x: Float64Array) => flipRef(x, B, ref.H, ref.W, ref.C);
        const est = (x: Float64Array, t: number): Est => {
          const e1 = cfgRef(epsRef(ref, x, t, u), epsRef(ref, x, t, p1), 7);
          const e2 = fl(cfgRef(epsRef(ref, fl(x), t, u), epsRef(ref, fl(x), t, p2), 7));
          const v = tileV(ref, t, B);
          const v2 = fl(v);
          return { eps: e1.map((a, i) => (a + e2[i]) / 2), v: v.map((a, i) => (a + v2[i]) / 2) };
        };
        check(
          'visualAnagrams',
          run(() => A.visualAnagrams(den, p1, p2, { varianceType: ref.varianceType, rng: new Rng(10), n: B })),
          loopRef(ref, rp.next(shape), B, ts, 0, est, rp),
        );
      }
      // §1.9 hybrids: lowpass(CFG(p1)) + highpass(CFG(p2)), blur k=33 σ=2 at 64 px scaled
      {
        const rp = new Replay(11);
        const bl = A.hybridBlur(ref.W);
        const blur = (x: Float64Array) => blurRef(x, B, ref.H, ref.W, ref.C, bl.kernelSize, bl.sigma);
        const est = (x: Float64Array, t: number): Est => {
          const e1 = cfgRef(epsRef(ref, x, t, u), epsRef(ref, x, t, p1), 7);
          const e2 = cfgRef(epsRef(ref, x, t, u), epsRef(ref, x, t, p2), 7);
          const l1 = blur(e1);
          const l2 = blur(e2);
          return { eps: l1.map((a, i) => a + e2[i] - l2[i]), v: tileV(ref, t, B) };
        };
        check(
          'makeHybrids',
          run(() => A.makeHybrids(den, p1, p2, { varianceType: ref.varianceType, rng: new Rng(11), n: B })),
          loopRef(ref, rp.next(shape), B, ts, 0, est, rp),
        );
      }
      img.t.dispose();
    });
  }
});

describe('identities of the spec', () => {
  test('sampling reproduces the data distribution N(μ, s²) within sampling error, and follows the exact law of the strided loop', () => {
    const { den, ref } = modelA();
    const n = 200;
    for (const stride of [1, 10]) {
      const ts = A.stridedTimesteps(den.schedule.T, { stride });
      for (const prompt of ['neutral', 'seven']) {
        const x = run(() => A.sample(den, n, { varianceType: ref.varianceType, rng: new Rng(21 + stride), prompt, timesteps: ts }));
        const { mu, s } = ref.classes[prompt];
        const P = mu.length;
        // Exact law of the loop for Gaussian data: each step is affine in x plus Gaussian noise.
        let m = new Float64Array(P); // start: N(0, 1)
        let v = 1;
        for (let i = 0; i < ts.length - 1; i++) {
          const a = ab(ref, ts[i]);
          const ap = ab(ref, ts[i + 1]);
          const beta = 1 - a / ap;
          const k = (Math.sqrt(a) * s * s) / (a * s * s + 1 - a); // x̂₀ = μ + k (x − √ᾱ μ)
          const cx0 = (Math.sqrt(ap) * beta) / (1 - a);
          const cxt = (Math.sqrt(a / ap) * (1 - ap)) / (1 - a);
          const Acoef = cx0 * k + cxt;
          m = m.map((mm, j) => Acoef * mm + cx0 * (mu[j] - k * Math.sqrt(a) * mu[j]));
          v = Acoef * Acoef * v + beta; // fixed_large variance
        }
        let worstLaw = 0;
        let worstMu = 0;
        let pooledLaw = 0;
        let pooledMu = 0;
        for (let j = 0; j < P; j++) {
          let sum = 0;
          for (let b = 0; b < n; b++) sum += x[b * P + j];
          worstLaw = Math.max(worstLaw, Math.abs(sum / n - m[j]));
          worstMu = Math.max(worstMu, Math.abs(sum / n - mu[j]));
          for (let b = 0; b < n; b++) {
            pooledLaw += (x[b * P + j] - m[j]) ** 2;
            pooledMu += (x[b * P + j] - mu[j]) ** 2;
          }
        }
        const se = (sd: number) => (4.5 * sd) / Math.sqrt(n);
        const seVar = (vv: number) => 4 * vv * Math.sqrt(2 / (n * P));
        pooledLaw /= n * P;
        pooledMu /= n * P;
        const tag = `${prompt}, stride ${stride}`;
        assert.ok(worstLaw < se(Math.sqrt(v)), `${tag}: per-pixel mean ${worstLaw} off the exact loop law`);
        assert.ok(Math.abs(pooledLaw - v) < seVar(v), `${tag}: variance ${pooledLaw} vs exact loop law ${v}`);
        if (stride === 1) {
          // the full ancestral loop samples the data law itself (up to ᾱ₀ < 1 and discretization, ≤ 4% in s)
          assert.ok(worstMu < se(s) + 0.002, `${tag}: per-pixel mean off μ by ${worstMu}`);
          assert.ok(Math.abs(Math.sqrt(pooledMu) - s) < 0.04 * s + Math.sqrt(seVar(s * s)), `${tag}: std ${Math.sqrt(pooledMu)} vs s ${s}`);
        } else {
          // the seed's 30 strided steps keep the mean; fixed_large (β of a 10-step stride) widens s by < 20%
          assert.ok(maxAbsDiff(m, mu) < 0.002, `${tag}: loop mean vs μ ${maxAbsDiff(m, mu)}`);
          assert.ok(Math.sqrt(v) > s && Math.sqrt(v) < 1.2 * s, `${tag}: loop std ${Math.sqrt(v)} vs s ${s}`);
        }
      }
    }
  });

  for (const mk of [modelA, modelB]) {
    test(`CFG with γ=1 is the conditional loop and γ=0 the unconditional one (${mk.name})`, () => {
      const { den, ref, p1 } = mk();
      const img = randomImage(ref, 1, 31);
      const c1 = run(() => A.iterativeDenoiseCfg(den, img.t, 4, { varianceType: ref.varianceType, rng: new Rng(8), prompt: p1, gamma: 1 }));
      const c0 = run(() => A.iterativeDenoiseCfg(den, img.t, 4, { varianceType: ref.varianceType, rng: new Rng(8), prompt: p1, gamma: 0 }));
      const pc = run(() => A.iterativeDenoise(den, img.t, 4, { varianceType: ref.varianceType, rng: new Rng(8), prompt: p1 }));
      const pu = run(() => A.iterativeDenoise(den, img.t, 4, { varianceType: ref.varianceType, rng: new Rng(8), prompt: den.emptyPrompt }));
      assert.ok(maxAbsDiff(c1, pc) < 1e-4);
      assert.ok(maxAbsDiff(c0, pu) < 1e-4);
      assert.ok(maxAbsDiff(pc, pu) > 1e-2, 'the two prompts differ, so the checks above mean something');
      img.t.dispose();
    });

    test(`inpainting keeps the known region equal to the re-noised original at every step (${mk.name})`, () => {
      const { den, ref, p1 } = mk();
      const shape = [1, ref.H, ref.W, ref.C];
      const img = randomImage(ref, 1, 41, den.valueRange[0], den.valueRange[1]);
      const mArr = new Float32Array(ref.H * ref.W).map((_, i) => (Math.floor(i / ref.W) < ref.H / 3 ? 1 : 0));
      const mask = tf.tensor4d(mArr, [1, ref.H, ref.W, 1]);
      const ts = A.stridedTimesteps(den.schedule.T);
      const rp = new Replay(12);
      rp.next(shape); // the starting noise
      let steps = 0;
      const known = (i: number) => mArr[Math.floor(i / ref.C)] === 0;
      const out = run(() =>
        A.inpaint(den, img.t, mask, {
          rng: new Rng(12),
          prompt: p1,
          onStep: ({ t, x }) => {
            rp.next(shape); // the variance draw
            const want = forwardRef(ref, img.f, t, rp.next(shape));
            const got = x.dataSync();
            let d = 0;
            for (let i = 0; i < got.length; i++) if (known(i)) d = Math.max(d, Math.abs(got[i] - want[i]));
            assert.ok(d < 1e-5, `t=${t}: known region off by ${d}`);
            steps++;
          },
        }),
      );
      assert.equal(steps, ts.length - 1);
      let dKnown = 0;
      let dNew = 0;
      for (let i = 0; i < out.length; i++) {
        const d = Math.abs(out[i] - img.f[i]);
        if (known(i)) dKnown = Math.max(dKnown, d);
        else dNew = Math.max(dNew, d);
      }
      assert.ok(dKnown < 6 * Math.sqrt(1 - ab(ref, 0)) + 1e-5, `known region ends ${dKnown} from the original`);
      assert.ok(dNew > 0.1, 'the masked region was regenerated');
      tf.dispose([img.t, mask]);
    });

    test(`a hybrid of one prompt with itself is plain CFG sampling (${mk.name})`, () => {
      const { den, ref, p1 } = mk();
      const h = run(() => A.makeHybrids(den, p1, p1, { varianceType: ref.varianceType, rng: new Rng(51), n: 2 }));
      const c = run(() => A.sampleCfg(den, 2, { varianceType: ref.varianceType, rng: new Rng(51), prompt: p1 }));
      assert.ok(maxAbsDiff(h, c) < 1e-4, `${maxAbsDiff(h, c)}`);
    });
  }

  test('anagrams of a flip-symmetric oracle: p with itself is plain CFG, and the two prompts commute', () => {
    const { den, ref, p1, p2 } = modelA({ symmetric: true });
    const a = run(() => A.visualAnagrams(den, p1, p1, { varianceType: ref.varianceType, rng: new Rng(61), n: 2 }));
    const c = run(() => A.sampleCfg(den, 2, { varianceType: ref.varianceType, rng: new Rng(61), prompt: p1 }));
    assert.ok(maxAbsDiff(a, c) < 1e-4, `${maxAbsDiff(a, c)}`);
    const ab12 = run(() => A.visualAnagrams(den, p1, p2, { varianceType: ref.varianceType, rng: new Rng(62), n: 2 }));
    const ab21 = run(() => A.visualAnagrams(den, p2, p1, { varianceType: ref.varianceType, rng: new Rng(62), n: 2 }));
    assert.ok(maxAbsDiff(ab12, ab21) < 1e-4);
    // on the non-symmetric oracle the order matters
    const ns = modelA();
    const n12 = run(() => A.visualAnagrams(ns.den, p1, p2, { varianceType: ref.varianceType, rng: new Rng(62), n: 2 }));
    const n21 = run(() => A.visualAnagrams(ns.den, p2, p1, { varianceType: ref.varianceType, rng: new Rng(62), n: 2 }));
    assert.ok(maxAbsDiff(n12, n21) > 1e-2);
  });

  test('batched predictMany equals predict item by item', () => {
    const { den, ref, p1, p2 } = modelB();
    const x1 = randomImage(ref, 2, 71);
    const x2 = randomImage(ref, 1, 72);
    const items = [
      { xt: x1.t, cond: den.encodePrompt(p1) },
      { xt: x2.t, cond: den.encodePrompt(p2) },
    ];
    const many = den.predictMany!(items, 500);
    items.forEach((it, i) => {
      const one = den.predict(it.xt, 500, it.cond);
      assert.ok(maxAbsDiff(many[i].eps.dataSync(), one.eps.dataSync()) < 1e-6);
      assert.ok(maxAbsDiff(many[i].variance!.dataSync(), one.variance!.dataSync()) < 1e-6);
      tf.dispose([one.eps, one.variance!]);
    });
    tf.dispose([x1.t, x2.t, ...many.flatMap((p) => [p.eps, p.variance!])]);
  });
});

describe('resources and errors', () => {
  for (const mk of [modelA, modelB]) {
    test(`tensor count stays flat over full runs of every algorithm (${mk.name})`, () => {
      const { den, ref, p1, p2 } = mk();
      const img = randomImage(ref, 1, 81);
      const mask = tf.ones([1, ref.H, ref.W, 1]) as tf.Tensor4D;
      const algos: Array<() => tf.Tensor> = [
        () => A.forward(img.t, 10, den.schedule, new Rng(1)),
        () => A.blurDenoise(img.t, A.denoiseBlur(ref.W)),
        () => A.oneStepDenoise(den, img.t, 10),
        () => A.iterativeDenoise(den, img.t, 10, { varianceType: ref.varianceType, rng: new Rng(1) }),
        () => A.sample(den, 1, { varianceType: ref.varianceType, rng: new Rng(1) }),
        () => A.sampleCfg(den, 1, { varianceType: ref.varianceType, rng: new Rng(1), prompt: p1 }),
        () => A.sdedit(den, img.t, 5, { varianceType: ref.varianceType, rng: new Rng(1) }),
        () => A.textImageToImage(den, img.t, 5, { varianceType: ref.varianceType, rng: new Rng(1), prompt: p2 }),
        () => A.inpaint(den, img.t, mask, { varianceType: ref.varianceType, rng: new Rng(1) }),
        () => A.visualAnagrams(den, p1, p2, { varianceType: ref.varianceType, rng: new Rng(1) }),
        () => A.makeHybrids(den, p1, p2, { varianceType: ref.varianceType, rng: new Rng(1) }),
      ];
      for (const f of algos) f().dispose(); // warm caches (prompt handles)
      const before = tf.memory().numTensors;
      for (const f of algos) {
        const r = f();
        assert.equal(tf.memory().numTensors, before + 1, `${f.toString()}`);
        r.dispose();
      }
      const counts: number[] = [];
      A.sample(den, 1, { varianceType: ref.varianceType, rng: new Rng(2), onStep: () => counts.push(tf.memory().numTensors) }).dispose();
      assert.ok(counts.length > 10 && counts.every((c) => c === counts[0]), `per-step counts ${counts.join(',')}`);
      assert.equal(tf.memory().numTensors, before);
      tf.dispose([img.t, mask]);
    });
  }

  test('wrong sizes, channels, masks, prompts and levels give clear one-line errors', () => {
    const { den, ref } = modelA();
    const rng = new Rng(1);
    const bad = tf.zeros([1, 12, 12, 1]) as tf.Tensor4D;
    const badC = tf.zeros([1, 12, 10, 3]) as tf.Tensor4D;
    const ok = tf.zeros([2, 12, 10, 1]) as tf.Tensor4D;
    assert.throws(() => A.iterativeDenoise(den, bad, 0, { rng }), /image has shape \[1,12,12,1\] but oracle A needs \[B,12,10,1\]/);
    assert.throws(() => A.sdedit(den, badC, 3, { rng }), /shape \[1,12,10,3\].*1 channel/);
    assert.throws(() => A.oneStepDenoise(den, bad, 3), /needs \[B,12,10,1\]/);
    assert.throws(() => A.inpaint(den, ok, tf.ones([1, 12, 12, 1]) as tf.Tensor4D, { rng }), /mask has shape \[1,12,12,1\]/);
    assert.throws(() => A.inpaint(den, ok, tf.ones([3, 12, 10, 1]) as tf.Tensor4D, { rng }), /mask has shape \[3,12,10,1\]/);
    assert.throws(() => A.inpaint(den, ok, tf.fill([1, 12, 10, 1], 2) as tf.Tensor4D, { rng }), /mask values must lie in \[0,1\]/);
    assert.throws(
      () => A.sample(den, 1, { rng, prompt: 'eight' }),
      (e: Error) => {
        assert.match(e.message, /no prompt "eight": use one of "neutral", "", "seven", "two"/);
        assert.equal(e.message.split('\n').length, 1);
        return true;
      },
    );
    assert.throws(() => A.iterativeDenoise(den, ok, 99, { rng }), /i_start 99 must be an integer in 0\.\.29/);
    assert.throws(() => A.iterativeDenoise(den, ok, 0, { rng, timesteps: [5, 9, 0] }), /strictly decreasing/);
    const other = modelB().den;
    assert.throws(() => A.iterativeDenoise(den, ok, 20, { rng, prompt: other.encodePrompt('') }), /made by oracle B, not oracle A/);
    // a learned-range model that forgets its variance
    const b = modelB().den;
    const broken: Denoiser = {
      ...b,
      predictMany: undefined,
      predict: (x, t, c): Prediction => {
        const p = b.predict(x, t, c);
        p.variance!.dispose();
        return { eps: p.eps };
      },
    };
    const bimg = tf.zeros([1, 64, 64, 3]) as tf.Tensor4D;
    assert.throws(
      () => A.iterativeDenoise(broken, bimg, 30, { rng }),
      /variance_type learned_range but the model returned no variance channels/,
    );
    assert.throws(() => A.sample(den, 0, { rng }), /positive integer/);
    void ref;
    tf.dispose([bad, badC, ok, bimg]);
  });
});
