// oneDNN convolutions for the TF.js engines (issue 16): the same library and kernels that
// PyTorch's CPU convolutions run. NHWC float32 activations and HWIO filters are read and written
// in place (typed-array views on the wasm heap, or the cpu backend's own arrays); only the
// filter is reordered into the layout the chosen oneDNN kernel wants, since it is small.
//
// Exports:
//   conv(op, a, b, bias, out, geom, activation)  op 0 forward:         a = x,  b = w,  out = y
//                                                op 1 backward data:   a = dy, b = w,  out = dx
//                                                op 2 backward filter: a = x,  b = dy, out = dw
//     geom: Int32Array [N, H, W, Cin, Ho, Wo, Cout, fh, fw, sh, sw, dh, dw, padTop, padLeft,
//                       padBottom, padRight] (TF.js dilations: 1 = none)
//     activation (forward only): 0 none, 1 relu, 2 exact GELU
//   conv(op, a, b, bias, out, geom, activation, keepA, keepB)   the same; in bf16, a and b's bf16
//     copies are kept under the ids keepA, keepB (≥ 1; 0: not kept) for later calls to reuse
//   releaseBf16(id), keptBf16()       forget a kept copy; how many are kept
//   gelu(x, y), geluGrad(dy, x, dx)                  exact GELU and its gradient (pointwise.cc)
//   bnStats(x, C, mean, variance), bnApply(x, C, mean, invStd, gamma, beta, y),
//   bnGrad(dy, x, C, mean, invStd, gamma, dx, dgamma, dbeta)   training BatchNorm over [rows, C]
//   copyChunks(src, srcStride, srcOff, dst, dstStride, dstOff, chunk, outer)   strided copies (Concat, SplitV)
//   adam(p, g, m, v, beta1, beta2, eps, stepSize, sqrtBc2, pOut, mOut, vOut), adamMany(arrays, …)   Adam
//   setThreads(n), threads(), version(), cachedPrimitives(), cacheCapacity(), clearCache()
//   setPrecision(bf16), precision()   convolutions in fp32 (0) or with bf16 inputs, fp32 accumulation and outputs (1)
//
// Every call with bad arguments throws one JS error "diffusion_native.<function>: <why>" (see
// Call below): a wrong argument count, a value of the wrong type, a number that is not a whole
// number in range, arrays that do not hold what the sizes say, sizes whose products overflow.
#include <napi.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <list>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "dnnl.hpp"
#include "pointwise.h"

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& Engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::stream& Stream() {
  static dnnl::stream s(Engine());
  return s;
}

enum Op { kForward = 0, kBackwardData = 1, kBackwardFilter = 2 };

struct Geom {
  int n, h, w, ci, ho, wo, co, fh, fw, sh, sw, dh, dw, pt, pl, pb, pr;
  memory::dims Src() const { return {n, ci, h, w}; }
  memory::dims Dst() const { return {n, co, ho, wo}; }
  memory::dims Wei() const { return {co, ci, fh, fw}; }
  memory::dims Strides() const { return {sh, sw}; }
  // oneDNN counts dilation from 0 (no dilation), TF.js from 1.
  memory::dims Dilates() const { return {dh - 1, dw - 1}; }
  memory::dims PadL() const { return {pt, pl}; }
  memory::dims PadR() const { return {pb, pr}; }
  size_t SrcSize() const { return size_t(n) * h * w * ci; }
  size_t DstSize() const { return size_t(n) * ho * wo * co; }
  size_t WeiSize() const { return size_t(fh) * fw * ci * co; }
};

// One cached primitive with the filter layout it wants (PyTorch caches the same way).
struct Entry {
  dnnl::primitive prim;
  memory::desc weiUser;   // HWIO, as TF.js stores filters
  memory::desc weiPrim;   // what the primitive wants
  bool reorderWei = false;
  dnnl::reorder weiReorder;  // user -> prim (forward, backward data) or prim -> user (backward filter)
  std::unique_ptr<memory> weiScratch;
  bool hasBias = false;
  bool bf16 = false;     // activations converted to bf16 before the primitive runs
  bool bf16Out = false;  // backward data writes bf16 dx, converted to fp32 after
};

// bf16 copies of the activations a call converts (grown as needed, reused across calls).
std::vector<uint16_t> g_bf16A, g_bf16B, g_bf16Out;

// A bf16 copy of n floats in buf (resized), for a primitive that reads bf16.
uint16_t* ToBf16(const float* x, size_t n, std::vector<uint16_t>& buf) {
  if (buf.size() < n) buf.resize(n);
  pointwise::ToBf16(x, buf.data(), n);
  return buf.data();
}

// bf16 copies of activations kept between calls under the caller's ids (conv's keepA, keepB).
// In bf16 training a convolution's input, converted for the forward pass, is read again by its
// filter gradient, and dy by both gradients; PyTorch's autocast keeps such activations in bf16.
// The caller (lib/engine/native.ts) gives each id to one tensor, whose values never change, and
// releases it when the tensor's memory is freed. Past kKeptBytes nothing more is kept (the call
// converts into its scratch buffer, as without an id), and freed buffers are reused (a fresh
// multi-megabyte allocation costs about as much as the conversion it saves).
class Bf16Store {
 public:
  static constexpr size_t kKeptBytes = size_t(1) << 30;
  static constexpr size_t kPoolBuffers = 64;

  // The bf16 copy of x (n values) kept under id, converted on the first call; null when the store
  // is full. (Nothing kept is freed here: the other operand of the same call may be a kept copy.)
  const uint16_t* Get(int64_t id, const float* x, size_t n) {
    auto it = kept_.find(id);
    if (it != kept_.end() && it->second.n == n) return it->second.data.get();
    if (it != kept_.end() || bytes_ + 2 * n > kKeptBytes) return nullptr;
    Buf b = Take(n);
    pointwise::ToBf16(x, b.data.get(), n);
    bytes_ += 2 * n;
    return kept_.emplace(id, std::move(b)).first->second.data.get();
  }
  void Release(int64_t id) {
    auto it = kept_.find(id);
    if (it != kept_.end()) Forget(it);
  }
  void Clear() {
    kept_.clear();
    pool_.clear();
    bytes_ = 0;
  }
  size_t Size() const { return kept_.size(); }

