// Helpers the x86 kernel files share (matmul-x86.h, matmul-groups-x86.h, attention-x86.h); compiled, like them,
// once per kernels-*.cc under that file's target (kernels-x86.h).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace vellum::backend {
namespace {

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

float halfToFloat(uint16_t h) { return _cvtsh_ss(h); }

// ---- for the quantized matmuls ----

inline float halfAt(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return halfToFloat(h);
}

inline __m256i load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// acc + Σ over each 4 bytes of u (unsigned) times s (signed), per 32-bit lane. maddubs saturates its int16
// pair sums where vpdpbusd does not, so callers keep each pair within int16 (|u| ≤ 128, |s| ≤ 127) and both
// give the same integers.
inline __m256i dot4Add(__m256i acc, __m256i u, __m256i s) {
#if VELLUM_VNNI
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

}  // namespace
}  // namespace vellum::backend
