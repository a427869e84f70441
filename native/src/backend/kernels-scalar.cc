// Portable kernels: plain loops, the fallback on any CPU and the baseline the SIMD paths are tested against.
#include <cstring>

#include "attention-impl.h"
#include "kernels.h"
#include "ops.h"

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
        int32_t lo = 0, hi = 0;
        for (int j = 0; j < 16; j++) lo += chunk.q[j] * xb.q[j];
        for (int j = 16; j < kBlock; j++) hi += chunk.q[j] * xb.q[j];
        const float dot = lo * chunk.scale[0] + hi * chunk.scale[1] - chunk.min[0] * xb.halfSums[0] -
                          chunk.min[1] * xb.halfSums[1];
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

// All 65536 f16 values as f32: widening an f16 KV cache element is then one load (the 256 KiB stay in L2),
// several times faster than converting each element.
const float* const kF16ToF32 = [] {
  static float table[65536];
  for (int h = 0; h < 65536; h++) table[h] = f16ToF32(static_cast<uint16_t>(h));
  return table;
}();

// A KV cache element as f32: f32 as is, f16 bits widened.
inline float widen(float x) { return x; }
inline float widen(uint16_t h) { return kF16ToF32[h]; }

// attention-impl.h's block primitives as plain loops.
struct AttentionBlocks {
  template <class Elem>
  static void dotColumns(const float* q, int64_t qStride, int nq, const Elem* k, int blockSize, int first, int n,
                         int hd, float scale, float* s, int64_t sStride) {
    for (int g = 0; g < nq; g++) {
      float* sg = s + g * sStride;
      for (int o = 0; o < n; o++) sg[o] = 0;
      for (int i = 0; i < hd; i++) {
        const float qi = q[g * qStride + i];
        const Elem* column = k + static_cast<int64_t>(i) * blockSize + first;
        for (int o = 0; o < n; o++) sg[o] += qi * widen(column[o]);
      }
      for (int o = 0; o < n; o++) sg[o] *= scale;
    }
  }

  template <class Elem>
  static void axpyRows(float* out, int64_t outStride, int nq, const float* s, int64_t sStride, const Elem* rows,
                       int64_t stride, int n, int hd) {
    for (int g = 0; g < nq; g++)
      for (int o = 0; o < n; o++)
        for (int i = 0; i < hd; i++) out[g * outStride + i] += s[g * sStride + o] * widen(rows[o * stride + i]);
  }

  // s[0, n) ← softmax(s[0, n)), summed in double.
  static void softmax(float* s, int n) {
    float max = -INFINITY;
    for (int j = 0; j < n; j++) max = s[j] > max ? s[j] : max;
    double sum = 0;
    for (int j = 0; j < n; j++) {
      s[j] = std::exp(s[j] - max);
      sum += s[j];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int j = 0; j < n; j++) s[j] *= inv;
  }
};

void storeKv(const float* x, int n, KvDtype dtype, void* out, int stride) {
  for (int i = 0; i < n; i++) {
    if (dtype == KvDtype::F32)
      static_cast<float*>(out)[static_cast<int64_t>(i) * stride] = x[i];
    else
      static_cast<uint16_t*>(out)[static_cast<int64_t>(i) * stride] = f32ToF16(x[i]);
  }
}

bool interleaves(DType) { return false; }

}  // namespace

const Kernels& scalarKernels() {
  static const Kernels k{"scalar", matmul, attention<AttentionBlocks>, storeKv, quantizeActs, swiglu, geglu, interleaves, false};
  return k;
}

}  // namespace vellum::backend
