/**
 * Fréchet distance between two Gaussians fitted to feature sets (the FID formula of Heusel et al.
 * 2017, here on the project's own MNIST classifier features rather than Inception's):
 *   FD = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}).
 * Tr((Σ₁Σ₂)^{1/2}) is computed as the sum of √λ of the symmetric PSD matrix Σ₁^{1/2} Σ₂ Σ₁^{1/2}
 * (same eigenvalues as Σ₁Σ₂), with both square roots from a float64 Jacobi eigendecomposition, so
 * no non-symmetric matrix square root (scipy's sqrtm and its complex round-off) is needed.
 */

/** Mean and covariance (unbiased, n − 1) of n feature rows of dimension d. feats: n·d row-major. */
export interface FeatureStats {
  d: number;
  n: number;
  mean: Float64Array;
  /** d·d row-major, symmetric. */
  cov: Float64Array;
}

export function featureStats(feats: ArrayLike<number>, n: number, d: number): FeatureStats {
  if (feats.length !== n * d) throw new Error(`featureStats: ${feats.length} values are not ${n} rows of ${d}`);
  if (n < 2) throw new Error(`featureStats needs at least 2 rows, got ${n}`);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += feats[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  const cov = new Float64Array(d * d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) row[j] = feats[i * d + j] - mean[j];
    for (let a = 0; a < d; a++) {
      const ra = row[a];
      if (ra === 0) continue;
      for (let b = a; b < d; b++) cov[a * d + b] += ra * row[b];
    }
  }
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      const v = cov[a * d + b] / (n - 1);
      cov[a * d + b] = v;
      cov[b * d + a] = v;
    }
  }
  return { d, n, mean, cov };
}

/**
 * Eigendecomposition of a symmetric d×d matrix by cyclic Jacobi rotations (float64).
 * @returns eigenvalues λ and eigenvectors V (columns, d·d row-major) with A = V diag(λ) Vᵀ.
 */
export function symmetricEigen(A: ArrayLike<number>, d: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(A);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  let scale = 0;
  for (let i = 0; i < d * d; i++) scale += a[i] * a[i];
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += a[p * d + q] * a[p * d + q];
    if (off <= 1e-30 * scale || off === 0) break;
    for (let p = 0; p < d - 1; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q];
        if (apq === 0) continue;
        // Rotation that zeroes a[p][q] (Golub & Van Loan, Alg. 8.4.1).
        const theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < d; k++) {
          const akp = a[k * d + p];
          const akq = a[k * d + q];
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = a[p * d + k];
          const aqk = a[q * d + k];
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p];
          const vkq = v[k * d + q];
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(d);
  for (let i = 0; i < d; i++) values[i] = a[i * d + i];
  return { values, vectors: v };
}

/** The PSD square root V diag(√max(λ,0)) Vᵀ of a symmetric PSD matrix (tiny negative λ from round-off are clamped). */
export function sqrtPsd(A: ArrayLike<number>, d: number): Float64Array {
  const { values, vectors: V } = symmetricEigen(A, d);
  const out = new Float64Array(d * d);
  for (let k = 0; k < d; k++) {
    const r = Math.sqrt(Math.max(values[k], 0));
    if (r === 0) continue;
    for (let i = 0; i < d; i++) {
      const vik = V[i * d + k] * r;
      if (vik === 0) continue;
      for (let j = 0; j < d; j++) out[i * d + j] += vik * V[j * d + k];
    }
  }
  return out;
}

function matmul(A: Float64Array, B: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let k = 0; k < d; k++) {
      const aik = A[i * d + k];
      if (aik === 0) continue;
      for (let j = 0; j < d; j++) out[i * d + j] += aik * B[k * d + j];
    }
  }
  return out;
}

/** Tr((Σ₁Σ₂)^{1/2}) for symmetric PSD Σ₁, Σ₂: Σ √λ of Σ₁^{1/2} Σ₂ Σ₁^{1/2}. */
export function traceSqrtProduct(S1: ArrayLike<number>, S2: ArrayLike<number>, d: number): number {
  const r1 = sqrtPsd(S1, d);
  const m = matmul(matmul(r1, Float64Array.from(S2), d), r1, d);
  // Symmetrize away the round-off of the two products before the eigensolve.
  for (let i = 0; i < d; i++) {
    for (let j = i + 1; j < d; j++) {
      const s = (m[i * d + j] + m[j * d + i]) / 2;
      m[i * d + j] = s;
      m[j * d + i] = s;
    }
  }
  const { values } = symmetricEigen(m, d);
  let tr = 0;
  for (const l of values) tr += Math.sqrt(Math.max(l, 0));
  return tr;
}

/** Fréchet distance between N(μ₁, Σ₁) and N(μ₂, Σ₂). */
export function frechetDistance(a: FeatureStats, b: FeatureStats): number {
  if (a.d !== b.d) throw new Error(`Fréchet distance: feature sizes differ (${a.d} vs ${b.d})`);
  const d = a.d;
  let dm = 0;
  for (let i = 0; i < d; i++) dm += (a.mean[i] - b.mean[i]) ** 2;
  let tr = 0;
  for (let i = 0; i < d; i++) tr += a.cov[i * d + i] + b.cov[i * d + i];
  // Round-off can make a distance of identical sets a tiny negative number.
  return Math.max(0, dm + tr - 2 * traceSqrtProduct(a.cov, b.cov, d));
}