 private:
  struct Buf {
    std::unique_ptr<uint16_t[]> data;
    size_t cap = 0;
    size_t n = 0;
  };
  // The smallest pooled buffer that holds n values, else a new one (not zeroed: it is written whole).
  Buf Take(size_t n) {
    size_t best = pool_.size();
    for (size_t i = 0; i < pool_.size(); i++)
      if (pool_[i].cap >= n && (best == pool_.size() || pool_[i].cap < pool_[best].cap)) best = i;
    Buf b;
    if (best < pool_.size()) {
      b = std::move(pool_[best]);
      pool_.erase(pool_.begin() + std::ptrdiff_t(best));
    } else {
      b.data.reset(new uint16_t[n]);
      b.cap = n;
    }
    b.n = n;
    return b;
  }
  void Forget(std::unordered_map<int64_t, Buf>::iterator it) {
    bytes_ -= 2 * it->second.n;
    pool_.push_back(std::move(it->second));
    kept_.erase(it);
    if (pool_.size() > kPoolBuffers) pool_.erase(pool_.begin());
  }
  std::unordered_map<int64_t, Buf> kept_;
  std::vector<Buf> pool_;
  size_t bytes_ = 0;
};

Bf16Store g_kept;

// The primitives, least recently used first out once there are kCacheCapacity: each holds
// oneDNN's kernel and its filter scratch (about 80 KB for the Part B UNet's layers), so an
// unbounded cache grows with every distinct shape a caller makes (5,000 shapes: 390 MB). The
// Part B UNet needs a few dozen per batch size.
constexpr size_t kCacheCapacity = 256;

class PrimitiveCache {
 public:
  // The entry for key, made by build() when absent; it becomes the most recently used.
  template <typename F>
  Entry& Get(const std::string& key, F build) {
    auto it = map_.find(key);
    if (it != map_.end()) {
      order_.splice(order_.begin(), order_, it->second.second);
      return *it->second.first;
    }
    std::unique_ptr<Entry> e = build();  // may throw: nothing is inserted then
    order_.push_front(key);
    Entry& ref = *e;
    map_.emplace(key, std::make_pair(std::move(e), order_.begin()));
    while (map_.size() > kCacheCapacity) {
      map_.erase(order_.back());
      order_.pop_back();
    }
    return ref;
  }
  size_t Size() const { return map_.size(); }
  void Clear() {
    map_.clear();
    order_.clear();
  }

 private:
  std::list<std::string> order_;  // most recently used first
  std::unordered_map<std::string, std::pair<std::unique_ptr<Entry>, std::list<std::string>::iterator>> map_;
};

PrimitiveCache cache;

// The convolutions' precision (setPrecision): f32, or bf16 inputs (activations and filters
// converted on each call; fp32 accumulation, fp32 outputs and filter gradients, the caller's
// fp32 master weights untouched), the mixed precision of PyTorch's CPU autocast.
bool g_bf16 = false;

memory::desc Md(const memory::dims& d, tag t, dt type = dt::f32) { return memory::desc(d, type, t); }

#if DNNL_VERSION_MAJOR >= 3
dnnl::convolution_forward::primitive_desc ForwardPd(const Geom& g, bool bias, int act, dnnl::prop_kind pk, dt in = dt::f32, dt out = dt::f32) {
  dnnl::primitive_attr attr;
  if (act != 0) {
    dnnl::post_ops po;
    po.append_eltwise(act == 1 ? dnnl::algorithm::eltwise_relu : dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
    attr.set_post_ops(po);
  }
  auto wAny = memory::desc(g.Wei(), in, tag::any);
  if (bias)
    return dnnl::convolution_forward::primitive_desc(Engine(), pk, dnnl::algorithm::convolution_direct, Md(g.Src(), tag::nhwc, in), wAny,
                                                     Md({g.co}, tag::x), Md(g.Dst(), tag::nhwc, out), g.Strides(), g.Dilates(), g.PadL(),
                                                     g.PadR(), attr);
  return dnnl::convolution_forward::primitive_desc(Engine(), pk, dnnl::algorithm::convolution_direct, Md(g.Src(), tag::nhwc, in), wAny,
                                                   Md(g.Dst(), tag::nhwc, out), g.Strides(), g.Dilates(), g.PadL(), g.PadR(), attr);
}
#else
dnnl::convolution_forward::primitive_desc ForwardPd(const Geom& g, bool bias, int act, dnnl::prop_kind pk, dt in = dt::f32, dt out = dt::f32) {
  dnnl::primitive_attr attr;
  if (act != 0) {
    // 1: ReLU; 2: exact GELU, x·Φ(x) (oneDNN's gelu_erf).
    dnnl::post_ops po;
    po.append_eltwise(1.f, act == 1 ? dnnl::algorithm::eltwise_relu : dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
    attr.set_post_ops(po);
  }
  auto wAny = memory::desc(g.Wei(), in, tag::any);
  if (bias) {
    dnnl::convolution_forward::desc d(pk, dnnl::algorithm::convolution_direct, Md(g.Src(), tag::nhwc, in), wAny, Md({g.co}, tag::x),
                                      Md(g.Dst(), tag::nhwc, out), g.Strides(), g.Dilates(), g.PadL(), g.PadR());
    return dnnl::convolution_forward::primitive_desc(d, attr, Engine());
  }
  dnnl::convolution_forward::desc d(pk, dnnl::algorithm::convolution_direct, Md(g.Src(), tag::nhwc, in), wAny, Md(g.Dst(), tag::nhwc, out),
                                    g.Strides(), g.Dilates(), g.PadL(), g.PadR());
  return dnnl::convolution_forward::primitive_desc(d, attr, Engine());
}
#endif

// The backward-data primitive for dy and filters of type `in`, writing dx of type `out`.
dnnl::convolution_backward_data::primitive_desc BackwardDataPd(const Geom& g, dt in, dt out) {
  auto hint = ForwardPd(g, false, 0, dnnl::prop_kind::forward_training, in, in);
  auto wAny = memory::desc(g.Wei(), in, tag::any);
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::convolution_backward_data::primitive_desc(Engine(), dnnl::algorithm::convolution_direct, Md(g.Src(), tag::nhwc, out), wAny,
                                                         Md(g.Dst(), tag::nhwc, in), g.Strides(), g.Dilates(), g.PadL(), g.PadR(), hint);
#else
  dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, Md(g.Src(), tag::nhwc, out), wAny, Md(g.Dst(), tag::nhwc, in),
                                          g.Strides(), g.Dilates(), g.PadL(), g.PadR());
  return dnnl::convolution_backward_data::primitive_desc(d, Engine(), hint);
#endif
}

std::unique_ptr<Entry> Build(Op op, const Geom& g, bool bias, int act) {
  auto e = std::make_unique<Entry>();
  e->weiUser = Md(g.Wei(), tag::hwio);
  e->hasBias = bias;
  e->bf16 = g_bf16;
  const dt in = g_bf16 ? dt::bf16 : dt::f32;
  if (op == kForward) {
    auto pd = ForwardPd(g, bias, act, dnnl::prop_kind::forward_inference, in, dt::f32);
    e->prim = dnnl::convolution_forward(pd);
    e->weiPrim = pd.weights_desc();
  } else if (op == kBackwardData) {
    // bf16: fp32 dx straight from the kernel where oneDNN has one, else bf16 dx converted after.
    dnnl::convolution_backward_data::primitive_desc pd;
    try {
      pd = BackwardDataPd(g, in, dt::f32);
    } catch (const dnnl::error&) {
      if (!g_bf16) throw;
      pd = BackwardDataPd(g, in, in);
      e->bf16Out = true;
    }
    e->prim = dnnl::convolution_backward_data(pd);
    e->weiPrim = pd.weights_desc();
  } else {
    auto hint = ForwardPd(g, false, 0, dnnl::prop_kind::forward_training, in, in);
    auto wAny = memory::desc(g.Wei(), dt::f32, tag::any);  // filter gradients in fp32 (accumulated so)
#if DNNL_VERSION_MAJOR >= 3
    dnnl::convolution_backward_weights::primitive_desc pd(Engine(), dnnl::algorithm::convolution_direct, Md(g.Src(), tag::nhwc, in), wAny,
                                                          Md(g.Dst(), tag::nhwc, in), g.Strides(), g.Dilates(), g.PadL(), g.PadR(), hint);
#else
    dnnl::convolution_backward_weights::desc d(dnnl::algorithm::convolution_direct, Md(g.Src(), tag::nhwc, in), wAny, Md(g.Dst(), tag::nhwc, in),
                                               g.Strides(), g.Dilates(), g.PadL(), g.PadR());
    dnnl::convolution_backward_weights::primitive_desc pd(d, Engine(), hint);
#endif
    e->prim = dnnl::convolution_backward_weights(pd);
    e->weiPrim = pd.diff_weights_desc();
  }
  e->reorderWei = e->weiPrim != e->weiUser;
  if (e->reorderWei) {
    e->weiScratch = std::make_unique<memory>(e->weiPrim, Engine());
    if (op == kBackwardFilter)
      e->weiReorder = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), e->weiPrim, Engine(), e->weiUser));
    else
      e->weiReorder = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), e->weiUser, Engine(), e->weiPrim));
  }
  return e;
}

