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
//     activation (forward only): 0 none, 1 relu
//   gelu(x, y), geluGrad(dy, x, dx)                  exact GELU and its gradient (pointwise.cc)
//   bnStats(x, C, mean, variance), bnApply(x, C, mean, invStd, gamma, beta, y),
//   bnGrad(dy, x, C, mean, invStd, gamma, dx, dgamma, dbeta)   training BatchNorm over [rows, C]
//   copyChunks(src, srcStride, srcOff, dst, dstStride, dstOff, chunk, outer)   strided copies (Concat, SplitV)
//   setThreads(n), threads(), version(), cachedPrimitives(), clearCache()
#include <napi.h>
#include <omp.h>

#include <cstring>
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
};

std::unordered_map<std::string, std::unique_ptr<Entry>> cache;

memory::desc Md(const memory::dims& d, tag t) { return memory::desc(d, dt::f32, t); }

#if DNNL_VERSION_MAJOR >= 3
dnnl::convolution_forward::primitive_desc ForwardPd(const Geom& g, bool bias, int act, dnnl::prop_kind pk) {
  dnnl::primitive_attr attr;
  if (act == 1) {
    dnnl::post_ops po;
    po.append_eltwise(dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(po);
  }
  auto wAny = memory::desc(g.Wei(), dt::f32, tag::any);
  if (bias)
    return dnnl::convolution_forward::primitive_desc(Engine(), pk, dnnl::algorithm::convolution_direct, Md(g.Src(), tag::nhwc), wAny,
                                                     Md({g.co}, tag::x), Md(g.Dst(), tag::nhwc), g.Strides(), g.Dilates(), g.PadL(),
                                                     g.PadR(), attr);
  return dnnl::convolution_forward::primitive_desc(Engine(), pk, dnnl::algorithm::convolution_direct, Md(g.Src(), tag::nhwc), wAny,
                                                   Md(g.Dst(), tag::nhwc), g.Strides(), g.Dilates(), g.PadL(), g.PadR(), attr);
}
#else
dnnl::convolution_forward::primitive_desc ForwardPd(const Geom& g, bool bias, int act, dnnl::prop_kind pk) {
  dnnl::primitive_attr attr;
  if (act == 1) {
    dnnl::post_ops po;
    po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(po);
  }
  auto wAny = memory::desc(g.Wei(), dt::f32, tag::any);
  if (bias) {
    dnnl::convolution_forward::desc d(pk, dnnl::algorithm::convolution_direct, Md(g.Src(), tag::nhwc), wAny, Md({g.co}, tag::x),
                                      Md(g.Dst(), tag::nhwc), g.Strides(), g.Dilates(), g.PadL(), g.PadR());
    return dnnl::convolution_forward::primitive_desc(d, attr, Engine());
  }
  dnnl::convolution_forward::desc d(pk, dnnl::algorithm::convolution_direct, Md(g.Src(), tag::nhwc), wAny, Md(g.Dst(), tag::nhwc),
                                    g.Strides(), g.Dilates(), g.PadL(), g.PadR());
  return dnnl::convolution_forward::primitive_desc(d, attr, Engine());
}
#endif

std::unique_ptr<Entry> Build(Op op, const Geom& g, bool bias, int act) {
  auto e = std::make_unique<Entry>();
  e->weiUser = Md(g.Wei(), tag::hwio);
  e->hasBias = bias;
  if (op == kForward) {
    auto pd = ForwardPd(g, bias, act, dnnl::prop_kind::forward_inference);
    e->prim = dnnl::convolution_forward(pd);
    e->weiPrim = pd.weights_desc();
  } else if (op == kBackwardData) {
    auto hint = ForwardPd(g, false, 0, dnnl::prop_kind::forward_training);
    auto wAny = memory::desc(g.Wei(), dt::f32, tag::any);
#if DNNL_VERSION_MAJOR >= 3
    dnnl::convolution_backward_data::primitive_desc pd(Engine(), dnnl::algorithm::convolution_direct, Md(g.Src(), tag::nhwc), wAny,
                                                       Md(g.Dst(), tag::nhwc), g.Strides(), g.Dilates(), g.PadL(), g.PadR(), hint);
#else
    dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, Md(g.Src(), tag::nhwc), wAny, Md(g.Dst(), tag::nhwc),
                                            g.Strides(), g.Dilates(), g.PadL(), g.PadR());
    dnnl::convolution_backward_data::primitive_desc pd(d, Engine(), hint);
#endif
    e->prim = dnnl::convolution_backward_data(pd);
    e->weiPrim = pd.weights_desc();
  } else {
    auto hint = ForwardPd(g, false, 0, dnnl::prop_kind::forward_training);
    auto wAny = memory::desc(g.Wei(), dt::f32, tag::any);
#if DNNL_VERSION_MAJOR >= 3
    dnnl::convolution_backward_weights::primitive_desc pd(Engine(), dnnl::algorithm::convolution_direct, Md(g.Src(), tag::nhwc), wAny,
                                                          Md(g.Dst(), tag::nhwc), g.Strides(), g.Dilates(), g.PadL(), g.PadR(), hint);
#else
    dnnl::convolution_backward_weights::desc d(dnnl::algorithm::convolution_direct, Md(g.Src(), tag::nhwc), wAny, Md(g.Dst(), tag::nhwc),
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
  k << op << ':' << bias << ':' << act;
  const int* v = &g.n;
  for (int i = 0; i < 17; i++) k << ',' << v[i];
  return k.str();
}

// A float32 view's data pointer and length, or an error message.
bool F32(const Napi::Value& v, float** data, size_t* len) {
  if (!v.IsTypedArray()) return false;
  auto ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_float32_array) return false;
  auto f = v.As<Napi::Float32Array>();
  *data = f.Data();
  *len = f.ElementLength();
  return true;
}

Napi::Value Conv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto fail = [&](const std::string& m) {
    Napi::Error::New(env, "diffusion_native.conv: " + m).ThrowAsJavaScriptException();
    return env.Undefined();
  };
  if (info.Length() != 7) return fail("expected 7 arguments (op, a, b, bias, out, geom, activation)");
  int op = info[0].As<Napi::Number>().Int32Value();
  if (op < 0 || op > 2) return fail("op must be 0, 1 or 2");
  float *a, *b, *out, *bias = nullptr;
  size_t na, nb, nout, nbias = 0;
  if (!F32(info[1], &a, &na) || !F32(info[2], &b, &nb) || !F32(info[4], &out, &nout)) return fail("a, b and out must be Float32Arrays");
  if (!info[3].IsNull() && !info[3].IsUndefined() && !F32(info[3], &bias, &nbias)) return fail("bias must be a Float32Array or null");
  if (!info[5].IsTypedArray() || info[5].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) return fail("geom must be an Int32Array");
  auto gv = info[5].As<Napi::Int32Array>();
  if (gv.ElementLength() != 17) return fail("geom must hold 17 numbers");
  Geom g;
  std::memcpy(&g, gv.Data(), sizeof(int) * 17);
  const int* gi = &g.n;
  for (int i = 0; i < 13; i++)
    if (gi[i] < 1) return fail("geometry sizes, strides and dilations must be positive");
  int act = info[6].As<Napi::Number>().Int32Value();
  if (act < 0 || act > 1 || (act != 0 && op != kForward)) return fail("activation must be 0 (none) or 1 (relu, forward only)");
  // The typed arrays must hold what the geometry says, so the kernel never reads or writes past them.
  size_t wantA = op == kBackwardData ? g.DstSize() : g.SrcSize();
  size_t wantB = op == kBackwardFilter ? g.DstSize() : g.WeiSize();
  size_t wantOut = op == kForward ? g.DstSize() : op == kBackwardData ? g.SrcSize() : g.WeiSize();
  if (na != wantA || nb != wantB || nout != wantOut) return fail("array lengths do not match the geometry");
  if (bias && (op != kForward || nbias != size_t(g.co))) return fail("bias must have Cout elements (forward only)");

  try {
    std::string key = Key(static_cast<Op>(op), g, bias != nullptr, act);
    auto it = cache.find(key);
    if (it == cache.end()) it = cache.emplace(key, Build(static_cast<Op>(op), g, bias != nullptr, act)).first;
    Entry& e = *it->second;
    auto& s = Stream();
    auto srcMd = Md(g.Src(), tag::nhwc);
    auto dstMd = Md(g.Dst(), tag::nhwc);
    if (op == kForward) {
      memory src(srcMd, Engine(), a), dst(dstMd, Engine(), out), wUser(e.weiUser, Engine(), b);
      memory w = wUser;
      if (e.reorderWei) {
        e.weiReorder.execute(s, wUser, *e.weiScratch);
        w = *e.weiScratch;
      }
      std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dst}};
      if (bias) args.emplace(DNNL_ARG_BIAS, memory(Md({g.co}, tag::x), Engine(), bias));
      e.prim.execute(s, args);
    } else if (op == kBackwardData) {
      memory dDst(dstMd, Engine(), a), dSrc(srcMd, Engine(), out), wUser(e.weiUser, Engine(), b);
      memory w = wUser;
      if (e.reorderWei) {
        e.weiReorder.execute(s, wUser, *e.weiScratch);
        w = *e.weiScratch;
      }
      e.prim.execute(s, {{DNNL_ARG_DIFF_DST, dDst}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dSrc}});
    } else {
      memory src(srcMd, Engine(), a), dDst(dstMd, Engine(), b), dwUser(e.weiUser, Engine(), out);
      memory dw = e.reorderWei ? *e.weiScratch : dwUser;
      e.prim.execute(s, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, dDst}, {DNNL_ARG_DIFF_WEIGHTS, dw}});
      if (e.reorderWei) e.weiReorder.execute(s, *e.weiScratch, dwUser);
    }
    s.wait();
  } catch (const dnnl::error& err) {
    return fail(std::string("oneDNN: ") + err.what());
  } catch (const std::exception& err) {
    return fail(err.what());
  }
  return env.Undefined();
}

