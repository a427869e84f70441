#include "ops.h"

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

void rope(float* x, const int32_t* positions, int nHeads, int headDim, double theta, bool neox, int begin, int end) {
  const int half = headDim / 2;
  for (int t = begin; t < end; t++) {
    for (int k = 0; k < half; k++) {
      const double angle = positions[t] * std::pow(theta, -2.0 * k / headDim);
      const double c = std::cos(angle);
      const double s = std::sin(angle);
      for (int h = 0; h < nHeads; h++) {
        float* head = x + (static_cast<int64_t>(t) * nHeads + h) * headDim;
        const int i0 = neox ? k : 2 * k;
        const int i1 = neox ? k + half : 2 * k + 1;
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

}  // namespace vellum::backend