std::string Key(Op op, const Geom& g, bool bias, int act) {
  std::ostringstream k;
  k << op << ':' << bias << ':' << act << ':' << (g_bf16 ? "bf16" : "f32");
  const int* v = &g.n;
  for (int i = 0; i < 17; i++) k << ',' << v[i];
  return k.str();
}

// ---------------------------------------------------------------------------------------------
// Argument checks. Every exported function reads its arguments through one Call, which checks
// each value's type and range before reading it and throws the call's one JS error at the first
// bad one. Nothing else may throw: with NAPI_DISABLE_CPP_EXCEPTIONS a napi read of the wrong type
// (As<Number>() on a string, say) leaves an exception pending, and throwing a second one aborts
// the process ("FATAL ERROR: Error::ThrowAsJavaScriptException napi_throw"). So no accessor runs
// on a value whose type was not checked first, and after a failure every read just returns false.

// The largest whole number a double holds exactly: the bound of every size and offset read.
constexpr int64_t kMaxWhole = int64_t(1) << 53;
// setThreads' bound: OpenMP aborts the process when it cannot create a thread it was told to.
constexpr int64_t kMaxThreads = 256;

std::string Describe(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined:
      return "undefined";
    case napi_null:
      return "null";
    case napi_boolean:
      return "a boolean";
    case napi_number: {
      // About as JavaScript writes it: NaN, Infinity, whole numbers in full, others in the fewest
      // digits that read back as the same double (1.9, not 1.8999999999999999).
      const double d = v.As<Napi::Number>().DoubleValue();
      if (std::isnan(d)) return "NaN";
      if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
      char buf[64];
      if (d == std::floor(d) && std::fabs(d) < 1e21) {
        std::snprintf(buf, sizeof buf, "%.0f", d);
        return buf;
      }
      for (int digits = 1; digits <= 17; digits++) {
        std::snprintf(buf, sizeof buf, "%.*g", digits, d);
        if (std::strtod(buf, nullptr) == d) break;
      }
      return buf;
    }
    case napi_string:
      return "a string";
    case napi_symbol:
      return "a symbol";
    case napi_function:
      return "a function";
    case napi_bigint:
      return "a bigint";
    default:
      break;
  }
  if (v.IsTypedArray()) {
    auto ta = v.As<Napi::TypedArray>();
    const char* kind = ta.TypedArrayType() == napi_float32_array ? "Float32Array" : ta.TypedArrayType() == napi_int32_array ? "Int32Array" : "typed array of another type";
    return std::string("a ") + kind + " of " + std::to_string(ta.ElementLength());
  }
  if (v.IsArray()) return "an Array";
  return "an object";
}

class Call {
 public:
  Call(const Napi::CallbackInfo& info, const char* fn, size_t nargs, const char* signature) : info_(info), env_(info.Env()), fn_(fn) {
    if (info.Length() != nargs)
      Fail("expected " + std::to_string(nargs) + " argument" + (nargs == 1 ? "" : "s") + " " + signature + ", got " + std::to_string(info.Length()));
  }
  bool ok() const { return !failed_; }
  Napi::Value Undefined() const { return env_.Undefined(); }
  const Napi::CallbackInfo& info() const { return info_; }

  // Throws "diffusion_native.<fn>: <why>" unless this call already threw; returns false.
  bool Fail(const std::string& why) {
    if (failed_) return false;
    failed_ = true;
    if (!env_.IsExceptionPending()) Napi::Error::New(env_, std::string("diffusion_native.") + fn_ + ": " + why).ThrowAsJavaScriptException();
    return false;
  }

