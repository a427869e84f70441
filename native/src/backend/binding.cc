// The native backend's exports (see binding.h). The kernel entry points check every size against its array
// before touching memory, so a wrong call from JS throws instead of crashing.
#include "binding.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "cpu-features.h"
#include "napi-args.h"
#include "native-model.h"
#include "ops.h"
#include "parallel-matmul.h"
#include "probe.h"
#include "sampling-napi.h"

namespace vellum::backend {
namespace {

const Kernels* readKernels(Napi::Value v) {
  std::string path;
  if (!readString(v, "kernels", &path)) return nullptr;
  const Kernels* k = selectKernels(path);
  if (!k) throwRange(v.Env(), "kernels \"" + path + "\" is unknown or this CPU cannot run it");
  return k;
}

bool checkLength(Napi::Env env, const std::string& name, size_t have, double need) {
  if (static_cast<double>(have) < need)
    return throwRange(env, name + " holds " + std::to_string(have) + ", needs " + std::to_string(static_cast<int64_t>(need)));
  return true;
}

// kernelMatmul(kernels, dtype, w: Uint8Array, rows, cols, x: Float32Array, T, threads) → y [T, rows]
Napi::Value KernelMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Kernels* k = readKernels(info[0]);
  Weight w;
  uint8_t* data;
  size_t bytes, xLen;
  float* x;
  int T, threads;
  if (!k || !readDType(info[1], "dtype", &w.dtype) || !readBytes(info[2], "w", &data, &bytes) ||
      !readInt(info[3], "rows", 1, &w.rows) || !readInt(info[4], "cols", 1, &w.cols) || !readF32(info[5], "x", &x, &xLen) ||
      !readInt(info[6], "T", 1, &T) || !readInt(info[7], "threads", 1, &threads))
    return env.Undefined();
  if (w.cols % blockValues(w.dtype) != 0) {
    throwRange(env, "cols must be a multiple of " + std::to_string(blockValues(w.dtype)) + " for this type");
    return env.Undefined();
  }
  if (!checkLength(env, "w", bytes, static_cast<double>(rowBytes(w.dtype, w.cols)) * w.rows) ||
      !checkLength(env, "x", xLen, static_cast<double>(T) * w.cols))
    return env.Undefined();
  w.data = data;
  ThreadPool pool(threads);
  const InterleavedRows interleaved = interleaveRows(*k, &w, pool);
  auto y = Napi::Float32Array::New(env, static_cast<size_t>(T) * w.rows);
  std::vector<BlockQ8Act> acts;
  const Weight* ws[] = {&w};
  float* ys[] = {y.Data()};
  parallelMatmul(pool, *k, x, T, w.cols, ws, ys, 1, acts);
  return y;
}

// A KV cache as JS holds it: a Float32Array (f32) or a Uint16Array of f16 bits.
bool readKvCache(Napi::Value v, const std::string& name, const void** data, size_t* length, KvDtype* dtype) {
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array) {
    auto a = v.As<Napi::Uint16Array>();
    *data = a.Data();
    *length = a.ElementLength();
    *dtype = KvDtype::F16;
    return true;
  }
  float* f32;
  if (!readTyped<float, napi_float32_array>(v, name, "Float32Array or a Uint16Array of f16 bits", &f32, length))
    return false;
  *data = f32;
  *dtype = KvDtype::F32;
  return true;
}

// The slots of a K or V cache in the reference backend's layout, [numBlocks, blockSize, nKvHeads, headDim], copied
// into the native one (attention.h): K by dimension, V by row.
std::vector<uint8_t> toNativeKvLayout(const void* cache, int64_t numSlots, int nKvHeads, int blockSize, int headDim,
                                      KvDtype dtype, bool keys) {
  const size_t element = kvElementBytes(dtype);
  const int64_t slots = numSlots / blockSize * blockSize;
  std::vector<uint8_t> out(slots * nKvHeads * headDim * element);
  for (int64_t slot = 0; slot < slots; slot++)
    for (int h = 0; h < nKvHeads; h++)
      for (int i = 0; i < headDim; i++) {
        const int64_t at = keys ? keyOffset(slot, h, nKvHeads, blockSize, headDim) + static_cast<int64_t>(i) * blockSize
                                : kvRowOffset(slot, h, nKvHeads, blockSize, headDim) + i;
        std::memcpy(out.data() + at * element,
                    static_cast<const uint8_t*>(cache) + ((slot * nKvHeads + h) * headDim + i) * element, element);
      }
  return out;
}

