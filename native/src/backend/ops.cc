#include "ops.h"

#include <algorithm>
#include <cmath>

namespace vellum::backend {

void rmsNorm(const float* x, const float* weight, float* out, int n, float eps, int begin, int end) {
  for (int t = begin; t < end; t++) {
    const float* xt = x + static_cast<int64_t>(t) * n;
    float* ot = out + static_cast<int64_t>(t) * n;
    double ss = 0;
    for (int i = 0; i < n; i++) ss += static_cast<double>(xt[i]) * xt[i];
    const float scale = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) ot[i] = xt[i] * scale * weight[i];
  }
}

Rope makeRope(int dims, bool neox, double base, const float* freqFactors, const RopeScaling& s) {
  Rope r;
  r.dims = dims;
  r.neox = neox;
  for (int i = 0; i < dims / 2; i++)
    r.freqs.push_back(std::pow(base, -2.0 * i / dims) / (freqFactors ? freqFactors[i] : 1.0));
  r.freqScale = s.freqScale;
  r.extFactor = s.extFactor;
  r.mscale = s.attnFactor * (s.extFactor != 0 ? 1 + 0.1 * std::log(1 / s.freqScale) : 1);
  const auto pairAt = [&](double rotations) {
    return dims * std::log(s.originalContext / (rotations * 2 * M_PI)) / (2 * std::log(base));
  };
  r.rampLow = std::max(0.0, std::floor(pairAt(s.betaFast)));
  r.rampHigh = std::min(dims - 1.0, std::ceil(pairAt(s.betaSlow)));
  return r;
}

double ropeAngle(const Rope& r, int32_t pos, int i) {
  const double extrapolated = pos * r.freqs[i];
  const double interpolated = r.freqScale * extrapolated;
  if (r.extFactor == 0) return interpolated;
  const double y = (i - r.rampLow) / std::max(0.001, r.rampHigh - r.rampLow);
  const double ramp = (1 - std::min(1.0, std::max(0.0, y))) * r.extFactor;
  return interpolated * (1 - ramp) + extrapolated * ramp;
}

void ropeTurns(const Rope& r, const int32_t* positions, double* cosSin, int begin, int end) {
  for (int t = begin; t < end; t++)
    for (int i = 0; i < r.dims / 2; i++) {
      const double angle = ropeAngle(r, positions[t], i);
      cosSin[static_cast<int64_t>(t) * r.dims + 2 * i] = std::cos(angle) * r.mscale;
      cosSin[static_cast<int64_t>(t) * r.dims + 2 * i + 1] = std::sin(angle) * r.mscale;
    }
}

void rope(float* x, const double* cosSin, int nHeads, int headDim, const Rope& r, int begin, int end) {
  const int half = r.dims / 2;
  for (int t = begin; t < end; t++) {
    for (int k = 0; k < half; k++) {
      const double c = cosSin[static_cast<int64_t>(t) * r.dims + 2 * k];
      const double s = cosSin[static_cast<int64_t>(t) * r.dims + 2 * k + 1];
      for (int h = 0; h < nHeads; h++) {
        float* head = x + (static_cast<int64_t>(t) * nHeads + h) * headDim;
        const int i0 = r.neox ? k : 2 * k;
        const int i1 = r.neox ? k + half : 2 * k + 1;
        const double a = head[i0];
        const double b = head[i1];
        head[i0] = static_cast<float>(a * c - b * s);
        head[i1] = static_cast<float>(a * s + b * c);
      }
    }
  }
}

void swiglu(float* gate, const float* up, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; i++) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

// 0.5·(1 + tanh(z)) is 1 / (1 + e^(−2z)): the same value, without tanh's cancellation for negative g, and twice as
// fast.
void geglu(float* gate, const float* up, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; i++) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-kGeluSigmoidScale * (g + 0.044715f * g * g * g))) * up[i];
  }
}

void softcap(float* x, float c, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; i++) x[i] = c * std::tanh(x[i] / c);
}

}  // namespace vellum::backend