  // A whole number in [lo, hi] (hi ≤ 2^53): NaN, ±Infinity, 1.9 and 2^32 are refused, not rounded or wrapped.
  bool Int(size_t at, const char* name, int64_t lo, int64_t hi, int64_t* out) {
    if (failed_) return false;
    const Napi::Value v = info_[at];
    if (!v.IsNumber()) return Fail(std::string(name) + " must be a number, got " + Describe(v));
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= double(lo) && d <= double(hi)) || d != std::floor(d))
      return Fail(std::string(name) + " must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " + Describe(v));
    *out = int64_t(d);
    return true;
  }

  // A finite number (NaN and ±Infinity refused).
  bool Real(size_t at, const char* name, double* out) {
    if (failed_) return false;
    const Napi::Value v = info_[at];
    if (!v.IsNumber()) return Fail(std::string(name) + " must be a number, got " + Describe(v));
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d)) return Fail(std::string(name) + " must be a finite number, got " + Describe(v));
    *out = d;
    return true;
  }

  // A Float32Array of any length.
  bool Floats(size_t at, const char* name, float** data, size_t* len) {
    if (failed_) return false;
    const Napi::Value v = info_[at];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      return Fail(std::string(name) + " must be a Float32Array, got " + Describe(v));
    auto f = v.As<Napi::Float32Array>();
    *data = f.Data();
    *len = f.ElementLength();
    return true;
  }

  // A Float32Array of exactly `want` values.
  bool Floats(size_t at, const char* name, size_t want, float** data) {
    size_t len = 0;
    if (!Floats(at, name, data, &len)) return false;
    if (len != want) return Fail(std::string(name) + " must be a Float32Array of " + std::to_string(want) + " values, got " + std::to_string(len));
    return true;
  }

  // An Int32Array of exactly `want` values.
  bool Ints(size_t at, const char* name, size_t want, const int32_t** data) {
    if (failed_) return false;
    const Napi::Value v = info_[at];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      return Fail(std::string(name) + " must be an Int32Array, got " + Describe(v));
    auto a = v.As<Napi::Int32Array>();
    if (a.ElementLength() != want) return Fail(std::string(name) + " must hold " + std::to_string(want) + " numbers, got " + std::to_string(a.ElementLength()));
    *data = a.Data();
    return true;
  }

 private:
  const Napi::CallbackInfo& info_;
  Napi::Env env_;
  const char* fn_;
  bool failed_ = false;
};

// a·b and a + b in uint64, false on overflow.
bool Mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }
bool Add(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_add_overflow(a, b, out); }

// The product of dims, false on overflow.
bool Product(std::initializer_list<int64_t> dims, uint64_t* out) {
  uint64_t p = 1;
  for (int64_t d : dims)
    if (d < 0 || !Mul(p, uint64_t(d), &p)) return false;
  *out = p;
  return true;
}

// Why a geometry cannot be a convolution ("" when it can): positive sizes, strides and dilations;
// pads from 0 to the dilated kernel's extent − 1 (all TF.js makes); Ho and Wo the output sizes
// of H and W; element counts that fit 64 bits. All in int64, so nothing here overflows.
std::string GeometryError(const Geom& g, uint64_t* src, uint64_t* dst, uint64_t* wei) {
  const int* v = &g.n;
  for (int i = 0; i < 13; i++)
    if (v[i] < 1) return "geometry sizes, strides and dilations must be positive";
  const int64_t extH = int64_t(g.fh - 1) * g.dh + 1, extW = int64_t(g.fw - 1) * g.dw + 1;
  for (int64_t p : {g.pt, g.pb})
    if (p < 0 || p >= extH) return "pads must be from 0 to the dilated filter height − 1";
  for (int64_t p : {g.pl, g.pr})
    if (p < 0 || p >= extW) return "pads must be from 0 to the dilated filter width − 1";
  const int64_t spanH = int64_t(g.h) + g.pt + g.pb - extH, spanW = int64_t(g.w) + g.pl + g.pr - extW;
  if (spanH < 0 || spanW < 0) return "the dilated filter is larger than the padded input";
  if (spanH / g.sh + 1 != g.ho || spanW / g.sw + 1 != g.wo) return "Ho and Wo are not the output size of H and W under this filter, stride, dilation and padding";
  if (!Product({g.n, g.h, g.w, g.ci}, src) || !Product({g.n, g.ho, g.wo, g.co}, dst) || !Product({g.fh, g.fw, g.ci, g.co}, wei))
    return "the geometry's element counts overflow";
  return "";
}

// A 1×1 filter (after dilation) with a stride above 1: oneDNN 2.6.3 runs its backward-filter
// pass in jit_1x1 with a strided-source copy that corrupts the heap (found by
// test/engine/nativeFuzz.test.ts; lib/engine/native.ts sends these to the engine's own kernel).
bool Unsafe1x1BackwardFilter(const Geom& g) { return g.fh == 1 && g.fw == 1 && (g.sh > 1 || g.sw > 1); }