// Optional number o.<name> into *out (left as it is when absent).
bool readOptionalDouble(Napi::Object o, const char* name, const std::string& path, double* out) {
  return !o.Has(name) || o.Get(name).IsUndefined() || readDouble(o.Get(name), path + "." + name, out);
}

// kernelAttention(kernels, q, kCache, vCache, positions, queryStartLoc, blockTables, nHeads, nKvHeads, headDim,
//                 blockSize, threads, options?: { scale?, softcap?, window? }) → out [T, nHeads · headDim]; the
// caches are both f32 or both f16 bits, in the reference backend's layout; scale defaults to 1/√headDim, softcap
// and window to 0 (none)
Napi::Value KernelAttention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Kernels* k = readKernels(info[0]);
  float* q;
  const void *kc, *vc;
  size_t qLen, kLen, vLen;
  KvDtype kDtype, vDtype;
  std::vector<int32_t> positions, qsl, tables, starts;
  int nHeads, nKvHeads, headDim, blockSize, threads;
  if (!k || !readF32(info[1], "q", &q, &qLen) || !readKvCache(info[2], "kCache", &kc, &kLen, &kDtype) ||
      !readKvCache(info[3], "vCache", &vc, &vLen, &vDtype) || !readI32(info[4], "positions", &positions) ||
      !readI32(info[5], "queryStartLoc", &qsl) || !readTables(info[6], "blockTables", &tables, &starts) ||
      !readInt(info[7], "nHeads", 1, &nHeads) || !readInt(info[8], "nKvHeads", 1, &nKvHeads) ||
      !readInt(info[9], "headDim", 1, &headDim) || !readInt(info[10], "blockSize", 1, &blockSize) ||
      !readInt(info[11], "threads", 1, &threads))
    return env.Undefined();
  double scale = 1 / std::sqrt(static_cast<double>(headDim)), softcap = 0, window = 0;
  if (info[12].IsObject()) {
    auto o = info[12].As<Napi::Object>();
    if (!readOptionalDouble(o, "scale", "options", &scale) || !readOptionalDouble(o, "softcap", "options", &softcap) ||
        !readOptionalDouble(o, "window", "options", &window))
      return env.Undefined();
  }
  if (kDtype != vDtype) {
    throwType(env, "kernelAttention: kCache and vCache must have the same element type");
    return env.Undefined();
  }
  const size_t T = positions.size();
  const size_t numSeqs = starts.size() - 1;
  const int64_t kvDim = static_cast<int64_t>(nKvHeads) * headDim;
  const int64_t numSlots = std::min(kLen, vLen) / kvDim;
  if (nHeads % nKvHeads != 0 || qsl.size() != numSeqs + 1 || qsl[0] != 0 || static_cast<size_t>(qsl[numSeqs]) != T ||
      !std::is_sorted(qsl.begin(), qsl.end()) ||
      !checkLength(env, "q", qLen, static_cast<double>(T) * nHeads * headDim)) {
    if (!env.IsExceptionPending()) throwRange(env, "kernelAttention: inconsistent sizes");
    return env.Undefined();
  }
  int maxCtx = 1;
  for (size_t s = 0; s < numSeqs; s++) {
    for (int32_t t = qsl[s]; t < qsl[s + 1]; t++) {
      const int32_t p = t >= 0 && static_cast<size_t>(t) < T ? positions[t] : -1;
      if (p < 0 || p / blockSize >= starts[s + 1] - starts[s]) {
        throwRange(env, "kernelAttention: a position lies outside its block table");
        return env.Undefined();
      }
      maxCtx = std::max(maxCtx, p + 1);
    }
  }
  for (int32_t block : tables)
    if (block < 0 || static_cast<int64_t>(block + 1) * blockSize > numSlots) {
      throwRange(env, "kernelAttention: block id " + std::to_string(block) + " is outside the cache");
      return env.Undefined();
    }
  std::vector<int32_t> tileFirst, tileSeq;
  makeQueryTiles(qsl.data(), static_cast<int>(numSeqs), &tileFirst, &tileSeq);
  auto out = Napi::Float32Array::New(env, T * nHeads * headDim);
  const std::vector<uint8_t> kNative = toNativeKvLayout(kc, numSlots, nKvHeads, blockSize, headDim, kDtype, true);
  const std::vector<uint8_t> vNative = toNativeKvLayout(vc, numSlots, nKvHeads, blockSize, headDim, kDtype, false);
  const AttentionArgs args{q,           kNative.data(),   vNative.data(),  kDtype,
                           out.Data(),  positions.data(), tables.data(),   starts.data(),
                           tileFirst.data(), tileSeq.data(), static_cast<int>(tileSeq.size()), nHeads,
                           nKvHeads,    headDim,          blockSize,       static_cast<float>(scale),
                           static_cast<float>(softcap),   static_cast<int>(window)};
  const int64_t scratch = attentionScratch(nHeads / nKvHeads, headDim, maxCtx);
  std::vector<float> scratchFloats(static_cast<size_t>(threads * scratch));
  // One run of items a thread, split by cost as the model splits them: runs start and end inside a tile's heads.
  std::vector<int64_t> ends;
  attentionChunks(args, threads, &ends);
  ThreadPool pool(threads);
  auto job = [&](int chunk, int thread) {
    k->attention(args, chunk == 0 ? 0 : ends[chunk - 1], ends[chunk],
                 scratchFloats.data() + static_cast<size_t>(thread * scratch));
  };
  pool.run(static_cast<int>(ends.size()), job);
  return out;
}

