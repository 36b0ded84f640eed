// Element-wise kernels of the Part B UNet over NHWC float32 (see pointwise.cc).
#pragma once
#include <cstddef>
#include <cstdint>

namespace pointwise {
// y = x·Φ(x) (exact GELU), n values.
void Gelu(const float* x, float* y, size_t n);
// dx = dy·(Φ(x) + x·φ(x)), n values.
void GeluGrad(const float* dy, const float* x, float* dx, size_t n);

// Adam's hyperparameters for one step t: stepSize = lr / (1 − β1^t), sqrtBc2 = √(1 − β2^t).
struct AdamHyper {
  double beta1, beta2, eps, stepSize, sqrtBc2;
};

// One Adam update (PyTorch's formula) of n values: m' = β1·m + (1−β1)·g, v' = β2·v + (1−β2)·g²,
// p' = p − stepSize · m' / (√v' / sqrtBc2 + eps), into po, mo, vo.
void Adam(const float* p, const float* g, const float* m, const float* v, size_t n, const AdamHyper& h, float* po, float* mo, float* vo);
// One parameter's arrays for AdamMany: p, g, m, v in; po, mo, vo out; n values each.
struct AdamArrays {
  const float *p, *g, *m, *v;
  float *po, *mo, *vo;
  size_t n;
};
// The same update of every parameter in one parallel pass over all their values (PyTorch's
// multi-tensor Adam, foreach=True): one dispatch instead of one per parameter.
void AdamMany(const AdamArrays* list, size_t count, const AdamHyper& h);
// Per-channel mean and biased variance of x [rows, c].
void BatchNormStats(const float* x, size_t rows, size_t c, float* mean, float* variance);
// y = (x − mean)·invStd·γ + β per channel, x and y [rows, c].
void BatchNormApply(const float* x, size_t rows, size_t c, const float* mean, const float* invStd, const float* gamma, const float* beta,
                    float* y);
// Training-mode BatchNorm backward: dx [rows, c], dγ and dβ [c].
void BatchNormGrad(const float* dy, const float* x, size_t rows, size_t c, const float* mean, const float* invStd, const float* gamma,
                   float* dx, float* dgamma, float* dbeta);
// outer copies of `chunk` floats from src + o·srcStride + srcOff to dst + o·dstStride + dstOff.
void CopyChunks(const float* src, int64_t srcStride, int64_t srcOff, float* dst, int64_t dstStride, int64_t dstOff, int64_t chunk,
                int64_t outer);
// z = GELU(BatchNorm(x)) per channel, x and z [rows, c] (training mode: the batch's mean and invStd).
void BatchNormGeluApply(const float* x, size_t rows, size_t c, const float* mean, const float* invStd, const float* gamma, const float* beta,
                        float* z);
// Its gradient from dz and x alone: dx [rows, c]; dγ, dβ and dbias = Σdx (a bias added to x) [c].
void BatchNormGeluGrad(const float* dz, const float* x, size_t rows, size_t c, const float* mean, const float* invStd, const float* gamma,
                       const float* beta, float* dx, float* dgamma, float* dbeta, float* dbias);
// bf16 copies of floats, rounded to nearest even (NaN stays NaN), and back.
void ToBf16(const float* x, uint16_t* y, size_t n);
void FromBf16(const uint16_t* x, float* y, size_t n);
// Per-channel sums out[k] = Σ_r x[r·c + k] of x [rows, c] (a bias gradient).
void ChannelSum(const float* x, size_t rows, size_t c, float* out);
// The operations and operand shapes of Binary.
enum BinaryOp { kAdd = 0, kSub = 1, kMul = 2 };
// An operand of Binary, against the output [outer, inner, c]: the whole tensor, one value per
// sample and channel [outer, c], one per channel [c], or one value.
enum OperandKind { kFull = 0, kPerSample = 1, kPerChannel = 2, kScalar = 3 };
// out = a op b over out [outer, inner, c], each operand broadcast by its kind.
void Binary(int op, const float* a, int kindA, const float* b, int kindB, float* out, size_t outer, size_t inner, size_t c);
// Direct convolutions with one output channel (the UNet's last layer, where oneDNN's kernels,
// blocked over 16 output channels, waste 15 of 16 lanes): x NHWC [n,h,w,ci], the filter HWIO
// [fh,fw,ci,1], y and dy [n,ho,wo]. Dilations count from 1 (none), as TF.js's; pads are the
// top and left ones (the bottom and right follow from ho and wo). Accumulation in float over each
// output's taps; the filter gradient sums each row in float and the rows in float64.
struct ConvGeometry {
  int n, h, w, ci, ho, wo, fh, fw, sh, sw, dh, dw, pt, pl;
};
// y = conv(x, w) + bias (bias may be null), then act: 0 none, 1 ReLU, 2 exact GELU.
void ConvOneOutForward(const ConvGeometry& g, const float* x, const float* w, const float* bias, int act, float* y);
// dw = the filter gradient of conv(x, w) for dy.
void ConvOneOutBackwardFilter(const ConvGeometry& g, const float* x, const float* dy, float* dw);
}  // namespace pointwise