Napi::Value Conv(const Napi::CallbackInfo& info) {
  Call c(info, "conv", info.Length() == 9 ? 9 : 7, "(op, a, b, bias, out, geom, activation[, keepA, keepB])");
  int64_t op = 0, act = 0;
  float *a = nullptr, *b = nullptr, *out = nullptr, *bias = nullptr;
  size_t na = 0, nb = 0, nout = 0, nbias = 0;
  const int32_t* gv = nullptr;
  if (!c.Int(0, "op", 0, 2, &op) || !c.Floats(1, "a", &a, &na) || !c.Floats(2, "b", &b, &nb)) return c.Undefined();
  if (!info[3].IsNull() && !info[3].IsUndefined() && !c.Floats(3, "bias (or null)", &bias, &nbias)) return c.Undefined();
  if (!c.Floats(4, "out", &out, &nout) || !c.Ints(5, "geom", 17, &gv) || !c.Int(6, "activation", 0, 2, &act)) return c.Undefined();
  int64_t keepA = 0, keepB = 0;
  if (info.Length() == 9 && (!c.Int(7, "keepA", 0, kMaxWhole, &keepA) || !c.Int(8, "keepB", 0, kMaxWhole, &keepB))) return c.Undefined();
  if (act != 0 && op != kForward) c.Fail("activation must be 0 (none), 1 (relu) or 2 (gelu), the last two forward only");
  if (!c.ok()) return c.Undefined();
  Geom g;
  std::memcpy(&g, gv, sizeof(int) * 17);
  uint64_t src = 0, dst = 0, wei = 0;
  const std::string bad = GeometryError(g, &src, &dst, &wei);
  if (!bad.empty()) {
    c.Fail(bad);
    return c.Undefined();
  }
  if (op == kBackwardFilter && Unsafe1x1BackwardFilter(g)) {
    c.Fail("oneDNN 2.6's backward-filter kernel for a 1×1 filter with a stride writes out of bounds: use another kernel for it");
    return c.Undefined();
  }
  // The typed arrays must hold what the geometry says, so the kernel never reads or writes past them.
  const uint64_t wantA = op == kBackwardData ? dst : src;
  const uint64_t wantB = op == kBackwardFilter ? dst : wei;
  const uint64_t wantOut = op == kForward ? dst : op == kBackwardData ? src : wei;
  if (na != wantA || nb != wantB || nout != wantOut)
    c.Fail("array lengths do not match the geometry: a, b, out hold " + std::to_string(na) + ", " + std::to_string(nb) + ", " + std::to_string(nout) +
           " values, the geometry needs " + std::to_string(wantA) + ", " + std::to_string(wantB) + ", " + std::to_string(wantOut));
  else if (bias && (op != kForward || nbias != size_t(g.co)))
    c.Fail("bias must have Cout elements (forward only)");
  if (!c.ok()) return c.Undefined();

  try {
    const Op o = static_cast<Op>(op);
    // One output channel (the UNet's last layer): oneDNN's kernels, blocked over 16 output
    // channels, waste 15 of 16 lanes. The direct kernels (pointwise.h) take its forward pass (1.6×
    // faster than oneDNN's fp32 kernel at D = 64, and than its bf16 one with the conversion) and
    // its filter gradient (5×); the data gradient stays with oneDNN (as fast in fp32, faster in bf16).
    if (g.co == 1 && o != kBackwardData) {
      const pointwise::ConvGeometry d{g.n, g.h, g.w, g.ci, g.ho, g.wo, g.fh, g.fw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl};
      if (o == kForward)
        pointwise::ConvOneOutForward(d, a, b, bias, int(act), out);
      else
        pointwise::ConvOneOutBackwardFilter(d, a, b, out);
      return c.Undefined();
    }
    Entry& e = cache.Get(Key(o, g, bias != nullptr, int(act)), [&] { return Build(o, g, bias != nullptr, int(act)); });
    auto& s = Stream();
    // bf16: the activations read as bf16 copies (the filters are converted by their reorder).
    const dt in = e.bf16 ? dt::bf16 : dt::f32;
    // A kept copy (keep id ≥ 1) or one in the scratch buffer; never the filter (b of ops 0 and 1).
    auto act16 = [&](float* v, size_t n, std::vector<uint16_t>& buf, int64_t keep) -> void* {
      if (!e.bf16) return v;
      const uint16_t* kept = keep > 0 ? g_kept.Get(keep, v, n) : nullptr;
      return kept ? const_cast<uint16_t*>(kept) : ToBf16(v, n, buf);
    };
    auto srcMd = Md(g.Src(), tag::nhwc, in);
    auto dstMd = Md(g.Dst(), tag::nhwc, in);
    if (op == kForward) {
      memory srcM(srcMd, Engine(), act16(a, na, g_bf16A, keepA)), dstM(Md(g.Dst(), tag::nhwc), Engine(), out), wUser(e.weiUser, Engine(), b);
      memory w = wUser;
      if (e.reorderWei) {
        e.weiReorder.execute(s, wUser, *e.weiScratch);
        w = *e.weiScratch;
      }
      std::unordered_map<int, memory> args{{DNNL_ARG_SRC, srcM}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dstM}};
      if (bias) args.emplace(DNNL_ARG_BIAS, memory(Md({g.co}, tag::x), Engine(), bias));
      e.prim.execute(s, args);
    } else if (op == kBackwardData) {
      if (e.bf16Out && g_bf16Out.size() < nout) g_bf16Out.resize(nout);
      memory dDst(dstMd, Engine(), act16(a, na, g_bf16A, keepA)), wUser(e.weiUser, Engine(), b);
      memory dSrc = e.bf16Out ? memory(srcMd, Engine(), g_bf16Out.data()) : memory(Md(g.Src(), tag::nhwc), Engine(), out);
      memory w = wUser;
      if (e.reorderWei) {
        e.weiReorder.execute(s, wUser, *e.weiScratch);
        w = *e.weiScratch;
      }
      e.prim.execute(s, {{DNNL_ARG_DIFF_DST, dDst}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dSrc}});
      if (e.bf16Out) {
        s.wait();
        pointwise::FromBf16(g_bf16Out.data(), out, nout);
      }
    } else {
      memory srcM(srcMd, Engine(), act16(a, na, g_bf16A, keepA)), dDst(dstMd, Engine(), act16(b, nb, g_bf16B, keepB)),
          dwUser(e.weiUser, Engine(), out);
      memory dw = e.reorderWei ? *e.weiScratch : dwUser;
      e.prim.execute(s, {{DNNL_ARG_SRC, srcM}, {DNNL_ARG_DIFF_DST, dDst}, {DNNL_ARG_DIFF_WEIGHTS, dw}});
      if (e.reorderWei) e.weiReorder.execute(s, *e.weiScratch, dwUser);
    }
    s.wait();
  } catch (const dnnl::error& err) {
    c.Fail(std::string("oneDNN: ") + err.what());
  } catch (const std::exception& err) {
    c.Fail(err.what());
  }
  return c.Undefined();
}

// The channel count argument: a whole number ≥ 1 dividing the tensor's length n; rows = n / C.
bool Channels(Call& c, size_t at, size_t n, bool needRows, size_t* ch, size_t* rows) {
  int64_t v = 0;
  if (!c.Int(at, "C", 1, kMaxWhole, &v)) return false;
  if (n % uint64_t(v) != 0) return c.Fail("C must be a positive divisor of the tensor length (" + std::to_string(n) + "), got " + std::to_string(v));
  *ch = size_t(v);
  *rows = n / size_t(v);
  // Statistics of no rows would divide by zero and read the first row for the shift.
  if (needRows && *rows == 0) return c.Fail("the tensor holds no rows: BatchNorm needs at least one value per channel");
  return true;
}

// Runs f, turning a C++ exception (std::bad_alloc from a scratch vector) into the call's error.
template <typename F>
Napi::Value Run(Call& c, F f) {
  if (!c.ok()) return c.Undefined();
  try {
    f();
  } catch (const std::exception& err) {
    c.Fail(err.what());
  }
  return c.Undefined();
}

Napi::Value Gelu(const Napi::CallbackInfo& info) {
  Call c(info, "gelu", 2, "(x, y)");
  float *x = nullptr, *y = nullptr;
  size_t n = 0;
  c.Floats(0, "x (argument 0)", &x, &n) && c.Floats(1, "y (argument 1)", n, &y);
  return Run(c, [&] { pointwise::Gelu(x, y, n); });
}