// kernelStoreKv(kernels, dtype, x: Float32Array) → x stored as one cache row: a Float32Array (f32) or a
// Uint16Array (f16 bits)
Napi::Value KernelStoreKv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Kernels* k = readKernels(info[0]);
  KvDtype dtype{};
  float* x;
  size_t n;
  if (!k || !readKvDtype(info[1], "dtype", &dtype) || !readF32(info[2], "x", &x, &n)) return env.Undefined();
  if (dtype == KvDtype::F16) {
    auto out = Napi::Uint16Array::New(env, n);
    k->storeKv(x, static_cast<int>(n), dtype, out.Data(), 1);
    return out;
  }
  auto out = Napi::Float32Array::New(env, n);
  k->storeKv(x, static_cast<int>(n), dtype, out.Data(), 1);
  return out;
}

// kernelQuantizeActs(kernels, x: Float32Array of whole 32-blocks) → { d: Float32Array, q: Int8Array }
Napi::Value KernelQuantizeActs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Kernels* k = readKernels(info[0]);
  float* x;
  size_t n;
  if (!k || !readF32(info[1], "x", &x, &n)) return env.Undefined();
  if (n % kBlock != 0) {
    throwRange(env, "x must hold whole blocks of " + std::to_string(kBlock) + " values");
    return env.Undefined();
  }
  std::vector<BlockQ8Act> blocks(n / kBlock);
  k->quantizeActs(x, static_cast<int>(n), blocks.data());
  auto d = Napi::Float32Array::New(env, blocks.size());
  auto q = Napi::Int8Array::New(env, n);
  for (size_t b = 0; b < blocks.size(); b++) {
    d[b] = blocks[b].d;
    std::memcpy(q.Data() + b * kBlock, blocks[b].q, kBlock);
  }
  auto out = Napi::Object::New(env);
  out.Set("d", d);
  out.Set("q", q);
  return out;
}

// kernelRmsNorm(x, weight, T, n, eps) → out
Napi::Value KernelRmsNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  float *x, *w;
  size_t xLen, wLen;
  int T, n;
  double eps;
  if (!readF32(info[0], "x", &x, &xLen) || !readF32(info[1], "weight", &w, &wLen) || !readInt(info[2], "T", 0, &T) ||
      !readInt(info[3], "n", 1, &n) || !readDouble(info[4], "eps", &eps) ||
      !checkLength(env, "x", xLen, static_cast<double>(T) * n) || !checkLength(env, "weight", wLen, n))
    return env.Undefined();
  auto out = Napi::Float32Array::New(env, static_cast<size_t>(T) * n);
  rmsNorm(x, w, out.Data(), n, static_cast<float>(eps), 0, T);
  return out;
}

