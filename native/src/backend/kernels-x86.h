// The x86 SIMD kernel path, written once and compiled three times, each .cc setting its target with a pragma and
// two macros before including this file:
//   kernels-avx2.cc          VELLUM_VNNI 0: AVX2 + FMA + F16C on 256-bit registers; int8 dots as maddubs (u8·s8
//                            pairs to int16) + madd (to int32)
//   kernels-avx512-vnni.cc   VELLUM_VNNI 1: the same loops with AVX-512 VNNI's vpdpbusd (u8·s8 quads to int32,
//                            accumulated) on 256-bit registers (AVX512VL), and interleaved int8 weights 16 rows at
//                            a time on 512-bit registers (tile16)
//   kernels-avx512-bf16.cc   VELLUM_VNNI 1 and VELLUM_BF16 1: also bf16 weights through vdpbf16ps (tileBf16)
// Its code only runs when cpu-features.cc found those instructions at load. Everything here has internal
// linkage, once per including file.
//
//   matmul-x86.h         matmul tiles on GGUF rows, and the matmul entry point
//   matmul-groups-x86.h  matmul tiles on rows interleaved in 8-row groups
//   attention-x86.h      attention's block primitives over the paged KV cache
//   simd-x86.h           helpers they share
// and below, the KV store, the activation quantizer and the gated activations.
#pragma once

#include <immintrin.h>

#include <cstring>

#include "attention-x86.h"
#include "kernels.h"
#include "matmul-x86.h"
#include "ops.h"
#include "simd-x86.h"

namespace vellum::backend {
namespace {

void storeKv(const float* x, int n, KvDtype dtype, void* out, int stride) {
  if (dtype == KvDtype::F32) {
    float* f = static_cast<float*>(out);
    for (int i = 0; i < n; i++) f[static_cast<int64_t>(i) * stride] = x[i];
    return;
  }
  uint16_t* h = static_cast<uint16_t*>(out);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i rounded = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    if (stride == 1) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(h + i), rounded);
    } else {
      uint16_t lanes[8];
      _mm_storeu_si128(reinterpret_cast<__m128i*>(lanes), rounded);
      for (int l = 0; l < 8; l++) h[static_cast<int64_t>(i + l) * stride] = lanes[l];
    }
  }
  for (; i < n; i++) h[static_cast<int64_t>(i) * stride] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

// quantizeActs (kernels-common.cc) eight lanes at a time, with the same f32 operations in the same order:
// max |x|, d = max / 127, q = round-to-nearest-even(x · (1 / d)) (cvtps uses the default rounding, as lrintf).
void quantizeActsX86(const float* x, int n, BlockQ8Act* out) {
  const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int b = 0; b < n / kBlock; b++) {
    const float* xb = x + b * kBlock;
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
      v[i] = _mm256_loadu_ps(xb + 8 * i);
      amax = _mm256_max_ps(amax, _mm256_and_ps(v[i], absMask));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float d = _mm_cvtss_f32(m) / 127.0f;
    const __m256 id = _mm256_set1_ps(d != 0 ? 1.0f / d : 0.0f);
    out[b].d = d;
    __m256i q[4];
    for (int i = 0; i < 4; i++) q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], id));
    // packs interleave 128-bit lanes; the permute puts the 32 bytes back in order.
    const __m256i q16 = _mm256_packs_epi32(q[0], q[1]);
    const __m256i q16b = _mm256_packs_epi32(q[2], q[3]);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16, q16b), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].q), q8);
    // Lanes 0–3 of these sums hold values 0..15, lanes 4–7 values 16..31.
    const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q8), _mm256_set1_epi16(1));
    for (int half = 0; half < 2; half++) {
      __m128i s4 = half ? _mm256_extracti128_si256(sums, 1) : _mm256_castsi256_si128(sums);
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
      out[b].halfSums[half] = static_cast<int16_t>(_mm_cvtsi128_si32(s4));
    }
  }
}

// gate ← g · σ(z) · up, z = g (SiLU) or gelu's tanh argument, 8 lanes at a time: σ(z) from one e^−|z|
// (expNonPositive, relative error ~2e-7), 1 / (1 + e) for z ≥ 0 and e / (1 + e) below, so nothing overflows. The
// scalar libm expf they replace was 10% of small-160m's 512-token prefill on Zen 5. The tail goes as ops.cc's.
template <bool Gelu>
void gatedX86(float* gate, const float* up, int64_t begin, int64_t end) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    __m256 z = g;
    if constexpr (Gelu) {
      const __m256 g3 = _mm256_mul_ps(_mm256_mul_ps(g, g), g);
      z = _mm256_mul_ps(_mm256_set1_ps(kGeluSigmoidScale), _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), g3, g));
    }
    const __m256 e = expNonPositive(_mm256_or_ps(z, _mm256_set1_ps(-0.0f)));  // e^−|z|
    const __m256 positive = _mm256_div_ps(one, _mm256_add_ps(one, e));
    const __m256 sigma = _mm256_blendv_ps(positive, _mm256_mul_ps(e, positive), z);  // z's sign picks
    _mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_mul_ps(g, sigma), _mm256_loadu_ps(up + i)));
  }
  if (i < end) (Gelu ? geglu : swiglu)(gate, up, i, end);
}

bool interleaves(DType t) { return readsGroups(t); }

}  // namespace
}  // namespace vellum::backend
