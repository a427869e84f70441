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

}  // namespace

const Kernels* selectKernels(const std::string& path) {
  if (path == "scalar") return &scalarKernels();
  if (path == "avx2") return hasAvx2() ? &avx2Kernels() : nullptr;
  if (path == "auto") return hasAvx2() ? &avx2Kernels() : &scalarKernels();
  return nullptr;
}

}  // namespace vellum::backend
