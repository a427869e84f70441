// attention-impl.h's block primitives on x86 (AttentionBlocks), over f32 cache rows or f16 rows widened with F16C
// as they are read.
//
// One cache block of one kv head, as the loop hands it over (attention.h): n ≤ blockSize rows of headDim values,
// row o = position j0 + o, rows back to back (stride = headDim):
//
//              head dim →   0 … 7 | 8 … 15 | … | hd−8 … hd−1
//   row o      [ k or v of position j0 + o                    ]
//   row o + 1  [                                              ]
//   …
//
// dotRows takes 8 rows at a time: 8 accumulators walk the head dim in steps of 8 against one load of q, and one
// transposing sum (sum8) gives the 8 scores. axpyRows keeps 64 columns of out in 8 registers and streams the
// rows through them: out[i..i+63] += s[o] · row o, for every o.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "attention-impl.h"
#include "simd-x86.h"

namespace vellum::backend {
namespace {

inline __m256 widen8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 widen8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline float widen1(const float* p) { return *p; }
inline float widen1(const uint16_t* p) { return halfToFloat(*p); }

// Sums of 8 vectors, lane r of the result = Σ lanes of v[r] (hadd pairs them up within 128-bit halves).
inline __m256 sum8(const __m256 v[8]) {
  const __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

template <class Elem>
float dot(const float* a, const Elem* b, int n) {
  __m256 acc = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), widen8(b + i), acc);
  float sum = hsum(acc);
  for (; i < n; i++) sum += a[i] * widen1(b + i);
  return sum;
}

// out[0, 8W) += Σ_o s[o] · rows[o][0, 8W), out held in W registers across the rows.
template <int W, class Elem>
void axpyChunk(float* out, const float* s, const Elem* rows, int64_t stride, int n) {
  __m256 acc[W];
  for (int v = 0; v < W; v++) acc[v] = _mm256_loadu_ps(out + 8 * v);
  for (int o = 0; o < n; o++) {
    const __m256 so = _mm256_broadcast_ss(s + o);
    for (int v = 0; v < W; v++) acc[v] = _mm256_fmadd_ps(so, widen8(rows + o * stride + 8 * v), acc[v]);
  }
  for (int v = 0; v < W; v++) _mm256_storeu_ps(out + 8 * v, acc[v]);
}

// e^x for x ≤ 0 (softmax after the max is subtracted), 8 lanes: e^x = 2^k · e^r with k = round(x·log2 e) and
// |r| ≤ ln2/2, e^r by Cephes' degree-5 polynomial (relative error ~2e-7). Below −87 it returns e^−87 ≈ 1.6e-38,
// where exact softmax weights are below f32's normal range anyway.
inline __m256 expNonPositive(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i pow2k = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(pow2k));
}

struct AttentionBlocks {
  // s[o] = scale · q·rows[o]: eight rows at a time share each load of q, and one transposing sum (sum8)
  // replaces eight horizontal ones.
  template <class Elem>
  static void dotRows(const float* q, const Elem* rows, int64_t stride, int n, int hd, float scale, float* s) {
    int o = 0;
    if (hd % 8 == 0)
      for (; o + 8 <= n; o += 8) {
        __m256 acc[8];
        for (int r = 0; r < 8; r++) acc[r] = _mm256_setzero_ps();
        for (int i = 0; i < hd; i += 8) {
          const __m256 qv = _mm256_loadu_ps(q + i);
          for (int r = 0; r < 8; r++) acc[r] = _mm256_fmadd_ps(qv, widen8(rows + (o + r) * stride + i), acc[r]);
        }
        _mm256_storeu_ps(s + o, _mm256_mul_ps(sum8(acc), _mm256_set1_ps(scale)));
      }
    for (; o < n; o++) s[o] = dot(q, rows + o * stride, hd) * scale;
  }

  // out += Σ_o s[o] · rows[o], 64 columns at a time (8 registers), the tail of hd mod 8 one value at a time.
  template <class Elem>
  static void axpyRows(float* out, const float* s, const Elem* rows, int64_t stride, int n, int hd) {
    int i = 0;
    for (; i + 64 <= hd; i += 64) axpyChunk<8>(out + i, s, rows + i, stride, n);
    switch ((hd - i) / 8) {
      case 7: axpyChunk<7>(out + i, s, rows + i, stride, n); break;
      case 6: axpyChunk<6>(out + i, s, rows + i, stride, n); break;
      case 5: axpyChunk<5>(out + i, s, rows + i, stride, n); break;
      case 4: axpyChunk<4>(out + i, s, rows + i, stride, n); break;
      case 3: axpyChunk<3>(out + i, s, rows + i, stride, n); break;
      case 2: axpyChunk<2>(out + i, s, rows + i, stride, n); break;
      case 1: axpyChunk<1>(out + i, s, rows + i, stride, n); break;
      default: break;
    }
    for (i += (hd - i) / 8 * 8; i < hd; i++)
      for (int o = 0; o < n; o++) out[i] += s[o] * widen1(rows + o * stride + i);
  }

  // s[0, n) ← softmax(s[0, n)).
  static void softmax(float* s, int n) {
    __m256 maxv = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) maxv = _mm256_max_ps(maxv, _mm256_loadu_ps(s + i));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(maxv), _mm256_extractf128_ps(maxv, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    float max = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
    for (; i < n; i++) max = s[i] > max ? s[i] : max;
    const __m256 maxb = _mm256_set1_ps(max);
    __m256 sumv = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
      const __m256 e = expNonPositive(_mm256_sub_ps(_mm256_loadu_ps(s + i), maxb));
      _mm256_storeu_ps(s + i, e);
      sumv = _mm256_add_ps(sumv, e);
    }
    float sum = hsum(sumv);
    for (; i < n; i++) {
      s[i] = std::exp(s[i] - max);
      sum += s[i];
    }
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(s + i, _mm256_mul_ps(_mm256_loadu_ps(s + i), inv));
    for (; i < n; i++) s[i] *= 1.0f / sum;
  }
};

}  // namespace
}  // namespace vellum::backend
