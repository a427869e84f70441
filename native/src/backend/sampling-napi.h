// A sampling batch from JS and its result back to JS, for NativeModel.sample and kernelSample (binding.h):
//   rows, raw: arrays of Float32Arrays of at least vocabSize values (raw: what log-probabilities read)
//   params: Float64Array, 6 per row: temperature, topK, topP, minP, u, logprobs
//   result: { tokenIds: Int32Array, logNormalizers: Float64Array, topIds: Int32Array (min(logprobs, vocabSize) per
//             row, rows back to back) }
#pragma once

#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "napi-args.h"
#include "sampling.h"

namespace vellum::backend {

constexpr int kSampleParamsPerRow = 6;

inline bool readRows(Napi::Value v, const std::string& name, int vocabSize, std::vector<const float*>* out) {
  if (!v.IsArray()) return throwType(v.Env(), name + " must be an array of Float32Arrays");
  auto arr = v.As<Napi::Array>();
  out->clear();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    float* data;
    size_t length;
    const std::string item = name + "[" + std::to_string(i) + "]";
    if (!readF32(arr.Get(i), item, &data, &length)) return false;
    if (length < static_cast<size_t>(vocabSize))
      return throwRange(v.Env(), item + " holds " + std::to_string(length) + " values, needs " +
                                     std::to_string(vocabSize));
    out->push_back(data);
  }
  return true;
}

inline bool readSampleBatch(Napi::Value rows, Napi::Value raw, Napi::Value params, int vocabSize, SampleBatch* b) {
  Napi::Env env = rows.Env();
  b->vocabSize = vocabSize;
  double* p;
  size_t length;
  if (!readRows(rows, "rows", vocabSize, &b->rows) || !readRows(raw, "raw", vocabSize, &b->raw) ||
      !readTyped<double, napi_float64_array>(params, "params", "Float64Array", &p, &length))
    return false;
  const size_t n = b->rows.size();
  if (b->raw.size() != n || length != n * kSampleParamsPerRow)
    return throwRange(env, "sample: rows, raw and params (" + std::to_string(kSampleParamsPerRow) +
                               " per row) must describe the same rows");
  b->params.resize(n);
  for (size_t r = 0; r < n; r++) {
    const double* q = p + r * kSampleParamsPerRow;
    auto isInt = [](double x) { return x >= INT32_MIN && x <= INT32_MAX && x == std::floor(x); };
    const bool integers = isInt(q[1]) && isInt(q[5]);
    SampleParams& s = b->params[r];
    s = {q[0], static_cast<int>(q[1]), q[2], q[3], q[4], static_cast<int>(q[5])};
    std::string problem = integers ? validateSampleParams(s) : "topK and logprobs must be integers";
    if (!problem.empty()) return throwRange(env, "sample: row " + std::to_string(r) + ": " + problem);
  }
  return true;
}

inline Napi::Object sampleResultToJs(Napi::Env env, const SampleResult& r) {
  auto tokenIds = Napi::Int32Array::New(env, r.tokenIds.size());
  std::copy(r.tokenIds.begin(), r.tokenIds.end(), tokenIds.Data());
  auto logNormalizers = Napi::Float64Array::New(env, r.logNormalizers.size());
  std::copy(r.logNormalizers.begin(), r.logNormalizers.end(), logNormalizers.Data());
  auto topIds = Napi::Int32Array::New(env, r.topIds.size());
  std::copy(r.topIds.begin(), r.topIds.end(), topIds.Data());
  auto out = Napi::Object::New(env);
  out.Set("tokenIds", tokenIds);
  out.Set("logNormalizers", logNormalizers);
  out.Set("topIds", topIds);
  return out;
}

}  // namespace vellum::backend
