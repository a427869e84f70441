// The small per-token operations of a decoder layer, on row-major f32 [tokens, width] arrays. Each works on a
// range of tokens (or elements) so the thread pool can split it.
#pragma once

#include <cstdint>
#include <vector>

namespace vellum::backend {

// out[t] = x[t] / sqrt(mean(x[t]²) + eps) · weight, for tokens [begin, end); out may be x.
void rmsNorm(const float* x, const float* weight, float* out, int n, float eps, int begin, int end);

// RoPE scaling as ggml_rope_ext takes it (src/model/config.ts RopeScaling); the defaults scale nothing.
struct RopeScaling {
  double freqScale = 1;
  double extFactor = 0;
  double attnFactor = 1;
  double betaFast = 32;
  double betaSlow = 1;
  int originalContext = 1;
};

// How RoPE turns one layer's heads, ready to apply: the first `dims` values of each head rotate, interleaved pairs
// (2i, 2i+1) or neox pairs (i, i + dims/2); pair i turns by pos · freqs[i], scaled and mixed as in ropeAngle.
struct Rope {
  int dims = 0;
  bool neox = false;
  std::vector<double> freqs;  // [dims / 2]: base^(−2i/dims) / freqFactor[i]
  double freqScale = 1;
  double extFactor = 0;
  double mscale = 1;  // cos and sin are multiplied by this: attnFactor, times 1 + 0.1·ln(1/freqScale) with YaRN
  double rampLow = 0;  // YaRN's correction range, in pairs (ggml_rope_yarn_corr_dims)
  double rampHigh = 0;
};

// ggml_rope_ext's parameters for a base and scaling; freqFactors ([dims / 2]) may be null (all 1).
Rope makeRope(int dims, bool neox, double base, const float* freqFactors, const RopeScaling& s);

// Pair i's angle at pos: pos · freqs[i] times freqScale, mixed back toward the unscaled angle by YaRN's ramp.
double ropeAngle(const Rope& r, int32_t pos, int i);

// RoPE's turn of every pair at each token's position: cosSin[t · dims + 2i] = mscale · cos(ropeAngle(pos_t, i)), and
// + 1 its sin, for tokens [begin, end). They depend on the position alone, so a forward pass makes them once for all
// its layers.
void ropeTurns(const Rope& r, const int32_t* positions, double* cosSin, int begin, int end);

// Rotary embedding in place on x: [T, nHeads, headDim], tokens [begin, end), by ropeTurns' cosSin.
void rope(float* x, const double* cosSin, int nHeads, int headDim, const Rope& r, int begin, int end);

// geglu's 0.5·(1 + tanh(√(2/π)·u)) is σ(kGeluSigmoidScale · u), u = g + 0.044715·g³.
constexpr float kGeluSigmoidScale = 1.595769121605731f;  // 2·√(2/π)

// gate ← silu(gate) · up on elements [begin, end).
void swiglu(float* gate, const float* up, int64_t begin, int64_t end);

// gate ← gelu(gate) · up on elements [begin, end), GELU's tanh form:
// 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³))).
void geglu(float* gate, const float* up, int64_t begin, int64_t end);

// x ← c · tanh(x / c) on elements [begin, end): soft-capping at ±c.
void softcap(float* x, float c, int64_t begin, int64_t end);

}  // namespace vellum::backend
