// The sampling passes (sampling-x86.h) on AVX2 + FMA registers.
#pragma GCC target("avx2,fma,f16c")
#define VELLUM_SAMPLING_512 0
#include "sampling-x86.h"

namespace vellum::backend {

const SamplingKernels& avx2Sampling() { return samplingKernelsX86(); }

}  // namespace vellum::backend
