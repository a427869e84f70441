// attention-impl.h's block primitives on x86 (AttentionBlocks), over f32 cache elements or f16 ones widened with
// F16C as they are read. Both keep a vector's lanes on one axis of the block and need no sum across lanes:
//
// dotColumns reads one block's K of one kv head by dimension (attention.h), lanes = slots: B = blockSize slots a
// dimension, the columns [first, first + n) being the slots the token sees.
//
//              slot →   0 1 … B−1
//   dim 0      [ k0 of each slot ]        s[o] = scale · Σ_i q[i] · dim i[first + o]
//   dim 1      [ k1 of each slot ]
//   …
//
// axpyRows reads the block's V by row, lanes = a row's values: out += s[o] · row o, for every o.
//
//   row o      [ v of slot o: headDim values ]   → out[c, c + lanes) += s[o] · row o[c, c + lanes)
//
// Each loads a lane's width of K or V once for all the group's query heads (up to 8 at a time), each head's FMA
// chain with its own accumulator; with fewer heads each takes several accumulators over alternate dimensions or
// rows, so that 8 chains in all hide the FMA's latency.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "attention-impl.h"
#include "simd-x86.h"

namespace vellum::backend {
namespace {

inline float widen1(const float* p) { return *p; }
inline float widen1(const uint16_t* p) { return halfToFloat(*p); }

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

// The registers the primitives use: 16 lanes with AVX-512, whose masked loads and stores touch only the `count`
// lanes asked for; 8 lanes with AVX2, which loads all 8 (its callers keep them inside the block, or take what is
// left one value at a time) and stores `count` through a mask. Either masks only where it must: a masked store's
// value reaches a later load only once it has left for the cache, and out's columns are stored and loaded again
// block after block.
#if VELLUM_VNNI
struct Lanes {
  using V = __m512;
  static constexpr int width = 16;
  static constexpr bool masked = true;
  static constexpr int accumulators = 16;  // of 32 registers
  static __mmask16 mask(int count) { return static_cast<__mmask16>((1u << count) - 1); }
  static V load(const float* p, int count) {
    return count == width ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mask(count), p);
  }
  static V load(const uint16_t* p, int count) {
    const __m256i h = count == width ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                                     : _mm256_maskz_loadu_epi16(mask(count), p);
    return _mm512_cvtph_ps(h);
  }
  static void store(float* p, V v, int count) {
    if (count == width)
      _mm512_storeu_ps(p, v);
    else
      _mm512_mask_storeu_ps(p, mask(count), v);
  }
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
};
#else
struct Lanes {
  using V = __m256;
  static constexpr int width = 8;
  static constexpr bool masked = false;
  static constexpr int accumulators = 8;  // of 16 registers
  static V load(const float* p, int) { return _mm256_loadu_ps(p); }
  static V load(const uint16_t* p, int) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static void store(float* p, V v, int count) {
    if (count == width) {
      _mm256_storeu_ps(p, v);
    } else {
      const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
      _mm256_maskstore_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(count), lanes), v);
    }
  }
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
};
#endif

// Calls f(std::integral_constant<int, G>, g) for the heads [0, nq) in runs of G ≤ 8, G a compile-time constant.
template <class F>
void headRuns(int nq, F&& f) {
  for (int g = 0; g < nq; g += 8) {
    switch (std::min(8, nq - g)) {
      case 8: f(std::integral_constant<int, 8>{}, g); break;
      case 7: f(std::integral_constant<int, 7>{}, g); break;
      case 6: f(std::integral_constant<int, 6>{}, g); break;
      case 5: f(std::integral_constant<int, 5>{}, g); break;
      case 4: f(std::integral_constant<int, 4>{}, g); break;
      case 3: f(std::integral_constant<int, 3>{}, g); break;
      case 2: f(std::integral_constant<int, 2>{}, g); break;
      default: f(std::integral_constant<int, 1>{}, g); break;
    }
  }
}

// s[g · sStride + o] = scale · Σ_i q[g · qStride + i] · k[i · blockSize + o], G heads, o < count; accumulator a of
// a head sums the dimensions i ≡ a (mod A).
template <int G, class Elem>
void columnDots(const float* q, int64_t qStride, const Elem* k, int blockSize, int count, int hd, float scale,
                float* s, int64_t sStride) {
  using L = Lanes;
  constexpr int A = std::max(1, 8 / G);
  typename L::V acc[G][A];
  for (int g = 0; g < G; g++)
    for (int a = 0; a < A; a++) acc[g][a] = L::zero();
  const Elem* column = k;  // dimension i's
  int i = 0;
  for (; i + A <= hd; i += A)
    for (int a = 0; a < A; a++, column += blockSize) {
      const typename L::V c = L::load(column, count);
      for (int g = 0; g < G; g++) acc[g][a] = L::fma(L::set1(q[g * qStride + i + a]), c, acc[g][a]);
    }
  for (; i < hd; i++, column += blockSize) {
    const typename L::V c = L::load(column, count);
    for (int g = 0; g < G; g++) acc[g][0] = L::fma(L::set1(q[g * qStride + i]), c, acc[g][0]);
  }
  for (int g = 0; g < G; g++) {
    for (int a = 1; a < A; a++) acc[g][0] = L::add(acc[g][0], acc[g][a]);
    L::store(s + g * sStride, L::mul(acc[g][0], L::set1(scale)), count);
  }
}

