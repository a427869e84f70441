#include "cpu-features.h"

namespace vellum::backend {
namespace {

bool hasAvx2() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

// vpdpbusd on 256-bit registers: AVX512_VNNI with AVX512VL (Ice Lake, Sapphire Rapids, Zen 4 and later).
bool hasAvx512Vnni() {
#if defined(__x86_64__) || defined(__i386__)
  return hasAvx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

bool hasAvx512Bf16() {
#if defined(__x86_64__) || defined(__i386__)
  return hasAvx512Vnni() && __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

}  // namespace

const Kernels* selectKernels(const std::string& path) {
  if (path == "scalar") return &scalarKernels();
  if (path == "avx2") return hasAvx2() ? &avx2Kernels() : nullptr;
  if (path == "avx512-vnni") return hasAvx512Vnni() ? &avx512VnniKernels() : nullptr;
  if (path == "avx512-bf16") return hasAvx512Bf16() ? &avx512Bf16Kernels() : nullptr;
  if (path == "auto")
    return hasAvx512Bf16()   ? &avx512Bf16Kernels()
           : hasAvx512Vnni() ? &avx512VnniKernels()
           : hasAvx2()       ? &avx2Kernels()
                             : &scalarKernels();
  return nullptr;
}

}  // namespace vellum::backend
