// Exact GELU and training-mode BatchNorm over NHWC float32 (channels innermost), the element-wise
// work that dominates a Part B training step once the convolutions run in oneDNN. The loops are
// written so that the compiler vectorizes them (-O3, built for the machine it runs on), and
// OpenMP splits the rows between the same threads oneDNN uses.
#include "pointwise.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace pointwise {
namespace {

// exp(x) for x ≤ 0 down to underflow, branch-free so that loops over it vectorize: x = n·ln2 + r
// with |r| ≤ ln2/2, e^r by its degree-6 Taylor polynomial (relative error < 2e-7 on that range),
// then 2^n put into the exponent bits.
inline float ExpNonPositive(float x) {
  x = x < -87.0f ? -87.0f : x;
  // Nearest integer to x·log2(e) ≤ 0 by truncating toward zero after −0.5 (std::floor does not vectorize).
  const int32_t ni = static_cast<int32_t>(x * 1.44269504f - 0.5f);
  const float n = static_cast<float>(ni);
  const float r = (x - n * 0.693145752f) - n * 1.42860677e-6f;  // ln2 split in two for accuracy
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (ni + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// erf(x) by Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7), the formula PyTorch's
// vectorized CPU erf uses too: 1 − t·(a1 + t·(a2 + …))·e^(−x²), t = 1/(1 + p|x|), odd in x.
inline float Erf(float x) {
  const float ax = std::fabs(x);
  const float t = 1.0f / (1.0f + 0.3275911f * ax);
  float q = 1.061405429f;
  q = q * t - 1.453152027f;
  q = q * t + 1.421413741f;
  q = q * t - 0.284496736f;
  q = q * t + 0.254829592f;
  const float r = 1.0f - q * t * ExpNonPositive(-ax * ax);
  return std::copysign(r, x);
}

constexpr float kSqrtHalf = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

// Splits [0, n) into one contiguous range per thread and runs f(begin, end) on each.
template <typename F>
void ParallelRanges(size_t n, size_t grain, F f) {
  const int threads = static_cast<int>(std::min<size_t>(omp_get_max_threads(), std::max<size_t>(1, n / grain)));
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const size_t b = n * t / nt, e = n * (t + 1) / nt;
    if (b < e) f(b, e);
  }
}

// K per-channel sums over rows of [rows, c]: row(r, acc) adds row r's terms into acc[0..K) (one
// float array of c each). Float sums over blocks of kBlock rows (vectorized over the channels),
// each block added to the thread's float64 totals; returns the K totals (float64, c each).
template <int K, typename F>
std::array<std::vector<double>, K> ChannelSums(size_t rows, size_t c, F row) {
  constexpr size_t kBlock = 64;
  const int nt = omp_get_max_threads();
  std::vector<double> part(size_t(nt) * K * c, 0.0);
  ParallelRanges(rows, kBlock, [&](size_t b, size_t e) {
    double* p = &part[size_t(omp_get_thread_num()) * K * c];
    std::vector<float> block(K * c);
    std::array<float*, K> acc;
    for (int j = 0; j < K; j++) acc[j] = block.data() + j * c;
    for (size_t r0 = b; r0 < e; r0 += kBlock) {
      std::fill(block.begin(), block.end(), 0.0f);
      const size_t r1 = std::min(e, r0 + kBlock);
      for (size_t r = r0; r < r1; r++) row(r, acc);
      for (size_t i = 0; i < K * c; i++) p[i] += block[i];
    }
  });
  std::array<std::vector<double>, K> total;
  for (int j = 0; j < K; j++) {
    total[j].assign(c, 0.0);
    for (int t = 0; t < nt; t++)
      for (size_t k = 0; k < c; k++) total[j][k] += part[(size_t(t) * K + j) * c + k];
  }
  return total;
}

void GeluRange(const float* __restrict x, float* __restrict y, size_t b, size_t e) {
  for (size_t i = b; i < e; i++) y[i] = x[i] * (0.5f + 0.5f * Erf(x[i] * kSqrtHalf));
}

// d/dx x·Φ(x) = Φ(x) + x·φ(x).
void GeluGradRange(const float* __restrict dy, const float* __restrict x, float* __restrict dx, size_t b, size_t e) {
  for (size_t i = b; i < e; i++) {
    const float v = x[i];
    const float cdf = 0.5f + 0.5f * Erf(v * kSqrtHalf);
    const float pdf = kInvSqrt2Pi * ExpNonPositive(-0.5f * v * v);
    dx[i] = dy[i] * (cdf + v * pdf);
  }
}

}  // namespace

void Gelu(const float* x, float* y, size_t n) {
  ParallelRanges(n, 1 << 14, [&](size_t b, size_t e) { GeluRange(x, y, b, e); });
}

void GeluGrad(const float* dy, const float* x, float* dx, size_t n) {
  ParallelRanges(n, 1 << 14, [&](size_t b, size_t e) { GeluGradRange(dy, x, dx, b, e); });
}

// In float64, rounded only on the stores, as lib/tensor/fusedOps' JS kernel (float32 arithmetic
// lost 2e-6 of m where β1·m and (1−β1)·g nearly cancel); memory-bound either way.
// Adam on values [b, e) of one parameter (float64 arithmetic, as the JS kernel).
inline void AdamRange(const AdamArrays& a, size_t b, size_t e, const AdamHyper& h) {
  const double b1 = h.beta1, c1 = 1 - h.beta1, b2 = h.beta2, c2 = 1 - h.beta2;
  const double eps = h.eps, step = h.stepSize, sqrtBc2 = h.sqrtBc2;
  for (size_t i = b; i < e; i++) {
    const double gi = a.g[i];
    const double m1 = b1 * a.m[i] + c1 * gi;
    const double v1 = b2 * a.v[i] + c2 * gi * gi;
    a.mo[i] = float(m1);
    a.vo[i] = float(v1);
    a.po[i] = float(a.p[i] - step * m1 / (std::sqrt(v1) / sqrtBc2 + eps));
  }
}

void Adam(const float* p, const float* g, const float* m, const float* v, size_t n, const AdamHyper& h, float* po, float* mo, float* vo) {
  const AdamArrays a{p, g, m, v, po, mo, vo, n};
  ParallelRanges(n, 1 << 14, [&](size_t b, size_t e) { AdamRange(a, b, e, h); });
}

void AdamMany(const AdamArrays* list, size_t count, const AdamHyper& h) {
  // start[k]: where parameter k begins in the concatenation of all values.
  std::vector<size_t> start(count + 1, 0);
  for (size_t k = 0; k < count; k++) start[k + 1] = start[k] + list[k].n;
  ParallelRanges(start[count], 1 << 14, [&](size_t b, size_t e) {
    size_t k = size_t(std::upper_bound(start.begin(), start.end(), b) - start.begin()) - 1;
    for (; k < count && start[k] < e; k++) {
      const size_t lo = std::max(b, start[k]), hi = std::min(e, start[k + 1]);
      if (lo < hi) AdamRange(list[k], lo - start[k], hi - start[k], h);
    }
  });
}

// Shifted one-pass statistics: Σd and Σd² of d = x − K per channel (K = the channel's first value
// keeps the cancellation in Σd² − (Σd)²/n small whatever the mean), in float over blocks of 64
// rows and float64 across them (ChannelSums).
void BatchNormStats(const float* x, size_t rows, size_t c, float* mean, float* variance) {
  const std::vector<float> K(x, x + c);
  const float* pK = K.data();
  const auto sums = ChannelSums<2>(rows, c, [&](size_t r, const std::array<float*, 2>& acc) {
    const float* __restrict xr = x + r * c;
    float* __restrict ps = acc[0];
    float* __restrict pq = acc[1];
    for (size_t k = 0; k < c; k++) {
      const float d = xr[k] - pK[k];
      ps[k] += d;
      pq[k] += d * d;
    }
  });
  const double n = double(rows);
  for (size_t k = 0; k < c; k++) {
    const double sk = sums[0][k], qk = sums[1][k];
    mean[k] = float(K[k] + sk / n);
    variance[k] = float(std::max(0.0, (qk - sk * sk / n) / n));
  }
}

namespace {

// BN(x) = x·scale + shift per channel: scale = invStd·γ, shift = β − mean·scale.
void ScaleShift(const float* mean, const float* invStd, const float* gamma, const float* beta, size_t c, std::vector<float>* scale,
                std::vector<float>* shift) {
  scale->resize(c);
  shift->resize(c);
  for (size_t k = 0; k < c; k++) {
    const double a = double(invStd[k]) * gamma[k];
    (*scale)[k] = float(a);
    (*shift)[k] = float(beta[k] - mean[k] * a);
  }
}

// The training-mode BN gradient's per-channel coefficients, dx = A·g + B·x + C (g the gradient at
// the BN output), from the sums Σg and Σg·x (c each); also dγ, dβ.
// A = γ·invStd, B = −A·invStd·mean(g·x̂), C = A·(mean·invStd·mean(g·x̂) − mean(g)).
void GradCoefficients(const std::vector<double>& sg, const std::vector<double>& sgx, size_t rows, size_t c, const float* mean,
                      const float* invStd, const float* gamma, std::vector<float>* A, std::vector<float>* B, std::vector<float>* C, float* dgamma,
                      float* dbeta) {
  const double n = double(rows);
  A->resize(c);
  B->resize(c);
  C->resize(c);
  for (size_t k = 0; k < c; k++) {
    const double sa = sg[k], sb = sgx[k];
    const double is = invStd[k];
    const double sdyx = is * (sb - mean[k] * sa);
    const double a = gamma[k] * is;
    (*A)[k] = float(a);
    (*B)[k] = float(-a * is * sdyx / n);
    (*C)[k] = float(a * (mean[k] * is * sdyx / n - sa / n));
    dgamma[k] = float(sdyx);
    dbeta[k] = float(sa);
  }
}

// y = x·scale + shift per channel (BatchNorm with these statistics), then GELU when WithGelu.
template <bool WithGelu>
void ApplyBatchNorm(const float* x, size_t rows, size_t c, const float* mean, const float* invStd, const float* gamma, const float* beta,
                    float* y) {
  std::vector<float> scale, shift;
  ScaleShift(mean, invStd, gamma, beta, c, &scale, &shift);
  const float* sc = scale.data();
  const float* sh = shift.data();
  ParallelRanges(rows, 64, [&](size_t b, size_t e) {
    for (size_t r = b; r < e; r++) {
      const float* __restrict xr = x + r * c;
      float* __restrict yr = y + r * c;
      for (size_t k = 0; k < c; k++) {
        const float v = xr[k] * sc[k] + sh[k];
        yr[k] = WithGelu ? v * (0.5f + 0.5f * Erf(v * kSqrtHalf)) : v;
      }
    }
  });
}

}  // namespace

void BatchNormApply(const float* x, size_t rows, size_t c, const float* mean, const float* invStd, const float* gamma, const float* beta,
                    float* y) {
  ApplyBatchNorm<false>(x, rows, c, mean, invStd, gamma, beta, y);
}

// Training-mode gradient through the batch statistics in two passes: Σdy and Σdy·x (float64),
// then dx = A·dy + B·x + C per channel (GradCoefficients); dγ = Σdy·x̂, dβ = Σdy.
void BatchNormGrad(const float* dy, const float* x, size_t rows, size_t c, const float* mean, const float* invStd, const float* gamma,
                   float* dx, float* dgamma, float* dbeta) {
  const auto sums = ChannelSums<2>(rows, c, [&](size_t r, const std::array<float*, 2>& acc) {
    const float* __restrict gr = dy + r * c;
    const float* __restrict xr = x + r * c;
    float* __restrict sa = acc[0];
    float* __restrict sb = acc[1];
    for (size_t k = 0; k < c; k++) {
      sa[k] += gr[k];
      sb[k] += gr[k] * xr[k];
    }
  });
  std::vector<float> A, B, C;
  GradCoefficients(sums[0], sums[1], rows, c, mean, invStd, gamma, &A, &B, &C, dgamma, dbeta);
  const float* pA = A.data();
  const float* pB = B.data();
  const float* pC = C.data();
  ParallelRanges(rows, 64, [&](size_t b, size_t e) {
    for (size_t r = b; r < e; r++) {
      const float* __restrict gr = dy + r * c;
      const float* __restrict xr = x + r * c;
      float* __restrict dr = dx + r * c;
      for (size_t k = 0; k < c; k++) dr[k] = pA[k] * gr[k] + pB[k] * xr[k] + pC[k];
    }
  });
}

void CopyChunks(const float* src, int64_t srcStride, int64_t srcOff, float* dst, int64_t dstStride, int64_t dstOff, int64_t chunk,
                int64_t outer) {
  ParallelRanges(size_t(outer), std::max<size_t>(1, size_t(1 << 14) / size_t(std::max<int64_t>(chunk, 1))), [&](size_t b, size_t e) {
    // memmove: a caller may pass overlapping views of one buffer (the result is then theirs to define).
    for (size_t o = b; o < e; o++) std::memmove(dst + o * dstStride + dstOff, src + o * srcStride + srcOff, sizeof(float) * chunk);
  });
}

// Per-channel sums of x [rows, c] (ChannelSums).
void ChannelSum(const float* x, size_t rows, size_t c, float* out) {
  const auto sums = ChannelSums<1>(rows, c, [&](size_t r, const std::array<float*, 1>& acc) {
    const float* __restrict xr = x + r * c;
    float* __restrict a = acc[0];
    for (size_t k = 0; k < c; k++) a[k] += xr[k];
  });
  for (size_t k = 0; k < c; k++) out[k] = float(sums[0][k]);
}

namespace {

// The value of an operand of shape kind `kind` (see Binary) at sample o, channel k, flat index i.
inline float Operand(const float* v, int kind, size_t o, size_t k, size_t c, size_t i) {
  switch (kind) {
    case kFull:
      return v[i];
    case kPerSample:
      return v[o * c + k];
    case kPerChannel:
      return v[k];
    default:
      return v[0];
  }
}

template <int Op, int KindA, int KindB>
void BinaryRange(const float* __restrict a, const float* __restrict b, float* __restrict out, size_t inner, size_t c, size_t r0, size_t r1) {
  // Rows r of [outer·inner, c]; sample o = r / inner. Each row's loop over the channels vectorizes.
  for (size_t r = r0; r < r1; r++) {
    const size_t o = r / inner;
    float* __restrict dst = out + r * c;
    for (size_t k = 0; k < c; k++) {
      const float x = Operand(a, KindA, o, k, c, r * c + k);
      const float y = Operand(b, KindB, o, k, c, r * c + k);
      dst[k] = Op == kAdd ? x + y : Op == kSub ? x - y : x * y;
    }
  }
}

template <int Op, int KindA>
void BinaryB(int kindB, const float* a, const float* b, float* out, size_t inner, size_t c, size_t r0, size_t r1) {
  switch (kindB) {
    case kFull:
      return BinaryRange<Op, KindA, kFull>(a, b, out, inner, c, r0, r1);
    case kPerSample:
      return BinaryRange<Op, KindA, kPerSample>(a, b, out, inner, c, r0, r1);
    case kPerChannel:
      return BinaryRange<Op, KindA, kPerChannel>(a, b, out, inner, c, r0, r1);
    default:
      return BinaryRange<Op, KindA, kScalar>(a, b, out, inner, c, r0, r1);
  }
}

template <int Op>
void BinaryAB(int kindA, int kindB, const float* a, const float* b, float* out, size_t inner, size_t c, size_t r0, size_t r1) {
  switch (kindA) {
    case kFull:
      return BinaryB<Op, kFull>(kindB, a, b, out, inner, c, r0, r1);
    case kPerSample:
      return BinaryB<Op, kPerSample>(kindB, a, b, out, inner, c, r0, r1);
    case kPerChannel:
      return BinaryB<Op, kPerChannel>(kindB, a, b, out, inner, c, r0, r1);
    default:
      return BinaryB<Op, kScalar>(kindB, a, b, out, inner, c, r0, r1);
  }
}

}  // namespace

void Binary(int op, const float* a, int kindA, const float* b, int kindB, float* out, size_t outer, size_t inner, size_t c) {
  const size_t rows = outer * inner;
  // Rows per thread at least what keeps a thread busy for a few microseconds.
  const size_t grain = (size_t(1) << 14) / std::max<size_t>(c, 1) + 1;
  ParallelRanges(rows, grain, [&](size_t r0, size_t r1) {
    if (op == kAdd) BinaryAB<kAdd>(kindA, kindB, a, b, out, inner, c, r0, r1);
    else if (op == kSub) BinaryAB<kSub>(kindA, kindB, a, b, out, inner, c, r0, r1);
    else BinaryAB<kMul>(kindA, kindB, a, b, out, inner, c, r0, r1);
  });
}

// BatchNorm then GELU in one pass: z = GELU(x·scale + shift).
void BatchNormGeluApply(const float* x, size_t rows, size_t c, const float* mean, const float* invStd, const float* gamma, const float* beta,
                        float* z) {
  ApplyBatchNorm<true>(x, rows, c, mean, invStd, gamma, beta, z);
}

// The gradient of BatchNormGeluApply in two passes, the BN output y recomputed from x (nothing
// saved but x): pass 1 writes g = dz·GELU'(y) into dx and sums Σg and Σg·x (float64); pass 2
// turns dx into A·g + B·x + C (as BatchNormGrad) and sums it: dbias = Σdx, the gradient of a bias
// added to x before the normalization (zero but for rounding, since BN removes any shift).
// (Recomputing g in pass 2 instead of storing it ran 3× slower.)
void BatchNormGeluGrad(const float* dz, const float* x, size_t rows, size_t c, const float* mean, const float* invStd, const float* gamma,
                       const float* beta, float* dx, float* dgamma, float* dbeta, float* dbias) {
  std::vector<float> scale, shift;
  ScaleShift(mean, invStd, gamma, beta, c, &scale, &shift);
  const float* sc = scale.data();
  const float* sh = shift.data();
  // Pass 1: g = dz·GELU'(y) into dx, with Σg and Σg·x.
  const auto sums = ChannelSums<2>(rows, c, [&](size_t r, const std::array<float*, 2>& acc) {
    const float* __restrict dzr = dz + r * c;
    const float* __restrict xr = x + r * c;
    float* __restrict gr = dx + r * c;
    float* __restrict sa = acc[0];
    float* __restrict sb = acc[1];
    // Two loops over the row: GCC vectorizes the element-wise one only without the sums in it (one
    // loop ran 5× slower), and the second reads g back from L1.
    for (size_t k = 0; k < c; k++) {
      const float y = xr[k] * sc[k] + sh[k];
      const float cdf = 0.5f + 0.5f * Erf(y * kSqrtHalf);
      const float pdf = kInvSqrt2Pi * ExpNonPositive(-0.5f * y * y);
      gr[k] = dzr[k] * (cdf + y * pdf);
    }
    for (size_t k = 0; k < c; k++) {
      sa[k] += gr[k];
      sb[k] += gr[k] * xr[k];
    }
  });
  std::vector<float> A, B, C;
  GradCoefficients(sums[0], sums[1], rows, c, mean, invStd, gamma, &A, &B, &C, dgamma, dbeta);
  const float* pA = A.data();
  const float* pB = B.data();
  const float* pC = C.data();
  // Pass 2: dx = A·g + B·x + C in place, with Σdx (the bias gradient).
  const auto bias = ChannelSums<1>(rows, c, [&](size_t r, const std::array<float*, 1>& acc) {
    const float* __restrict xr = x + r * c;
    float* __restrict dr = dx + r * c;
    float* __restrict sd = acc[0];
    for (size_t k = 0; k < c; k++) {
      const float v = pA[k] * dr[k] + pB[k] * xr[k] + pC[k];
      dr[k] = v;
      sd[k] += v;
    }
  });
  for (size_t k = 0; k < c; k++) dbias[k] = float(bias[0][k]);
}

void ToBf16(const float* x, uint16_t* y, size_t n) {
  ParallelRanges(n, 1 << 15, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; i++) {
      uint32_t u;
      std::memcpy(&u, &x[i], sizeof u);
      // Round to nearest even on the 16 bits dropped; a NaN keeps a set mantissa bit (quiet NaN).
      const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
      const bool nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
      y[i] = static_cast<uint16_t>(nan ? ((u >> 16) | 0x40u) : rounded);
    }
  });
}