// A RoPE description as src/backend/reference/ops.ts RopeParams gives it: { dims, style, theta, freqFactors?,
// scaling?: { freqScale, extFactor, attnFactor, betaFast, betaSlow, originalContext } }.
bool readRope(Napi::Value v, int headDim, Rope* out) {
  Napi::Env env = v.Env();
  if (!v.IsObject()) return throwType(env, "rope must be an object");
  auto o = v.As<Napi::Object>();
  int dims;
  double theta;
  std::string style;
  if (!readInt(o.Get("dims"), "rope.dims", 2, &dims) || !readDouble(o.Get("theta"), "rope.theta", &theta) ||
      !readString(o.Get("style"), "rope.style", &style))
    return false;
  if (dims % 2 != 0 || dims > headDim) return throwRange(env, "rope.dims must be even and at most headDim");
  if (style != "neox" && style != "interleaved")
    return throwRange(env, "rope.style must be \"neox\" or \"interleaved\", got \"" + style + "\"");
  float* factors = nullptr;
  size_t factorsLen = 0;
  if (o.Has("freqFactors") && !o.Get("freqFactors").IsUndefined() &&
      (!readF32(o.Get("freqFactors"), "rope.freqFactors", &factors, &factorsLen) ||
       !checkLength(env, "rope.freqFactors", factorsLen, dims / 2)))
    return false;
  RopeScaling scaling;
  if (o.Has("scaling") && !o.Get("scaling").IsUndefined()) {
    if (!o.Get("scaling").IsObject()) return throwType(env, "rope.scaling must be an object");
    auto sc = o.Get("scaling").As<Napi::Object>();
    if (!readDouble(sc.Get("freqScale"), "rope.scaling.freqScale", &scaling.freqScale) ||
        !readDouble(sc.Get("extFactor"), "rope.scaling.extFactor", &scaling.extFactor) ||
        !readDouble(sc.Get("attnFactor"), "rope.scaling.attnFactor", &scaling.attnFactor) ||
        !readDouble(sc.Get("betaFast"), "rope.scaling.betaFast", &scaling.betaFast) ||
        !readDouble(sc.Get("betaSlow"), "rope.scaling.betaSlow", &scaling.betaSlow) ||
        !readInt(sc.Get("originalContext"), "rope.scaling.originalContext", 1, &scaling.originalContext))
      return false;
  }
  *out = makeRope(dims, style == "neox", theta, factors, scaling);
  return true;
}

// kernelRope(x, positions, nHeads, headDim, rope): x rotated in place
Napi::Value KernelRope(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  float* x;
  size_t xLen;
  std::vector<int32_t> positions;
  int nHeads, headDim;
  Rope r;
  if (!readF32(info[0], "x", &x, &xLen) || !readI32(info[1], "positions", &positions) ||
      !readInt(info[2], "nHeads", 1, &nHeads) || !readInt(info[3], "headDim", 2, &headDim) ||
      !readRope(info[4], headDim, &r) ||
      !checkLength(env, "x", xLen, static_cast<double>(positions.size()) * nHeads * headDim))
    return env.Undefined();
  const int T = static_cast<int>(positions.size());
  std::vector<double> cosSin(static_cast<size_t>(T) * r.dims);
  ropeTurns(r, positions.data(), cosSin.data(), 0, T);
  rope(x, cosSin.data(), nHeads, headDim, r, 0, T);
  return env.Undefined();
}

// kernelSwiglu(path, gate, up) and kernelGeglu(path, gate, up): gate ← act(gate) · up in place, act = silu or
// gelu_tanh
template <bool Gelu>
Napi::Value KernelGated(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Kernels* k = readKernels(info[0]);
  float *gate, *up;
  size_t gLen, uLen;
  if (!k || !readF32(info[1], "gate", &gate, &gLen) || !readF32(info[2], "up", &up, &uLen) ||
      !checkLength(env, "up", uLen, static_cast<double>(gLen)))
    return env.Undefined();
  (Gelu ? k->geglu : k->swiglu)(gate, up, 0, static_cast<int64_t>(gLen));
  return env.Undefined();
}

// kernelDequantizeRows(dtype, w: Uint8Array, rows, cols, ids: Int32Array) → [ids.length, cols] (embedding lookup)
Napi::Value KernelDequantizeRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Weight w;
  uint8_t* data;
  size_t bytes;
  std::vector<int32_t> ids;
  if (!readDType(info[0], "dtype", &w.dtype) || !readBytes(info[1], "w", &data, &bytes) ||
      !readInt(info[2], "rows", 1, &w.rows) || !readInt(info[3], "cols", 1, &w.cols) || !readI32(info[4], "ids", &ids))
    return env.Undefined();
  if (w.cols % blockValues(w.dtype) != 0 ||
      !checkLength(env, "w", bytes, static_cast<double>(rowBytes(w.dtype, w.cols)) * w.rows)) {
    if (!env.IsExceptionPending()) throwRange(env, "cols must be a multiple of the type's block size");
    return env.Undefined();
  }
  w.data = data;
  auto out = Napi::Float32Array::New(env, ids.size() * w.cols);
  for (size_t i = 0; i < ids.size(); i++) {
    if (ids[i] < 0 || ids[i] >= w.rows) {
      throwRange(env, "row id " + std::to_string(ids[i]) + " is outside the tensor");
      return env.Undefined();
    }
    dequantizeRow(w, ids[i], out.Data() + i * w.cols);
  }
  return out;
}