Napi::Value GeluGrad(const Napi::CallbackInfo& info) {
  Call c(info, "geluGrad", 3, "(dy, x, dx)");
  float *dy = nullptr, *x = nullptr, *dx = nullptr;
  size_t n = 0;
  c.Floats(0, "dy (argument 0)", &dy, &n) && c.Floats(1, "x (argument 1)", n, &x) && c.Floats(2, "dx (argument 2)", n, &dx);
  return Run(c, [&] { pointwise::GeluGrad(dy, x, dx, n); });
}

Napi::Value BnStats(const Napi::CallbackInfo& info) {
  Call c(info, "bnStats", 4, "(x, C, mean, variance)");
  float *x = nullptr, *mean = nullptr, *var = nullptr;
  size_t n = 0, ch = 0, rows = 0;
  c.Floats(0, "x (argument 0)", &x, &n) && Channels(c, 1, n, true, &ch, &rows) && c.Floats(2, "mean (argument 2)", ch, &mean) &&
      c.Floats(3, "variance (argument 3)", ch, &var);
  return Run(c, [&] { pointwise::BatchNormStats(x, rows, ch, mean, var); });
}

Napi::Value BnApply(const Napi::CallbackInfo& info) {
  Call c(info, "bnApply", 7, "(x, C, mean, invStd, gamma, beta, y)");
  float *x = nullptr, *mean = nullptr, *invStd = nullptr, *gamma = nullptr, *beta = nullptr, *y = nullptr;
  size_t n = 0, ch = 0, rows = 0;
  c.Floats(0, "x (argument 0)", &x, &n) && Channels(c, 1, n, false, &ch, &rows) && c.Floats(2, "mean (argument 2)", ch, &mean) &&
      c.Floats(3, "invStd (argument 3)", ch, &invStd) && c.Floats(4, "gamma (argument 4)", ch, &gamma) && c.Floats(5, "beta (argument 5)", ch, &beta) &&
      c.Floats(6, "y (argument 6)", n, &y);
  return Run(c, [&] { pointwise::BatchNormApply(x, rows, ch, mean, invStd, gamma, beta, y); });
}

Napi::Value BnGrad(const Napi::CallbackInfo& info) {
  Call c(info, "bnGrad", 9, "(dy, x, C, mean, invStd, gamma, dx, dgamma, dbeta)");
  float *dy = nullptr, *x = nullptr, *mean = nullptr, *invStd = nullptr, *gamma = nullptr, *dx = nullptr, *dgamma = nullptr, *dbeta = nullptr;
  size_t n = 0, ch = 0, rows = 0;
  c.Floats(0, "dy (argument 0)", &dy, &n) && c.Floats(1, "x (argument 1)", n, &x) && Channels(c, 2, n, true, &ch, &rows) &&
      c.Floats(3, "mean (argument 3)", ch, &mean) && c.Floats(4, "invStd (argument 4)", ch, &invStd) && c.Floats(5, "gamma (argument 5)", ch, &gamma) &&
      c.Floats(6, "dx (argument 6)", n, &dx) && c.Floats(7, "dgamma (argument 7)", ch, &dgamma) && c.Floats(8, "dbeta (argument 8)", ch, &dbeta);
  return Run(c, [&] { pointwise::BatchNormGrad(dy, x, rows, ch, mean, invStd, gamma, dx, dgamma, dbeta); });
}

Napi::Value BnGeluApply(const Napi::CallbackInfo& info) {
  Call c(info, "bnGeluApply", 7, "(x, C, mean, invStd, gamma, beta, z)");
  float *x = nullptr, *mean = nullptr, *invStd = nullptr, *gamma = nullptr, *beta = nullptr, *z = nullptr;
  size_t n = 0, ch = 0, rows = 0;
  c.Floats(0, "x (argument 0)", &x, &n) && Channels(c, 1, n, false, &ch, &rows) && c.Floats(2, "mean (argument 2)", ch, &mean) &&
      c.Floats(3, "invStd (argument 3)", ch, &invStd) && c.Floats(4, "gamma (argument 4)", ch, &gamma) && c.Floats(5, "beta (argument 5)", ch, &beta) &&
      c.Floats(6, "z (argument 6)", n, &z);
  return Run(c, [&] { pointwise::BatchNormGeluApply(x, rows, ch, mean, invStd, gamma, beta, z); });
}

Napi::Value BnGeluGrad(const Napi::CallbackInfo& info) {
  Call c(info, "bnGeluGrad", 11, "(dz, x, C, mean, invStd, gamma, beta, dx, dgamma, dbeta, dbias)");
  float *dz = nullptr, *x = nullptr, *mean = nullptr, *invStd = nullptr, *gamma = nullptr, *beta = nullptr, *dx = nullptr, *dgamma = nullptr,
        *dbeta = nullptr, *dbias = nullptr;
  size_t n = 0, ch = 0, rows = 0;
  c.Floats(0, "dz (argument 0)", &dz, &n) && c.Floats(1, "x (argument 1)", n, &x) && Channels(c, 2, n, true, &ch, &rows) &&
      c.Floats(3, "mean (argument 3)", ch, &mean) && c.Floats(4, "invStd (argument 4)", ch, &invStd) && c.Floats(5, "gamma (argument 5)", ch, &gamma) &&
      c.Floats(6, "beta (argument 6)", ch, &beta) && c.Floats(7, "dx (argument 7)", n, &dx) && c.Floats(8, "dgamma (argument 8)", ch, &dgamma) &&
      c.Floats(9, "dbeta (argument 9)", ch, &dbeta) && c.Floats(10, "dbias (argument 10)", ch, &dbias);
  return Run(c, [&] { pointwise::BatchNormGeluGrad(dz, x, rows, ch, mean, invStd, gamma, beta, dx, dgamma, dbeta, dbias); });
}