// The Float32Array arguments of a pointwise call, each checked to hold `want[i]` values.
bool Arrays(const Napi::CallbackInfo& info, const char* name, const std::vector<int>& at, const std::vector<size_t>& want,
            std::vector<float*>* out) {
  for (size_t i = 0; i < at.size(); i++) {
    float* d;
    size_t n;
    if (!F32(info[at[i]], &d, &n) || n != want[i]) {
      Napi::Error::New(info.Env(), std::string("diffusion_native.") + name + ": argument " + std::to_string(at[i]) +
                                       " must be a Float32Array of " + std::to_string(want[i]) + " values")
          .ThrowAsJavaScriptException();
      return false;
    }
    out->push_back(d);
  }
  return true;
}

size_t Length(const Napi::Value& v) { return v.IsTypedArray() ? v.As<Napi::TypedArray>().ElementLength() : 0; }

// The channel count argument, which must divide the tensor's length.
bool Channels(const Napi::CallbackInfo& info, const char* name, int at, size_t total, size_t* c) {
  double v = info[at].IsNumber() ? info[at].As<Napi::Number>().DoubleValue() : 0;
  if (!(v >= 1) || v != double(size_t(v)) || total % size_t(v) != 0) {
    Napi::Error::New(info.Env(), std::string("diffusion_native.") + name + ": C must be a positive divisor of the tensor length")
        .ThrowAsJavaScriptException();
    return false;
  }
  *c = size_t(v);
  return true;
}

