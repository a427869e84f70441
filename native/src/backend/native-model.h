// NativeModel, the JS class behind src/backend/native/native-backend.ts.
//
//   new NativeModel({ config, weights, files?, threads, kernels }): reads and checks the spec, maps the files
//     config:  the fields of model.h's ModelConfig, by name (NativeModel.configFields lists them)
//     weights: { embedding, outputNorm, classifier, ropeFactors?, layers: [{ attnNorm, ffnNorm, wq, wk, wv, wo,
//                gate, up, down, bq?, bk?, bv?, qNorm? and kNorm? (qkNorm), postAttnNorm? and postFfnNorm?
//                (postNorms) }] }, each tensor { dtype, rows, cols } plus either `data` (a Uint8Array kept
//                alive by this object) or `file` and `offset` (bytes into files[file]; each of `files`, the
//                shards of a split GGUF or one file, is memory-mapped)
//     kernels: "auto" | "avx512-bf16" | "avx512-vnni" | "avx2" | "scalar" (cpu-features.h)
//   prepare(onProgress?) → Promise<void>: lays the weights out for the kernels (model.h interleaveWeights) on a
//     worker thread, calling onProgress(doneBytes, totalBytes) on the JS thread as it goes; once, before
//     initKvCache, forward, sample and mappedWeightBytes (which throw until it has finished)
//   initKvCache(numBlocks, blockSize, dtype, groups)
//     dtype: "f32" | "f16", the element type of the cached K and V (f16: half the memory, K/V rounded)
//     groups: Int32Array[], the layers of each KV cache group (model.h Model::initKvCache)
//   forward(tokenIds, positions, slotMappings, queryStartLoc, seqLens, blockTables, logitsIndices)
//     slotMappings: one Int32Array per KV cache group; blockTables: one per group and sequence, group by group
//     → Promise<Float32Array> [logitsIndices.length, vocabSize], computed on the addon's threads
//   kernelPath, threads (getters)
//   kvCacheResident (getter): false while a thread still makes the KV cache's pages resident (zeroed-pages.h)
//   NativeModel.configFields: the config's field names
//   mappedWeightBytes (getter): bytes of the mapped files the kernels read in place (0 without files); the page cache
//                      holds them as they are used, and free-memory figures count them as free until then
#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "mapped-file.h"
#include "model.h"
#include "sampling.h"

namespace vellum::backend {

using MappedFiles = std::vector<std::unique_ptr<MappedFile>>;

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit NativeModel(const Napi::CallbackInfo& info);

 private:
  friend class ModelWorker;
  friend class ForwardWorker;
  friend class SampleWorker;
  friend class PrepareWorker;
  Napi::Value Prepare(const Napi::CallbackInfo& info);
  // Whether prepare() has finished; else throws "<what>: ..." in JS.
  bool prepared(Napi::Env env, const char* what) const;
  Napi::Value InitKvCache(const Napi::CallbackInfo& info);
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Sample(const Napi::CallbackInfo& info);
  Napi::Value KernelPath(const Napi::CallbackInfo& info);
  Napi::Value Threads(const Napi::CallbackInfo& info);
  Napi::Value MappedWeightBytes(const Napi::CallbackInfo& info);
  Napi::Value KvCacheResident(const Napi::CallbackInfo& info);
  Napi::Value LastForwardTimes(const Napi::CallbackInfo& info);

  MappedFiles files_;
  Napi::ObjectReference spec_;  // keeps the weights' JS buffers alive
  std::unique_ptr<Model> model_;
  BatchSampler sampler_;
  bool busy_ = false;  // prepare, a forward pass or a sampling call holds the pool
  bool prepared_ = false;
};

}  // namespace vellum::backend
