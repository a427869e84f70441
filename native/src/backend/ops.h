// The small per-token operations of a Llama layer, on row-major f32 [tokens, width] arrays. Each works on a
// range of tokens so the thread pool can split it.
#pragma once

#include <cstdint>

namespace vellum::backend {

// out[t] = x[t] / sqrt(mean(x[t]²) + eps) · weight, for tokens [begin, end).
void rmsNorm(const float* x, const float* weight, float* out, int n, float eps, int begin, int end);

// Rotary embedding in place on x: [T, nHeads, headDim], tokens [begin, end). Pair k turns by
// pos · theta^(−2k/headDim); interleaved pairs are (2k, 2k+1), neox pairs (k, k + headDim/2).
void rope(float* x, const int32_t* positions, int nHeads, int headDim, double theta, bool neox, int begin, int end);

// gate ← silu(gate) · up on elements [begin, end).
void swiglu(float* gate, const float* up, int64_t begin, int64_t end);

}  // namespace vellum::backend