Napi::Value Gelu(const Napi::CallbackInfo& info) {
  size_t n = Length(info[0]);
  std::vector<float*> a;
  if (info.Length() != 2 || !Arrays(info, "gelu", {0, 1}, {n, n}, &a)) return info.Env().Undefined();
  pointwise::Gelu(a[0], a[1], n);
  return info.Env().Undefined();
}

Napi::Value GeluGrad(const Napi::CallbackInfo& info) {
  size_t n = Length(info[0]);
  std::vector<float*> a;
  if (info.Length() != 3 || !Arrays(info, "geluGrad", {0, 1, 2}, {n, n, n}, &a)) return info.Env().Undefined();
  pointwise::GeluGrad(a[0], a[1], a[2], n);
  return info.Env().Undefined();
}

Napi::Value BnStats(const Napi::CallbackInfo& info) {
  size_t n = Length(info[0]), c;
  std::vector<float*> a;
  if (info.Length() != 4 || !Channels(info, "bnStats", 1, n, &c) || !Arrays(info, "bnStats", {0, 2, 3}, {n, c, c}, &a))
    return info.Env().Undefined();
  pointwise::BatchNormStats(a[0], n / c, c, a[1], a[2]);
  return info.Env().Undefined();
}

Napi::Value BnApply(const Napi::CallbackInfo& info) {
  size_t n = Length(info[0]), c;
  std::vector<float*> a;
  if (info.Length() != 7 || !Channels(info, "bnApply", 1, n, &c) ||
      !Arrays(info, "bnApply", {0, 2, 3, 4, 5, 6}, {n, c, c, c, c, n}, &a))
    return info.Env().Undefined();
  pointwise::BatchNormApply(a[0], n / c, c, a[1], a[2], a[3], a[4], a[5]);
  return info.Env().Undefined();
}

