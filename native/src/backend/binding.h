// Registers the native backend's exports on the addon (called from native/src/addon.cc's Init):
//   NativeModel          class: new NativeModel(spec), prepare(onProgress?) → Promise (native-model.h),
//                        initKvCache(numBlocks, blockSize, dtype, groups),
//                        forward(...) → Promise, sample(rows, raw, params) → Promise (sampling-napi.h)
//   kernelMatmul, kernelAttention, kernelStoreKv, kernelQuantizeActs, kernelRmsNorm, kernelRope, kernelSwiglu,
//   kernelDequantizeRows, kernelSample
//                        single kernels, synchronous, for the tests
//   probe(threads, bytes), bestKernelPath(), kernelPaths()
// src/backend/native/addon.ts describes each signature in TypeScript.
#pragma once

#include <napi.h>

namespace vellum::backend {

void RegisterBackend(Napi::Env env, Napi::Object exports);

}  // namespace vellum::backend
