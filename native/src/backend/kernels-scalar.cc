// Portable kernels: plain loops, the fallback on any CPU and the baseline the SIMD paths are tested against.
#include <cstring>

#include "attention-impl.h"
#include "kernels.h"

namespace vellum::backend {
namespace {

void matmulQuantized(const Weight& w, const MatmulInput& x, float* y, int ldy, int rowBegin, int rowEnd) {
  const int nb = w.cols / kBlock;
  const size_t stride = rowBytes(w.dtype, w.cols);
  Chunk chunk;
  for (int o = rowBegin; o < rowEnd; o++) {
    const uint8_t* row = w.data + stride * o;
    for (int t = 0; t < x.T; t++) y[static_cast<size_t>(t) * ldy + o] = 0;
    for (int b = 0; b < nb; b++) {
      decodeChunk(w.dtype, row, b, &chunk);
      for (int t = 0; t < x.T; t++) {
        const BlockQ8Act& xb = x.q8[static_cast<size_t>(t) * nb + b];
        int32_t lo = 0, hi = 0, xsum = 0;
        for (int j = 0; j < 16; j++) lo += chunk.q[j] * xb.q[j];
        for (int j = 16; j < kBlock; j++) hi += chunk.q[j] * xb.q[j];
        for (int j = 0; j < kBlock; j++) xsum += xb.q[j];
        const float dot = lo * chunk.scale[0] + hi * chunk.scale[1] - chunk.min * xsum;
        y[static_cast<size_t>(t) * ldy + o] += dot * xb.d;
      }
    }
  }
}

void matmulFloat(const Weight& w, const MatmulInput& x, float* y, int ldy, int rowBegin, int rowEnd) {
  const int n = w.cols;
  float row[4096];
  for (int o = rowBegin; o < rowEnd; o++) {
    for (int t = 0; t < x.T; t++) y[static_cast<size_t>(t) * ldy + o] = 0;
    // Rows are converted in chunks that stay in L1 while every token uses them.
    for (int i0 = 0; i0 < n; i0 += 4096) {
      const int len = n - i0 < 4096 ? n - i0 : 4096;
      float* dst = row;
      if (w.dtype == DType::F32) {
        std::memcpy(dst, w.data + (static_cast<size_t>(o) * n + i0) * 4, len * 4);
      } else {
        for (int i = 0; i < len; i++) {
          uint16_t h;
          std::memcpy(&h, w.data + (static_cast<size_t>(o) * n + i0 + i) * 2, 2);
          if (w.dtype == DType::F16) {
            dst[i] = f16ToF32(h);
          } else {
            const uint32_t bits = static_cast<uint32_t>(h) << 16;
            std::memcpy(dst + i, &bits, 4);
          }
        }
      }
      for (int t = 0; t < x.T; t++) {
        const float* xt = x.f32 + static_cast<size_t>(t) * n + i0;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int i = 0;
        for (; i + 8 <= len; i += 8)
          for (int l = 0; l < 8; l++) acc[l] += dst[i + l] * xt[i + l];
        float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; i < len; i++) sum += dst[i] * xt[i];
        y[static_cast<size_t>(t) * ldy + o] += sum;
      }
    }
  }
}

void matmul(const Weight& w, const MatmulInput& x, float* y, int ldy, int rowBegin, int rowEnd) {
  if (isQuantized(w.dtype))
    matmulQuantized(w, x, y, ldy, rowBegin, rowEnd);
  else
    matmulFloat(w, x, y, ldy, rowBegin, rowEnd);
}

float dot(const float* a, const float* b, int n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
  float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; i++) sum += a[i] * b[i];
  return sum;
}

void axpy(float* y, float a, const float* x, int n) {
  for (int i = 0; i < n; i++) y[i] += a * x[i];
}

}  // namespace

const Kernels& scalarKernels() {
  static const Kernels k{"scalar", matmul, attentionLoop<dot, axpy>};
  return k;
}

}  // namespace vellum::backend
