// Matmuls split over the thread pool: each thread takes a band of output rows (whole 8-row tiles) of every
// weight, and the batch goes through in token chunks so a chunk's activations stay in L2.
#pragma once

#include <vector>

#include "kernels.h"
#include "thread-pool.h"

namespace vellum::backend {

// ys[i] = x · ws[i]ᵀ, [T, ws[i]->rows], for `count` weights sharing the input x: [T, n].
// acts is scratch for the quantized activations (grown when too small: only while warming up).
void parallelMatmul(ThreadPool& pool, const Kernels& k, const float* x, int T, int n, const Weight* const* ws,
                    float* const* ys, int count, std::vector<BlockQ8Act>& acts);

}  // namespace vellum::backend
