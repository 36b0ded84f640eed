/**
 * The Fréchet distance judge (lib/evaluation/frechet.ts) against closed forms: the eigensolver
 * reconstructs its matrix, FD of Gaussians with known covariances (commuting and not), and the
 * sample statistics of seeded Gaussian draws.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { featureStats, frechetDistance, sqrtPsd, symmetricEigen, traceSqrtProduct, type FeatureStats } from '../../lib/evaluation/frechet';
import { mulberry32 } from '../helpers';

const stats = (mean: number[], cov: number[]): FeatureStats => ({
  d: mean.length,
  n: 0,
  mean: Float64Array.from(mean),
  cov: Float64Array.from(cov),
});

/** A random SPD d×d matrix A Aᵀ + 0.1 I. */
function randomSpd(d: number, seed: number): Float64Array {
  const r = mulberry32(seed);
  const a = Float64Array.from({ length: d * d }, () => r() * 2 - 1);
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) for (let k = 0; k < d; k++) out[i * d + j] += a[i * d + k] * a[j * d + k];
  for (let i = 0; i < d; i++) out[i * d + i] += 0.1;
  return out;
}

test('Jacobi eigensolver: V diag(λ) Vᵀ rebuilds a random symmetric matrix, √A·√A = A', () => {
  const d = 12;
  const A = randomSpd(d, 1);
  const { values, vectors: V } = symmetricEigen(A, d);
  let worst = 0;
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += V[i * d + k] * values[k] * V[j * d + k];
      worst = Math.max(worst, Math.abs(s - A[i * d + j]));
    }
  assert.ok(worst < 1e-10, `reconstruction error ${worst}`);
  const R = sqrtPsd(A, d);
  worst = 0;
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += R[i * d + k] * R[k * d + j];
      worst = Math.max(worst, Math.abs(s - A[i * d + j]));
    }
  assert.ok(worst < 1e-10, `√A² error ${worst}`);
});

test('FD of diagonal Gaussians is ‖Δμ‖² + Σ(√a − √b)²', () => {
  const a = [1, 4, 9, 0.25];
  const b = [4, 1, 1, 0.25];
  const diag = (v: number[]) => v.flatMap((x, i) => v.map((_, j) => (i === j ? x : 0)));
  const fd = frechetDistance(stats([0, 1, 2, 3], diag(a)), stats([1, 1, 0, 3], diag(b)));
  const want = 1 + 4 + a.reduce((s, x, i) => s + (Math.sqrt(x) - Math.sqrt(b[i])) ** 2, 0);
  assert.ok(Math.abs(fd - want) < 1e-12, `${fd} vs ${want}`);
});

test('non-commuting 2×2 covariances: Tr√(Σ₁Σ₂) = √(tr Σ₁Σ₂ + 2√(det Σ₁ det Σ₂))', () => {
  // For a 2×2 matrix M with real non-negative eigenvalues, (Tr √M)² = tr M + 2√det M.
  const S1 = [2, 0.7, 0.7, 1];
  const S2 = [0.5, -0.3, -0.3, 3];
  const trProd = S1[0] * S2[0] + S1[1] * S2[2] + S1[2] * S2[1] + S1[3] * S2[3];
  const det = (m: number[]) => m[0] * m[3] - m[1] * m[2];
  const want = Math.sqrt(trProd + 2 * Math.sqrt(det(S1) * det(S2)));
  assert.ok(Math.abs(traceSqrtProduct(S1, S2, 2) - want) < 1e-12);
  const fd = frechetDistance(stats([0, 0], S1), stats([0, 0], S2));
  assert.ok(Math.abs(fd - (2 + 1 + 0.5 + 3 - 2 * want)) < 1e-12);
});

test('FD is 0 for identical statistics, symmetric, and equals the closed form for scaled covariances', () => {
  const d = 10;
  const S = randomSpd(d, 7);
  const a = stats(new Array(d).fill(0.5), [...S]);
  assert.ok(frechetDistance(a, a) < 1e-9);
  // Σ₂ = c²Σ₁: Tr√(Σ₁Σ₂) = c·tr Σ₁, so FD = (1 − c)² tr Σ₁ (+ ‖Δμ‖²).
  const c = 1.7;
  const b = stats(
    new Array(d).fill(0),
    [...S].map((x) => x * c * c),
  );
  let tr = 0;
  for (let i = 0; i < d; i++) tr += S[i * d + i];
  const want = d * 0.25 + (1 - c) ** 2 * tr;
  assert.ok(Math.abs(frechetDistance(a, b) - want) < 1e-8 * want);
  assert.ok(Math.abs(frechetDistance(b, a) - want) < 1e-8 * want);
});

test('featureStats: unbiased mean and covariance of seeded Gaussian draws converge to the truth', () => {
  const r = mulberry32(11);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const n = 20000;
  // x = (g1, 0.5 g1 + g2 + 3): mean (0, 3), cov [[1, 0.5], [0.5, 1.25]].
  const f = new Float64Array(n * 2);
  for (let i = 0; i < n; i++) {
    const g1 = gauss();
    f[2 * i] = g1;
    f[2 * i + 1] = 0.5 * g1 + gauss() + 3;
  }
  const s = featureStats(f, n, 2);
  const want = [1, 0.5, 0.5, 1.25];
  assert.ok(Math.abs(s.mean[0]) < 0.03 && Math.abs(s.mean[1] - 3) < 0.03, `mean ${s.mean}`);
  s.cov.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 0.04, `cov[${i}] = ${v}`));
  // Two samples of one Gaussian: FD small and falling with n (the bias the calibration cancels).
  assert.ok(frechetDistance(s, stats([0, 3], want)) < 0.01);
  assert.throws(() => featureStats([1, 2, 3], 2, 2), /3 values are not 2 rows of 2/);
});
