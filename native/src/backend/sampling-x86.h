// The dense passes of sampling.h on x86, written once for two widths: sampling-avx512.cc (VELLUM_SAMPLING_512 1:
// 16 floats, 8 doubles a step, compress for the filter) and sampling-avx2.cc (8 floats, 4 doubles). Each .cc sets
// its target with a pragma before including this file; everything here has internal linkage.
//
// exp is evaluated in f64 (2^n · Taylor polynomial of degree 12 on |r| ≤ ln2/2, about 1 ulp of f64) and rounded to
// f32, as the reference's Math.exp rounded into a Float32Array: the weights are the reference's bit for bit except
// where an f64 result lies within an ulp of an f32 rounding midpoint.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "sampling.h"

namespace vellum::backend {
namespace {

constexpr float kNegInfX86 = -std::numeric_limits<float>::infinity();
// Below this exp(x) < 2^-158: nothing in f32 (whose least subnormal is 2^-149), and nothing next to a sum ≥ 1.
constexpr double kExpFloor = -110;
constexpr double kLog2e = 1.4426950408889634;
constexpr double kLn2Hi = 6.93147180369123816490e-01;  // ln 2's high bits (fdlibm): n · kLn2Hi is exact
constexpr double kLn2Lo = 1.90821492927058770002e-10;
constexpr double kRoundMagic = 6755399441055744.0;  // 1.5 · 2^52: adding it rounds to an integer in the low bits
// 1/k! for k = 12 down to 0.
constexpr double kExpTaylor[] = {1.0 / 479001600, 1.0 / 39916800, 1.0 / 3628800, 1.0 / 362880, 1.0 / 40320,
                                 1.0 / 5040,      1.0 / 720,      1.0 / 120,     1.0 / 24,     1.0 / 6,
                                 0.5,             1.0,            1.0};

#if VELLUM_SAMPLING_512
constexpr int kF64Lanes = 8;
using VecD = __m512d;
inline VecD setD(double x) { return _mm512_set1_pd(x); }
inline VecD fmaD(VecD a, VecD b, VecD c) { return _mm512_fmadd_pd(a, b, c); }
inline VecD fnmaD(VecD a, VecD b, VecD c) { return _mm512_fnmadd_pd(a, b, c); }
inline VecD loadF32AsD(const float* p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
inline void storeDAsF32(float* p, VecD v) { _mm256_storeu_ps(p, _mm512_cvtpd_ps(v)); }
inline double sumD(VecD v) { return _mm512_reduce_add_pd(v); }
// 2^n from t = n + kRoundMagic: n's low 12 bits + the bias, moved into the exponent field.
inline VecD pow2D(VecD t) {
  return _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(_mm512_castpd_si512(t), _mm512_set1_epi64(1023)), 52));
}
inline VecD zeroBelowD(VecD x, VecD value, double floor) {
  return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(x, setD(floor), _CMP_GE_OQ), value);
}
#else
constexpr int kF64Lanes = 4;
using VecD = __m256d;
inline VecD setD(double x) { return _mm256_set1_pd(x); }
inline VecD fmaD(VecD a, VecD b, VecD c) { return _mm256_fmadd_pd(a, b, c); }
inline VecD fnmaD(VecD a, VecD b, VecD c) { return _mm256_fnmadd_pd(a, b, c); }
inline VecD loadF32AsD(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
inline void storeDAsF32(float* p, VecD v) { _mm_storeu_ps(p, _mm256_cvtpd_ps(v)); }
inline double sumD(VecD v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
inline VecD pow2D(VecD t) {
  return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_castpd_si256(t), _mm256_set1_epi64x(1023)), 52));
}
inline VecD zeroBelowD(VecD x, VecD value, double floor) {
  return _mm256_and_pd(_mm256_cmp_pd(x, setD(floor), _CMP_GE_OQ), value);
}
#endif

// exp(x) for x ≤ 1, lanes below kExpFloor (−inf and NaN included) giving 0.
inline VecD expD(VecD x) {
  const VecD t = fmaD(x, setD(kLog2e), setD(kRoundMagic));
  const VecD n = t - setD(kRoundMagic);
  const VecD r = fnmaD(n, setD(kLn2Lo), fnmaD(n, setD(kLn2Hi), x));
  VecD p = setD(kExpTaylor[0]);
  for (int i = 1; i < 13; i++) p = fmaD(p, r, setD(kExpTaylor[i]));
  return zeroBelowD(x, p * pow2D(t), kExpFloor);
}

// Applies f(offset, lanes) to whole vectors of x[0..n), then to a last partial vector copied into a buffer padded
// with −inf (whose exp is 0).
template <class F>
void forF64Vectors(const float* x, int n, F&& f) {
  int j = 0;
  for (; j + kF64Lanes <= n; j += kF64Lanes) f(j, loadF32AsD(x + j), kF64Lanes);
  if (j == n) return;
  float tail[kF64Lanes];
  for (int i = 0; i < kF64Lanes; i++) tail[i] = j + i < n ? x[j + i] : kNegInfX86;
  f(j, loadF32AsD(tail), n - j);
}

