// The x86 kernels (kernels-x86.h) for AVX2 + FMA + F16C.
#pragma GCC target("avx2,fma,f16c")
#define VELLUM_VNNI 0
#define VELLUM_BF16 0
#include "kernels-x86.h"

namespace vellum::backend {

const Kernels& avx2Kernels() {
  static const Kernels k{"avx2+fma", matmul, attention<AttentionBlocks>, storeKv, quantizeActsX86, gatedX86<false>, gatedX86<true>, interleaves, false};
  return k;
}

}  // namespace vellum::backend