Napi::Value BnGrad(const Napi::CallbackInfo& info) {
  size_t n = Length(info[0]), c;
  std::vector<float*> a;
  if (info.Length() != 9 || !Channels(info, "bnGrad", 2, n, &c) ||
      !Arrays(info, "bnGrad", {0, 1, 3, 4, 5, 6, 7, 8}, {n, n, c, c, c, n, c, c}, &a))
    return info.Env().Undefined();
  pointwise::BatchNormGrad(a[0], a[1], n / c, c, a[2], a[3], a[4], a[5], a[6], a[7]);
  return info.Env().Undefined();
}

// outer copies of `chunk` floats, src[o·srcStride + srcOff …] → dst[o·dstStride + dstOff …].
Napi::Value CopyChunks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  float *src, *dst;
  size_t ns, nd;
  if (info.Length() != 8 || !F32(info[0], &src, &ns) || !F32(info[3], &dst, &nd)) {
    Napi::Error::New(env, "diffusion_native.copyChunks: expected (src, srcStride, srcOff, dst, dstStride, dstOff, chunk, outer)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int64_t v[6];
  const int at[6] = {1, 2, 4, 5, 6, 7};
  for (int i = 0; i < 6; i++) {
    v[i] = info[at[i]].IsNumber() ? info[at[i]].As<Napi::Number>().Int64Value() : -1;
    if (v[i] < 0) {
      Napi::Error::New(env, "diffusion_native.copyChunks: strides, offsets and sizes must be whole numbers ≥ 0").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  const int64_t ss = v[0], so = v[1], ds = v[2], dof = v[3], chunk = v[4], outer = v[5];
  if (outer > 0 && chunk > 0 && ((outer - 1) * ss + so + chunk > int64_t(ns) || (outer - 1) * ds + dof + chunk > int64_t(nd))) {
    Napi::Error::New(env, "diffusion_native.copyChunks: the copies would run past an array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  pointwise::CopyChunks(src, ss, so, dst, ds, dof, chunk, outer);
  return env.Undefined();
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1) {
    Napi::Error::New(info.Env(), "diffusion_native.setThreads: n must be at least 1").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  omp_set_num_threads(n);
  return info.Env().Undefined();
}

Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), omp_get_max_threads()); }

Napi::Value Version(const Napi::CallbackInfo& info) {
  const dnnl_version_t* v = dnnl_version();
  std::ostringstream s;
  s << v->major << '.' << v->minor << '.' << v->patch;
  return Napi::String::New(info.Env(), s.str());
}

Napi::Value CachedPrimitives(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(cache.size())); }

Napi::Value ClearCache(const Napi::CallbackInfo& info) {
  cache.clear();
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("conv", Napi::Function::New(env, Conv));
  exports.Set("gelu", Napi::Function::New(env, Gelu));
  exports.Set("geluGrad", Napi::Function::New(env, GeluGrad));
  exports.Set("bnStats", Napi::Function::New(env, BnStats));
  exports.Set("bnApply", Napi::Function::New(env, BnApply));
  exports.Set("bnGrad", Napi::Function::New(env, BnGrad));
  exports.Set("copyChunks", Napi::Function::New(env, CopyChunks));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("threads", Napi::Function::New(env, Threads));
  exports.Set("version", Napi::Function::New(env, Version));
  exports.Set("cachedPrimitives", Napi::Function::New(env, CachedPrimitives));
  exports.Set("clearCache", Napi::Function::New(env, ClearCache));
  return exports;
}

}  // namespace

NODE_API_MODULE(diffusion_native, Init)