// One Adam update of a parameter (PyTorch's semantics): pOut, mOut, vOut from p, g, m, v.
Napi::Value Adam(const Napi::CallbackInfo& info) {
  Call c(info, "adam", 12, "(p, g, m, v, beta1, beta2, eps, stepSize, sqrtBc2, pOut, mOut, vOut)");
  float *p = nullptr, *g = nullptr, *m = nullptr, *v = nullptr, *po = nullptr, *mo = nullptr, *vo = nullptr;
  size_t n = 0;
  pointwise::AdamHyper h{};
  c.Floats(0, "p (argument 0)", &p, &n) && c.Floats(1, "g (argument 1)", n, &g) && c.Floats(2, "m (argument 2)", n, &m) &&
      c.Floats(3, "v (argument 3)", n, &v) && c.Real(4, "beta1 (argument 4)", &h.beta1) && c.Real(5, "beta2 (argument 5)", &h.beta2) &&
      c.Real(6, "eps (argument 6)", &h.eps) && c.Real(7, "stepSize (argument 7)", &h.stepSize) && c.Real(8, "sqrtBc2 (argument 8)", &h.sqrtBc2) &&
      c.Floats(9, "pOut (argument 9)", n, &po) && c.Floats(10, "mOut (argument 10)", n, &mo) && c.Floats(11, "vOut (argument 11)", n, &vo);
  return Run(c, [&] { pointwise::Adam(p, g, m, v, n, h, po, mo, vo); });
}

// adamMany(arrays, beta1, beta2, eps, stepSize, sqrtBc2): adam for every parameter at once;
// arrays holds [p, g, m, v, pOut, mOut, vOut] for each parameter in turn (7·k Float32Arrays, the
// seven of a parameter of one length).
Napi::Value AdamMany(const Napi::CallbackInfo& info) {
  Call c(info, "adamMany", 6, "(arrays, beta1, beta2, eps, stepSize, sqrtBc2)");
  pointwise::AdamHyper h{};
  std::vector<pointwise::AdamArrays> list;
  if (c.ok() && !info[0].IsArray()) c.Fail("arrays must be an Array of Float32Arrays, got " + Describe(info[0]));
  if (c.ok()) {
    const auto arr = info[0].As<Napi::Array>();
    const uint32_t len = arr.Length();
    if (len % 7 != 0) c.Fail("arrays must hold 7 Float32Arrays per parameter (p, g, m, v, pOut, mOut, vOut), got " + std::to_string(len));
    for (uint32_t k = 0; c.ok() && k < len / 7; k++) {
      float* f[7];
      size_t n = 0;
      for (uint32_t j = 0; j < 7 && c.ok(); j++) {
        const Napi::Value v = arr.Get(7 * k + j);
        if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
          c.Fail("arrays[" + std::to_string(7 * k + j) + "] must be a Float32Array, got " + Describe(v));
          break;
        }
        auto a = v.As<Napi::Float32Array>();
        if (j == 0) n = a.ElementLength();
        else if (a.ElementLength() != n)
          c.Fail("arrays[" + std::to_string(7 * k + j) + "] holds " + std::to_string(a.ElementLength()) + " values, its parameter's p " + std::to_string(n));
        f[j] = a.Data();
      }
      if (c.ok()) list.push_back({f[0], f[1], f[2], f[3], f[4], f[5], f[6], n});
    }
  }
  c.Real(1, "beta1", &h.beta1) && c.Real(2, "beta2", &h.beta2) && c.Real(3, "eps", &h.eps) && c.Real(4, "stepSize", &h.stepSize) &&
      c.Real(5, "sqrtBc2", &h.sqrtBc2);
  return Run(c, [&] { pointwise::AdamMany(list.data(), list.size(), h); });
}

// Per-channel sums of x [rows, C] into out [C].
Napi::Value ChannelSum(const Napi::CallbackInfo& info) {
  Call c(info, "channelSum", 3, "(x, C, out)");
  float *x = nullptr, *out = nullptr;
  size_t n = 0, ch = 0, rows = 0;
  c.Floats(0, "x (argument 0)", &x, &n) && Channels(c, 1, n, false, &ch, &rows) && c.Floats(2, "out (argument 2)", ch, &out);
  return Run(c, [&] { pointwise::ChannelSum(x, rows, ch, out); });
}

// The number of values an operand of this kind holds against the output [outer, inner, C].
bool OperandLength(int64_t kind, uint64_t outer, uint64_t inner, uint64_t ch, uint64_t* n) {
  switch (kind) {
    case pointwise::kFull:
      return Mul(outer, inner, n) && Mul(*n, ch, n);
    case pointwise::kPerSample:
      return Mul(outer, ch, n);
    case pointwise::kPerChannel:
      *n = ch;
      return true;
    default:
      *n = 1;
      return true;
  }
}

// out = a op b (0 add, 1 sub, 2 mul) over out [outer, inner, C], each operand of a kind
// (0 the whole tensor, 1 [outer, C], 2 [C], 3 one value).
Napi::Value Binary(const Napi::CallbackInfo& info) {
  Call c(info, "binary", 9, "(op, a, kindA, b, kindB, out, outer, inner, C)");
  int64_t op = 0, ka = 0, kb = 0, outer = 0, inner = 0, ch = 0;
  float *a = nullptr, *b = nullptr, *out = nullptr;
  size_t na = 0, nb = 0, nout = 0;
  c.Int(0, "op", 0, 2, &op) && c.Floats(1, "a", &a, &na) && c.Int(2, "kindA", 0, 3, &ka) && c.Floats(3, "b", &b, &nb) && c.Int(4, "kindB", 0, 3, &kb) &&
      c.Floats(5, "out", &out, &nout) && c.Int(6, "outer", 1, kMaxWhole, &outer) && c.Int(7, "inner", 1, kMaxWhole, &inner) &&
      c.Int(8, "C", 1, kMaxWhole, &ch);
  if (c.ok()) {
    uint64_t wantA = 0, wantB = 0, wantOut = 0;
    const bool fits = OperandLength(ka, outer, inner, ch, &wantA) && OperandLength(kb, outer, inner, ch, &wantB) &&
                      OperandLength(pointwise::kFull, outer, inner, ch, &wantOut);
    if (!fits) c.Fail("outer·inner·C is too large");
    else if (na != wantA || nb != wantB || nout != wantOut)
      c.Fail("array lengths do not match the shape: a, b, out hold " + std::to_string(na) + ", " + std::to_string(nb) + ", " + std::to_string(nout) +
             " values, the kinds and shape need " + std::to_string(wantA) + ", " + std::to_string(wantB) + ", " + std::to_string(wantOut));
  }
  return Run(c, [&] { pointwise::Binary(int(op), a, int(ka), b, int(kb), out, size_t(outer), size_t(inner), size_t(ch)); });
}

