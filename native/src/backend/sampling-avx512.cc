// The sampling passes (sampling-x86.h) on AVX-512 registers, with vcompressps for the filter.
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")
// GCC's own 512-bit intrinsics start from an undefined register, which -W(maybe-)uninitialized reports.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#define VELLUM_SAMPLING_512 1
#include "sampling-x86.h"

namespace vellum::backend {

const SamplingKernels& avx512Sampling() { return samplingKernelsX86(); }

}  // namespace vellum::backend
