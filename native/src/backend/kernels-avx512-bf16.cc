// The x86 kernels (kernels-x86.h) with AVX-512 VNNI (as kernels-avx512-vnni.cc) and AVX512_BF16 for bf16 weights.
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16")
// GCC's own 512-bit intrinsics start from an undefined register, which -W(maybe-)uninitialized reports.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#define VELLUM_VNNI 1
#define VELLUM_BF16 1
#include "kernels-x86.h"

namespace vellum::backend {

const Kernels& avx512Bf16Kernels() {
  static const Kernels k{"avx512-vnni+bf16", matmul,          attention<AttentionBlocks>,
                         storeKv,            quantizeActsX86, gatedX86<false>,
                         gatedX86<true>,     interleaves,     true};
  return k;
}

}  // namespace vellum::backend