// outer copies of `chunk` floats, src[o·srcStride + srcOff …] → dst[o·dstStride + dstOff …].
Napi::Value CopyChunks(const Napi::CallbackInfo& info) {
  Call c(info, "copyChunks", 8, "(src, srcStride, srcOff, dst, dstStride, dstOff, chunk, outer)");
  float *src = nullptr, *dst = nullptr;
  size_t ns = 0, nd = 0;
  int64_t ss = 0, so = 0, ds = 0, dof = 0, chunk = 0, outer = 0;
  c.Floats(0, "src", &src, &ns) && c.Int(1, "srcStride", 0, kMaxWhole, &ss) && c.Int(2, "srcOff", 0, kMaxWhole, &so) && c.Floats(3, "dst", &dst, &nd) &&
      c.Int(4, "dstStride", 0, kMaxWhole, &ds) && c.Int(5, "dstOff", 0, kMaxWhole, &dof) && c.Int(6, "chunk", 0, kMaxWhole, &chunk) &&
      c.Int(7, "outer", 0, kMaxWhole, &outer);
  if (c.ok() && outer > 0 && chunk > 0) {
    // The last copy ends at (outer − 1)·stride + off + chunk, which must not pass the array
    // (in checked arithmetic: a stride of 2^62 must not wrap around to a small end).
    uint64_t endS = 0, endD = 0;
    const bool fits = Mul(uint64_t(outer - 1), uint64_t(ss), &endS) && Add(endS, uint64_t(so), &endS) && Add(endS, uint64_t(chunk), &endS) &&
                      Mul(uint64_t(outer - 1), uint64_t(ds), &endD) && Add(endD, uint64_t(dof), &endD) && Add(endD, uint64_t(chunk), &endD);
    if (!fits || endS > ns || endD > nd) c.Fail("the copies would run past an array");
  }
  return Run(c, [&] {
    if (outer > 0 && chunk > 0) pointwise::CopyChunks(src, ss, so, dst, ds, dof, chunk, outer);
  });
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Call c(info, "setThreads", 1, "(n)");
  int64_t n = 0;
  c.Int(0, "n", 1, kMaxThreads, &n);
  return Run(c, [&] { omp_set_num_threads(int(n)); });
}

// setPrecision(bf16): 1 = bf16 convolutions (see g_bf16), 0 = fp32. Throws when this CPU has no
// bf16 convolution in oneDNN (tried on a small one), leaving fp32.
Napi::Value SetPrecision(const Napi::CallbackInfo& info) {
  Call c(info, "setPrecision", 1, "(bf16)");
  int64_t v = 0;
  c.Int(0, "bf16", 0, 1, &v);
  return Run(c, [&] {
    if (v == 1) {
      Geom g{1, 4, 4, 2, 4, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
      try {
        ForwardPd(g, true, 0, dnnl::prop_kind::forward_inference, dt::bf16, dt::f32);
      } catch (const dnnl::error&) {
        throw std::runtime_error("oneDNN has no bf16 convolution for this CPU");
      }
    }
    g_bf16 = v == 1;
    g_kept.Clear();
  });
}

// releaseBf16(id): forget the bf16 copy kept under id (none kept: nothing to do).
Napi::Value ReleaseBf16(const Napi::CallbackInfo& info) {
  Call c(info, "releaseBf16", 1, "(id)");
  int64_t id = 0;
  c.Int(0, "id", 1, kMaxWhole, &id);
  return Run(c, [&] { g_kept.Release(id); });
}

Napi::Value KeptBf16(const Napi::CallbackInfo& info) {
  Call c(info, "keptBf16", 0, "()");
  return c.ok() ? Napi::Number::New(info.Env(), double(g_kept.Size())) : c.Undefined();
}

Napi::Value Precision(const Napi::CallbackInfo& info) {
  Call c(info, "precision", 0, "()");
  return c.ok() ? Napi::Number::New(info.Env(), g_bf16 ? 1 : 0) : c.Undefined();
}

Napi::Value Threads(const Napi::CallbackInfo& info) {
  Call c(info, "threads", 0, "()");
  return c.ok() ? Napi::Number::New(info.Env(), omp_get_max_threads()) : c.Undefined();
}

Napi::Value Version(const Napi::CallbackInfo& info) {
  Call c(info, "version", 0, "()");
  if (!c.ok()) return c.Undefined();
  const dnnl_version_t* v = dnnl_version();
  std::ostringstream s;
  s << v->major << '.' << v->minor << '.' << v->patch;
  return Napi::String::New(info.Env(), s.str());
}

Napi::Value CachedPrimitives(const Napi::CallbackInfo& info) {
  Call c(info, "cachedPrimitives", 0, "()");
  return c.ok() ? Napi::Number::New(info.Env(), double(cache.Size())) : c.Undefined();
}

Napi::Value CacheCapacity(const Napi::CallbackInfo& info) {
  Call c(info, "cacheCapacity", 0, "()");
  return c.ok() ? Napi::Number::New(info.Env(), double(kCacheCapacity)) : c.Undefined();
}

Napi::Value ClearCache(const Napi::CallbackInfo& info) {
  Call c(info, "clearCache", 0, "()");
  return Run(c, [&] { cache.Clear(); });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("conv", Napi::Function::New(env, Conv));
  exports.Set("gelu", Napi::Function::New(env, Gelu));
  exports.Set("geluGrad", Napi::Function::New(env, GeluGrad));
  exports.Set("bnStats", Napi::Function::New(env, BnStats));
  exports.Set("bnApply", Napi::Function::New(env, BnApply));
  exports.Set("bnGrad", Napi::Function::New(env, BnGrad));
  exports.Set("copyChunks", Napi::Function::New(env, CopyChunks));
  exports.Set("channelSum", Napi::Function::New(env, ChannelSum));
  exports.Set("bnGeluApply", Napi::Function::New(env, BnGeluApply));
  exports.Set("bnGeluGrad", Napi::Function::New(env, BnGeluGrad));
  exports.Set("adam", Napi::Function::New(env, Adam));
  exports.Set("adamMany", Napi::Function::New(env, AdamMany));
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("threads", Napi::Function::New(env, Threads));
  exports.Set("setPrecision", Napi::Function::New(env, SetPrecision));
  exports.Set("precision", Napi::Function::New(env, Precision));
  exports.Set("releaseBf16", Napi::Function::New(env, ReleaseBf16));
  exports.Set("keptBf16", Napi::Function::New(env, KeptBf16));
  exports.Set("version", Napi::Function::New(env, Version));
  exports.Set("cachedPrimitives", Napi::Function::New(env, CachedPrimitives));
  exports.Set("cacheCapacity", Napi::Function::New(env, CacheCapacity));
  exports.Set("clearCache", Napi::Function::New(env, ClearCache));
  return exports;
}

}  // namespace

NODE_API_MODULE(diffusion_native, Init)