// kernelSample(kernels, rows, raw, params, vocabSize, threads) → { tokenIds, logNormalizers, topIds }
// (sampling-napi.h), synchronous. The pool and scratch stay between calls, as a NativeModel's do, so that
// `bench sampler` times the sampling alone.
Napi::Value KernelSample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Kernels* k = readKernels(info[0]);
  int vocabSize, threads;
  SampleBatch batch;
  if (!k || !readInt(info[4], "vocabSize", 1, &vocabSize) || !readInt(info[5], "threads", 1, &threads) ||
      !readSampleBatch(info[1], info[2], info[3], vocabSize, &batch))
    return env.Undefined();
  static std::unique_ptr<ThreadPool> pool;
  static BatchSampler sampler;
  if (!pool || pool->size() != threads) pool = std::make_unique<ThreadPool>(threads);
  SampleResult result;
  sampler.run(samplingKernelsFor(*k), *pool, batch, &result);
  return sampleResultToJs(env, result);
}

// probe(threads, bufferBytes) → { readBytesPerSecond, readCurve, fmaFlopsPerSecond, int8OpsPerSecond,
// bf16FlopsPerSecond (only where the CPU has it), peaks }
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int threads;
  double bytes;
  if (!readInt(info[0], "threads", 1, &threads) || !readDouble(info[1], "bufferBytes", &bytes)) return env.Undefined();
  const ProbeResult r = probeMachine(threads, bytes);
  auto o = Napi::Object::New(env);
  o.Set("readBytesPerSecond", r.readBytesPerSecond);
  auto curve = Napi::Array::New(env);
  for (const ReadPoint& p : r.readCurve) {
    auto point = Napi::Object::New(env);
    point.Set("streams", p.streams);
    point.Set("medianBytesPerSecond", p.medianBytesPerSecond);
    point.Set("bestBytesPerSecond", p.bestBytesPerSecond);
    curve.Set(curve.Length(), point);
  }
  o.Set("readCurve", curve);
  o.Set("fmaFlopsPerSecond", r.fmaFlopsPerSecond);
  o.Set("int8OpsPerSecond", r.int8OpsPerSecond);
  if (r.bf16FlopsPerSecond > 0) o.Set("bf16FlopsPerSecond", r.bf16FlopsPerSecond);
  auto peaks = Napi::Array::New(env);
  for (const ComputePeak& p : r.peaks) {
    auto peak = Napi::Object::New(env);
    peak.Set("path", p.path);
    peak.Set("instruction", p.instruction);
    peak.Set("opsPerSecond", p.opsPerSecond);
    peaks.Set(peaks.Length(), peak);
  }
  o.Set("peaks", peaks);
  return o;
}

Napi::Value BestKernelPath(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), selectKernels("auto")->name);
}

// The paths that can be forced on this CPU, scalar first.
Napi::Value KernelPaths(const Napi::CallbackInfo& info) {
  auto out = Napi::Array::New(info.Env());
  for (const char* path : {"scalar", "avx2", "avx512-vnni", "avx512-bf16"})
    if (selectKernels(path)) out.Set(out.Length(), Napi::String::New(info.Env(), path));
  return out;
}

}  // namespace

void RegisterBackend(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeModel", NativeModel::Define(env));
  exports.Set("kernelMatmul", Napi::Function::New(env, KernelMatmul, "kernelMatmul"));
  exports.Set("kernelAttention", Napi::Function::New(env, KernelAttention, "kernelAttention"));
  exports.Set("kernelStoreKv", Napi::Function::New(env, KernelStoreKv, "kernelStoreKv"));
  exports.Set("kernelQuantizeActs", Napi::Function::New(env, KernelQuantizeActs, "kernelQuantizeActs"));
  exports.Set("kernelRmsNorm", Napi::Function::New(env, KernelRmsNorm, "kernelRmsNorm"));
  exports.Set("kernelRope", Napi::Function::New(env, KernelRope, "kernelRope"));
  exports.Set("kernelSwiglu", Napi::Function::New(env, KernelGated<false>, "kernelSwiglu"));
  exports.Set("kernelGeglu", Napi::Function::New(env, KernelGated<true>, "kernelGeglu"));
  exports.Set("kernelDequantizeRows", Napi::Function::New(env, KernelDequantizeRows, "kernelDequantizeRows"));
  exports.Set("kernelSample", Napi::Function::New(env, KernelSample, "kernelSample"));
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("bestKernelPath", Napi::Function::New(env, BestKernelPath, "bestKernelPath"));
  exports.Set("kernelPaths", Napi::Function::New(env, KernelPaths, "kernelPaths"));
}

}  // namespace vellum::backend