// out[g · outStride + c] += Σ_{o < n} s[g · sStride + o] · rows[o · stride + c], G heads, W vectors of columns
// (c < (W − 1) · width + count: only the last may be partial); accumulator a of a head and vector sums the rows
// o ≡ a (mod A).
template <int G, int W, class Elem>
void rowAxpys(float* out, int64_t outStride, const float* s, int64_t sStride, const Elem* rows, int64_t stride,
              int n, int count) {
  using L = Lanes;
  constexpr int A = std::max(1, 8 / (G * W));
  auto lanes = [&](int w) { return w == W - 1 ? count : L::width; };
  typename L::V acc[G][W][A];
  for (int g = 0; g < G; g++)
    for (int w = 0; w < W; w++) {
      acc[g][w][0] = L::load(out + g * outStride + w * L::width, lanes(w));
      for (int a = 1; a < A; a++) acc[g][w][a] = L::zero();
    }
  auto addRow = [&](const Elem* row, int o, int a) {
    for (int w = 0; w < W; w++) {
      const typename L::V r = L::load(row + w * L::width, lanes(w));
      for (int g = 0; g < G; g++) acc[g][w][a] = L::fma(L::set1(s[g * sStride + o]), r, acc[g][w][a]);
    }
  };
  const Elem* row = rows;  // row o's
  int o = 0;
  for (; o + A <= n; o += A)
    for (int a = 0; a < A; a++, row += stride) addRow(row, o + a, a);
  for (; o < n; o++, row += stride) addRow(row, o, 0);
  for (int g = 0; g < G; g++)
    for (int w = 0; w < W; w++) {
      for (int a = 1; a < A; a++) acc[g][w][0] = L::add(acc[g][w][0], acc[g][w][a]);
      L::store(out + g * outStride + w * L::width, acc[g][w][0], lanes(w));
    }
}

struct AttentionBlocks {
  template <class Elem>
  static void dotColumns(const float* q, int64_t qStride, int nq, const Elem* k, int blockSize, int first, int n,
                         int hd, float scale, float* s, int64_t sStride) {
    for (int o = 0; o < n; o += Lanes::width) {
      if (!Lanes::masked && first + o + Lanes::width > blockSize) {
        // Full-width loads would leave the block: its last columns one at a time.
        for (int g = 0; g < nq; g++)
          for (int c = o; c < n; c++) {
            float sum = 0;
            for (int i = 0; i < hd; i++)
              sum += q[g * qStride + i] * widen1(k + static_cast<int64_t>(i) * blockSize + first + c);
            s[g * sStride + c] = sum * scale;
          }
        return;
      }
      const int count = std::min(Lanes::width, n - o);
      headRuns(nq, [&](auto heads, int g) {
        columnDots<decltype(heads)::value>(q + g * qStride, qStride, k + first + o, blockSize, count, hd, scale,
                                           s + g * sStride + o, sStride);
      });
    }
  }

  template <class Elem>
  static void axpyRows(float* out, int64_t outStride, int nq, const float* s, int64_t sStride, const Elem* rows,
                       int64_t stride, int n, int hd) {
    // Up to 4 vectors of columns at a time, as many as the heads leave accumulators for.
    headRuns(nq, [&](auto heads, int g) {
      constexpr int G = decltype(heads)::value;
      float* outG = out + g * outStride;
      const float* sG = s + g * sStride;
      int c = 0;
      auto vectors = [&](auto w) {
        constexpr int W = decltype(w)::value;
        for (; c + W * Lanes::width <= hd; c += W * Lanes::width)
          rowAxpys<G, W>(outG + c, outStride, sG, sStride, rows + c, stride, n, Lanes::width);
      };
      if constexpr (4 * G <= Lanes::accumulators) vectors(std::integral_constant<int, 4>{});
      if constexpr (2 * G <= Lanes::accumulators) vectors(std::integral_constant<int, 2>{});
      vectors(std::integral_constant<int, 1>{});
      if (c == hd) return;
      if constexpr (Lanes::masked) {
        rowAxpys<G, 1>(outG + c, outStride, sG, sStride, rows + c, stride, n, hd - c);
      } else {
        // The columns past the last full vector one at a time.
        for (int h = 0; h < G; h++)
          for (int i = c; i < hd; i++)
            for (int o = 0; o < n; o++)
              outG[h * outStride + i] += sG[h * sStride + o] * widen1(rows + o * stride + i);
      }
    });
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
