// The x86 kernels (kernels-x86.h) with AVX-512 VNNI's int8 dot instruction, on 256-bit registers (AVX512VL) and
// on 512-bit ones for interleaved weights 16 rows at a time.
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
// GCC's own 512-bit intrinsics start from an undefined register, which -Wmaybe-uninitialized reports.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define VELLUM_VNNI 1
#define VELLUM_BF16 0
#include "kernels-x86.h"

namespace vellum::backend {

const Kernels& avx512VnniKernels() {
  static const Kernels k{"avx512-vnni", matmul, attention<AttentionBlocks>, storeKv, quantizeActsX86, gatedX86<false>, gatedX86<true>, interleaves, true};
  return k;
}

}  // namespace vellum::backend