namespace {
// 16 floats in one vector (GCC/Clang vector extension: one AVX-512 register, two AVX ones), read
// and written unaligned. The direct convolutions below run over the channels in such chunks and
// keep their sums in registers: a loop of 64 channels per tap, as the compiler vectorizes it alone,
// spends more time entering and leaving the loop than multiplying.
typedef float Vec16 __attribute__((vector_size(64), aligned(4)));
constexpr size_t kLanes = 16;
inline Vec16 Load(const float* p) {
  Vec16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void Store(float* p, Vec16 v) { std::memcpy(p, &v, sizeof v); }
inline float Sum(Vec16 v) {
  float s = 0;
  for (size_t i = 0; i < kLanes; i++) s += v[i];
  return s;
}

// The taps (kh, kw) of output (ho, wo) that fall inside the input, as offsets of x's pixel and of
// the filter's tap (both in pixels); returns how many.
inline int OutputTaps(const ConvGeometry& g, int ho, int wo, int* pix, int* tap) {
  int k = 0;
  for (int kh = 0; kh < g.fh; kh++) {
    const int ih = ho * g.sh - g.pt + kh * g.dh;
    if (ih < 0 || ih >= g.h) continue;
    for (int kw = 0; kw < g.fw; kw++) {
      const int iw = wo * g.sw - g.pl + kw * g.dw;
      if (iw < 0 || iw >= g.w) continue;
      pix[k] = ih * g.w + iw;
      tap[k++] = kh * g.fw + kw;
    }
  }
  return k;
}

// The activation of a forward pass on n values (0 none, 1 ReLU, 2 exact GELU), from a to out.
void Activate(int act, const float* a, float* out, size_t n) {
  if (act == 2)
    GeluRange(a, out, 0, n);
  else
    for (size_t i = 0; i < n; i++) out[i] = act == 1 ? std::max(a[i], 0.0f) : a[i];
}
}  // namespace

// Σ over the k taps of dot(x pixel, filter tap), ci = 16·C channels. One FMA chain would wait on
// each FMA's latency, so C sums are in flight, 2·C with Pair (taps taken in pairs). With 512-bit
// registers (32 of them) 2·C sums of 16 lanes fit; with AVX2's 16 registers of 8 lanes a Vec16 takes
// two, and more than 8 Vec16 accumulators spill to memory (ci = 64 forward: 7.9 ms spilled, 6.4 ms
// not, batch 64 at 28×28 on 2 Zen 3 cores).
template <int C, bool Pair>
float TapDots(int k, const int* pix, const int* tap, const float* xn, const float* w, size_t ci) {
  Vec16 a[C] = {}, b[C] = {};
  int t = 0;
  if (Pair) {
    for (; t + 1 < k; t += 2) {
      const float* x0 = xn + size_t(pix[t]) * ci;
      const float* w0 = w + size_t(tap[t]) * ci;
      const float* x1 = xn + size_t(pix[t + 1]) * ci;
      const float* w1 = w + size_t(tap[t + 1]) * ci;
#pragma GCC unroll 8
      for (int j = 0; j < C; j++) {
        a[j] += Load(x0 + size_t(j) * kLanes) * Load(w0 + size_t(j) * kLanes);
        b[j] += Load(x1 + size_t(j) * kLanes) * Load(w1 + size_t(j) * kLanes);
      }
    }
  }
  for (; t < k; t++) {
    const float* x0 = xn + size_t(pix[t]) * ci;
    const float* w0 = w + size_t(tap[t]) * ci;
#pragma GCC unroll 8
    for (int j = 0; j < C; j++) a[j] += Load(x0 + size_t(j) * kLanes) * Load(w0 + size_t(j) * kLanes);
  }
  Vec16 s = {};
#pragma GCC unroll 8
  for (int j = 0; j < C; j++) s += Pair ? a[j] + b[j] : a[j];
  return Sum(s);
}

#if defined(__AVX512F__)
constexpr bool kWideRegisters = true;
#else
constexpr bool kWideRegisters = false;
#endif

// ci = 64 and 128 with at most 8 Vec16 accumulators where registers are 256-bit (128 as two halves).
float TapDots64(int k, const int* pix, const int* tap, const float* xn, const float* w, size_t ci) {
  return kWideRegisters ? TapDots<4, true>(k, pix, tap, xn, w, ci) : TapDots<4, false>(k, pix, tap, xn, w, ci);
}
float TapDots128(int k, const int* pix, const int* tap, const float* xn, const float* w, size_t ci) {
  if (kWideRegisters) return TapDots<8, true>(k, pix, tap, xn, w, ci);
  return TapDots<4, false>(k, pix, tap, xn, w, ci) + TapDots<4, false>(k, pix, tap, xn + 64, w + 64, ci);
}

// The same for any channel count: whole chunks one after the other, then the rest one by one.
float TapDotsAny(int k, const int* pix, const int* tap, const float* xn, const float* w, size_t ci) {
  const size_t chunks = ci / kLanes;
  Vec16 a = {};
  float s = 0;
  for (int t = 0; t < k; t++) {
    const float* xp = xn + size_t(pix[t]) * ci;
    const float* wp = w + size_t(tap[t]) * ci;
    for (size_t j = 0; j < chunks; j++) a += Load(xp + j * kLanes) * Load(wp + j * kLanes);
    for (size_t c = chunks * kLanes; c < ci; c++) s += xp[c] * wp[c];
  }
  return s + Sum(a);
}

void ConvOneOutForward(const ConvGeometry& g, const float* x, const float* w, const float* bias, int act, float* y) {
  const size_t ci = size_t(g.ci), rows = size_t(g.n) * g.ho, taps = size_t(g.fh) * g.fw;
  const auto dots = ci == 16 ? TapDots<1, true> : ci == 32 ? TapDots<2, true> : ci == 64 ? TapDots64 : ci == 128 ? TapDots128 : TapDotsAny;
  ParallelRanges(rows, 4, [&](size_t b, size_t e) {
    std::vector<int> pix(taps), tap(taps);
    std::vector<float> row(size_t(g.wo));
    for (size_t r = b; r < e; r++) {
      const int n = int(r / size_t(g.ho)), ho = int(r % size_t(g.ho));
      const float* xn = x + size_t(n) * g.h * g.w * ci;
      for (int wo = 0; wo < g.wo; wo++) {
        const int k = OutputTaps(g, ho, wo, pix.data(), tap.data());
        row[size_t(wo)] = (bias ? bias[0] : 0.0f) + dots(k, pix.data(), tap.data(), xn, w, ci);
      }
      Activate(act, row.data(), y + r * size_t(g.wo), size_t(g.wo));
    }
  });
}

// One row of the filter gradient for one tap: acc[c] += Σ_wo dy[wo]·x[iw(wo), c] over the outputs
// wo whose pixel iw = wo·sw − pl + kw·dw lies inside the row; ci = 16·C channels, held in registers.
template <int C>
void RowTapGrad(const ConvGeometry& g, const float* xrow, const float* dyrow, int kw, size_t ci, float* acc) {
  Vec16 a[C] = {};
  for (int wo = 0; wo < g.wo; wo++) {
    const int iw = wo * g.sw - g.pl + kw * g.dw;
    if (iw < 0 || iw >= g.w) continue;
    const float gv = dyrow[wo];
    const float* xp = xrow + size_t(iw) * ci;
#pragma GCC unroll 8
    for (int j = 0; j < C; j++) a[j] += gv * Load(xp + size_t(j) * kLanes);
  }
#pragma GCC unroll 8
  for (int j = 0; j < C; j++) Store(acc + size_t(j) * kLanes, Load(acc + size_t(j) * kLanes) + a[j]);
}

// ci = 128: 8 Vec16 accumulators where registers are 512-bit, else two halves of 4 (see TapDots).
void RowTapGrad128(const ConvGeometry& g, const float* xrow, const float* dyrow, int kw, size_t ci, float* acc) {
  if (kWideRegisters) return RowTapGrad<8>(g, xrow, dyrow, kw, ci, acc);
  RowTapGrad<4>(g, xrow, dyrow, kw, ci, acc);
  RowTapGrad<4>(g, xrow + 64, dyrow, kw, ci, acc + 64);
}

void RowTapGradAny(const ConvGeometry& g, const float* xrow, const float* dyrow, int kw, size_t ci, float* acc) {
  for (int wo = 0; wo < g.wo; wo++) {
    const int iw = wo * g.sw - g.pl + kw * g.dw;
    if (iw < 0 || iw >= g.w) continue;
    const float gv = dyrow[wo];
    const float* xp = xrow + size_t(iw) * ci;
    for (size_t c = 0; c < ci; c++) acc[c] += gv * xp[c];
  }
}

void ConvOneOutBackwardFilter(const ConvGeometry& g, const float* x, const float* dy, float* dw) {
  const size_t ci = size_t(g.ci), taps = size_t(g.fh) * g.fw, k = taps * ci, rows = size_t(g.n) * g.ho;
  const auto rowGrad = ci == 16 ? RowTapGrad<1> : ci == 32 ? RowTapGrad<2> : ci == 64 ? RowTapGrad<4> : ci == 128 ? RowTapGrad128 : RowTapGradAny;
  const int threads = omp_get_max_threads();
  std::vector<double> part(size_t(threads) * k, 0.0);
  ParallelRanges(rows, 4, [&](size_t b, size_t e) {
    double* p = &part[size_t(omp_get_thread_num()) * k];
    std::vector<float> acc(k);
    for (size_t r = b; r < e; r++) {
      const int n = int(r / size_t(g.ho)), ho = int(r % size_t(g.ho));
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int kh = 0; kh < g.fh; kh++) {
        const int ih = ho * g.sh - g.pt + kh * g.dh;
        if (ih < 0 || ih >= g.h) continue;
        const float* xrow = x + (size_t(n) * g.h + ih) * g.w * ci;
        for (int kw = 0; kw < g.fw; kw++) rowGrad(g, xrow, dy + r * size_t(g.wo), kw, ci, acc.data() + (size_t(kh) * g.fw + kw) * ci);
      }
      for (size_t i = 0; i < k; i++) p[i] += acc[i];
    }
  });
  for (size_t i = 0; i < k; i++) {
    double s = 0;
    for (int t = 0; t < threads; t++) s += part[size_t(t) * k + i];
    dw[i] = float(s);
  }
}

void FromBf16(const uint16_t* x, float* y, size_t n) {
  ParallelRanges(n, 1 << 15, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; i++) {
      const uint32_t u = uint32_t(x[i]) << 16;
      std::memcpy(&y[i], &u, sizeof u);
    }
  });
}

}  // namespace pointwise
