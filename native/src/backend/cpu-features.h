// Picks the kernel table for this CPU at load time.
#pragma once

#include <string>

#include "kernels.h"

namespace vellum::backend {

// "auto" takes the best path the CPU supports; "avx512-bf16", "avx512-vnni", "avx2" or "scalar" force one (tests
// compare them).
// Returns nullptr when the forced path is unknown or this CPU cannot run it.
const Kernels* selectKernels(const std::string& path);

}  // namespace vellum::backend