float scaleMaxX86(const float* x, int n, double temperature, float* out) {
  const VecD t = setD(temperature);
  float max = kNegInfX86;
  int i = 0;
#if VELLUM_SAMPLING_512
  __m512 vmax = _mm512_set1_ps(kNegInfX86);
  for (; i + 16 <= n; i += 16) {
    const __m256 lo = _mm512_cvtpd_ps(loadF32AsD(x + i) / t);
    const __m256 hi = _mm512_cvtpd_ps(loadF32AsD(x + i + 8) / t);
    _mm256_storeu_ps(out + i, lo);
    _mm256_storeu_ps(out + i + 8, hi);
    vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(out + i));
  }
  max = _mm512_reduce_max_ps(vmax);
#else
  __m256 vmax = _mm256_set1_ps(kNegInfX86);
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_set_m128(_mm256_cvtpd_ps(loadF32AsD(x + i + 4) / t), _mm256_cvtpd_ps(loadF32AsD(x + i) / t));
    _mm256_storeu_ps(out + i, v);
    vmax = _mm256_max_ps(vmax, v);
  }
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  max = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
#endif
  for (; i < n; i++) {
    out[i] = static_cast<float>(static_cast<double>(x[i]) / temperature);
    if (out[i] > max) max = out[i];
  }
  return max;
}

int compactX86(const float* x, int n, float floor, int32_t* ids, float* vals) {
  int m = 0, i = 0;
#if VELLUM_SAMPLING_512
  const __m512 lowest = _mm512_set1_ps(floor), negInf = _mm512_set1_ps(kNegInfX86);
  __m512i index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __mmask16 keep = _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(v, lowest, _CMP_GE_OQ), v, negInf, _CMP_GT_OQ);
    // Compressed into a register and stored whole (the arrays have 16 entries of slack): a compressing store to
    // memory is slow on AMD's cores.
    _mm512_storeu_ps(vals + m, _mm512_maskz_compress_ps(keep, v));
    _mm512_storeu_si512(ids + m, _mm512_maskz_compress_epi32(keep, index));
    m += __builtin_popcount(keep);
    index = _mm512_add_epi32(index, _mm512_set1_epi32(16));
  }
#endif
  for (; i < n; i++) {
    ids[m] = i;
    vals[m] = x[i];
    m += x[i] >= floor && x[i] > kNegInfX86;
  }
  return m;
}

float maxOfX86(const float* x, int n) {
  int i = 0;
#if VELLUM_SAMPLING_512
  __m512 vmax = _mm512_set1_ps(kNegInfX86);
  for (; i + 16 <= n; i += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(x + i));
  float max = _mm512_reduce_max_ps(vmax);
#else
  __m256 vmax = _mm256_set1_ps(kNegInfX86);
  for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  float max = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
#endif
  for (; i < n; i++)
    if (x[i] > max) max = x[i];
  return max;
}

int firstAboveX86(const float* x, int from, int n, float threshold) {
  int i = from;
#if VELLUM_SAMPLING_512
  const __m512 t = _mm512_set1_ps(threshold);
  for (; i + 16 <= n; i += 16) {
    const __mmask16 above = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), t, _CMP_GT_OQ);
    if (above) return i + __builtin_ctz(above);
  }
#else
  const __m256 t = _mm256_set1_ps(threshold);
  for (; i + 8 <= n; i += 8) {
    const int above = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), t, _CMP_GT_OQ));
    if (above) return i + __builtin_ctz(above);
  }
#endif
  for (; i < n; i++)
    if (x[i] > threshold) return i;
  return n;
}

double weightsX86(const float* vals, int n, float max, float* w) {
  const VecD shift = setD(max);
  VecD total = setD(0);
  forF64Vectors(vals, n, [&](int j, VecD x, int lanes) {
    if (lanes == kF64Lanes) {
      storeDAsF32(w + j, expD(x - shift));
      total = total + loadF32AsD(w + j);
      return;
    }
    float rounded[kF64Lanes];
    storeDAsF32(rounded, expD(x - shift));
    for (int i = 0; i < lanes; i++) w[j + i] = rounded[i];
    total = total + loadF32AsD(rounded);
  });
  return sumD(total);
}

double sumExpX86(const float* x, int n, float max) {
  const VecD shift = setD(max);
  VecD sum = setD(0);
  forF64Vectors(x, n, [&](int, VecD v, int) { sum = sum + expD(v - shift); });
  return sumD(sum);
}

// A whole vector's weight at a time until the one whose sum passes point, then entry by entry inside it (the sums
// round differently from one by one: a point within ~1e-16 of a boundary may fall on its other side).
int drawIndexX86(const float* w, int n, double point) {
  double cumulative = 0;
  int j = 0, chosen = 0;
  for (; j + kF64Lanes <= n; j += kF64Lanes) {
    const double block = sumD(loadF32AsD(w + j));
    if (block == 0) continue;
    if (point < cumulative + block) break;
    cumulative += block;
    for (int i = kF64Lanes - 1; i >= 0; i--)
      if (w[j + i] != 0) {
        chosen = j + i;
        break;
      }
  }
  for (; j < n; j++) {
    if (w[j] == 0) continue;
    cumulative += w[j];
    chosen = j;
    if (point < cumulative) break;
  }
  return chosen;
}

const SamplingKernels& samplingKernelsX86() {
  static const SamplingKernels k{scaleMaxX86, compactX86, maxOfX86,    firstAboveX86,
                                 weightsX86,  sumExpX86,  drawIndexX86};
  return k;
}

}  // namespace
}  // namespace vellum::backend
