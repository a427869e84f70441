// The x86 SIMD kernels, 256 bits wide: AVX2 + FMA + F16C, compiled three times:
//   kernels-avx2.cc          VELLUM_VNNI 0: int8 dots as maddubs (u8·s8 pairs to int16) + madd (to int32)
//   kernels-avx512-vnni.cc   VELLUM_VNNI 1: the same loops with AVX-512 VNNI's vpdpbusd (u8·s8 quads to
//                            int32, accumulated) on 256-bit registers (AVX512VL), and interleaved int8
//                            weights 16 rows at a time on 512-bit registers (tile16)
//   kernels-avx512-bf16.cc   VELLUM_VNNI 1 and VELLUM_BF16 1: also bf16 weights through vdpbf16ps (tileBf16)
// Each .cc sets its target with a pragma before including this file; its code only runs when cpu-features.cc
// found those instructions at load. Everything here has internal linkage, once per including file.
//
// Matmul micro-kernel: a tile of R weight rows × TT tokens keeps R·TT accumulators in registers. Each
// weight block is loaded (and for q4_0 unpacked) once per tile and used for TT tokens; the R rows of the
// tile stay in L1 while the kernel walks over every token of the batch, so DRAM sees each weight once a step.
// A tile's rows are adjacent in memory, so while it works the kernel prefetches the next tile's rows at the
// same offset: R streams a tile ahead, which the hardware prefetcher alone does not keep up with at batch 1.
// Weights interleaved in 8-row groups (kernels.h) take tileX8 / tileQ4_Kx8 instead.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "attention-impl.h"
#include "kernels.h"

namespace vellum::backend {
namespace {

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

float halfToFloat(uint16_t h) { return _cvtsh_ss(h); }

// ---- quantized weights: int8 · int8 dot products per 32-block ----

// 32-value chunk c of a row: int8 values, a scale per lane of the 8 int32 partial sums (lanes 0–3 hold values
// 0–15, lanes 4–7 values 16–31, which is how q6_k's per-16 scales fit), and q4_k's min (value = q·scale − min).
struct Decoded {
  __m256i q;
  __m256 scale;
  float min;
};

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

template <DType T>
Decoded loadChunk(const uint8_t* row, int c) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  if constexpr (T == DType::Q8_0) {
    const uint8_t* p = row + c * sizeof(BlockQ8_0);
    return {load32(p + 2), _mm256_set1_ps(halfAt(p)), 0};
  } else if constexpr (T == DType::Q4_0) {
    const uint8_t* p = row + c * sizeof(BlockQ4_0);
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
    // Low nibbles are values 0..15, high nibbles 16..31; q is the raw nibble (tileQuantized applies the − 8).
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
    return {_mm256_and_si256(both, low4), _mm256_set1_ps(halfAt(p)), 0};
  } else if constexpr (T == DType::Q4_K) {
    const uint8_t* p = row + c / 8 * sizeof(BlockQ4_K);
    const int j = c % 8;
    int sc, m;
    scaleMinK4(p + 4, j, &sc, &m);
    const __m256i bytes = load32(p + 16 + j / 2 * 32);
    const __m256i q = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(bytes, 4) : bytes, low4);
    return {q, _mm256_set1_ps(halfAt(p) * sc), halfAt(p + 2) * m};
  } else {
    const uint8_t* p = row + c / 8 * sizeof(BlockQ6_K);
    const int n = c % 8 / 4;
    const int k = c % 4;
    const __m256i ql = load32(p + n * 64 + (k & 1) * 32);
    const __m256i low = _mm256_and_si256(k >= 2 ? _mm256_srli_epi16(ql, 4) : ql, low4);
    const __m256i qh = load32(p + 128 + n * 32);
    const __m256i high = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), _mm256_set1_epi8(3)), 4);
    const __m256i q = _mm256_sub_epi8(_mm256_or_si256(low, high), _mm256_set1_epi8(32));
    const int8_t* scales = reinterpret_cast<const int8_t*>(p + 192 + n * 8 + 2 * k);
    const float d = halfAt(p + 208);
    return {q, _mm256_set_m128(_mm_set1_ps(d * scales[1]), _mm_set1_ps(d * scales[0])), 0};
  }
}

// Bytes of weights the kernel reads per 32-value chunk `c` step (q4_k/q6_k: per 256-value block, over 8 chunks).
template <DType T>
constexpr int blockBytes() {
  if constexpr (T == DType::Q8_0) return sizeof(BlockQ8_0);
  if constexpr (T == DType::Q4_0) return sizeof(BlockQ4_0);
  if constexpr (T == DType::Q4_K) return sizeof(BlockQ4_K) / 8;
  return sizeof(BlockQ6_K) / 8;
}

// The same bytes of the next R-row tile (past the matrix's end, prefetch is a no-op: it never faults).
template <int R>
inline void prefetchNextTile(const uint8_t* row, size_t stride, int offset) {
  _mm_prefetch(reinterpret_cast<const char*>(row + R * stride + offset), _MM_HINT_T0);
}

// Activations 4k..4k+3 of a block, in every 32-bit lane.
inline __m256i group4(const BlockQ8Act& xb, int k) {
  int32_t v;
  std::memcpy(&v, xb.q + 4 * k, 4);
  return _mm256_set1_epi32(v);
}

// Lane r = Σ_k Σ_i byte 4r + i of q[k] (a nibble, 0..15) · activation 4k + i of xb: 8 interleaved rows' dots
// with one 32-value block. Without VNNI the 8 maddubs add up in int16 before one madd widens them (at most
// 8 · 2 · 15 · 127 = 30,480: no overflow).
inline __m256i nibbleDots(const __m256i q[8], const BlockQ8Act& xb) {
#if VELLUM_VNNI
  // Two accumulators: vpdpbusd's latency would otherwise chain all eight.
  __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
  for (int k = 0; k < 8; k += 2) {
    even = _mm256_dpbusd_epi32(even, q[k], group4(xb, k));
    odd = _mm256_dpbusd_epi32(odd, q[k + 1], group4(xb, k + 1));
  }
  return _mm256_add_epi32(even, odd);
#else
  __m256i sum16 = _mm256_maddubs_epi16(q[0], group4(xb, 0));
  for (int k = 1; k < 8; k++) sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(q[k], group4(xb, k)));
  return _mm256_madd_epi16(sum16, _mm256_set1_epi16(1));
#endif
}

// 8 int32 partial sums of w·x over one chunk. The dot wants an unsigned operand: |w| · (x with w's sign).
inline __m256i dotChunk(__m256i w, __m256i absW, __m256i x) {
  return dot4Add(_mm256_setzero_si256(), absW, _mm256_sign_epi8(x, w));
}

template <DType T, int R, int TT>
void tileQuantized(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  constexpr bool hasMin = T == DType::Q4_K;
  // 4-bit types arrive as unsigned nibbles, which maddubs takes as they are (no abs/sign per dot); q4_0's
  // value is (q − 8)·d, so 8 · Σx comes off each dot, lane by lane, in integers.
  constexpr bool nibbles = T == DType::Q4_0 || T == DType::Q4_K;
  constexpr bool offset8 = T == DType::Q4_0;
  const int nb = w.cols / kBlock;
  const size_t stride = rowBytes(T, w.cols);
  __m256 acc[R][TT];
  for (int r = 0; r < R; r++)
    for (int u = 0; u < TT; u++) acc[r][u] = _mm256_setzero_ps();
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * nb;
  for (int b = 0; b < nb; b++) {
    __m256i xq[TT];
    __m256 xd[TT];
    __m256 xsum[hasMin ? TT : 1];
    __m256i xsum8[offset8 ? TT : 1];
    for (int u = 0; u < TT; u++) {
      xq[u] = load32(reinterpret_cast<const uint8_t*>(xs[u][b].q));
      xd[u] = _mm256_broadcast_ss(&xs[u][b].d);
      if constexpr (hasMin || offset8) {  // partial sums of x, lane by lane as the dots'
        const __m256i sums = dot4Add(_mm256_setzero_si256(), _mm256_set1_epi8(1), xq[u]);
        if constexpr (hasMin) xsum[u] = _mm256_cvtepi32_ps(sums);
        if constexpr (offset8) xsum8[u] = _mm256_slli_epi32(sums, 3);
      }
    }
    for (int r = 0; r < R; r++) {
      prefetchNextTile<R>(w.data + stride * (o + r), stride, b * blockBytes<T>());
      const Decoded wb = loadChunk<T>(w.data + stride * (o + r), b);
      __m256i absW{};
      if constexpr (!nibbles) absW = _mm256_abs_epi8(wb.q);
      for (int u = 0; u < TT; u++) {
        __m256i dot;
        if constexpr (nibbles)
          dot = dot4Add(_mm256_setzero_si256(), wb.q, xq[u]);
        else
          dot = dotChunk(wb.q, absW, xq[u]);
        if constexpr (offset8) dot = _mm256_sub_epi32(dot, xsum8[u]);
        const __m256 sum = _mm256_cvtepi32_ps(dot);
        acc[r][u] = _mm256_fmadd_ps(sum, _mm256_mul_ps(wb.scale, xd[u]), acc[r][u]);
        if constexpr (hasMin)
          acc[r][u] = _mm256_fnmadd_ps(xsum[u], _mm256_mul_ps(_mm256_set1_ps(wb.min), xd[u]), acc[r][u]);
      }
    }
  }
  for (int r = 0; r < R; r++)
    for (int u = 0; u < TT; u++) y[static_cast<size_t>(t + u) * ldy + o + r] = hsum(acc[r][u]);
}

// ---- q8_0 and q4_0 in 8-row groups (kernels.h): one register holds 4 quants of each of the 8 rows ----

// 8 rows × TT tokens: acc[u] lane r = y[t + u, o + r]. A block's int32 dots for all 8 rows come out lane by
// lane against the token's broadcast 4-value groups, and one FMA scales all 8 rows:
// - q4_0: nibbleDots, ~2.5 vector ops per 32 MACs without VNNI;
// - q8_0: the dot wants an unsigned operand, so |w| (once per block, for all tokens) meets x with w's sign,
//   and without VNNI each maddubs is widened by a madd (two can overflow int16), ~4.5 ops per 32 MACs;
// where a row at a time needs ~6 per row and token.
template <DType T, int TT>
void tileX8(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  constexpr int kGroupBlock = 8 * (T == DType::Q8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0));  // 272, 144
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const int nb = w.cols / kBlock;
  const uint8_t* group = w.interleaved + static_cast<size_t>(o / 8) * nb * kGroupBlock;
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * nb;
  __m256 acc[TT];
  for (int u = 0; u < TT; u++) acc[u] = _mm256_setzero_ps();
  for (int b = 0; b < nb; b++) {
    const uint8_t* p = group + static_cast<size_t>(b) * kGroupBlock;
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    __m256i q[8];  // q[k]: quants 4k..4k+3 of every row (q8_0: their absolute values)
    for (int c = 0; c < 4; c++) {
      if constexpr (T == DType::Q8_0) {
        q[c] = _mm256_abs_epi8(load32(p + 16 + 32 * c));
        q[c + 4] = _mm256_abs_epi8(load32(p + 16 + 32 * (c + 4)));
      } else {
        const __m256i raw = load32(p + 16 + 32 * c);
        q[c] = _mm256_and_si256(raw, low4);
        q[c + 4] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
      }
    }
    for (int u = 0; u < TT; u++) {
      const BlockQ8Act& xb = xs[u][b];
      __m256i dot;
      if constexpr (T == DType::Q8_0) {
        __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();  // two chains of dot4Add
        for (int k = 0; k < 8; k += 2) {
          even = dot4Add(even, q[k], _mm256_sign_epi8(group4(xb, k), load32(p + 16 + 32 * k)));
          odd = dot4Add(odd, q[k + 1], _mm256_sign_epi8(group4(xb, k + 1), load32(p + 16 + 32 * (k + 1))));
        }
        dot = _mm256_add_epi32(even, odd);
      } else {
        dot = nibbleDots(q, xb);
        dot = _mm256_sub_epi32(dot, _mm256_set1_epi32(8 * blockSum(xb)));  // Σ (q − 8)·x = Σ q·x − 8 · Σ x
      }
      acc[u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(d, _mm256_set1_ps(xb.d)), acc[u]);
    }
  }
  for (int u = 0; u < TT; u++) _mm256_storeu_ps(y + static_cast<size_t>(t + u) * ldy + o, acc[u]);
}

// 8 bytes as 8 floats, unsigned or signed.
inline __m256 bytesAsFloats(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
inline __m256 signedBytesAsFloats(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

// q4_k, 8 rows × TT tokens, a 32-value sub-block at a time (nibbleDots, as q4_0); each row's sub-block scale
// d·sc and min dmin·m come as vectors of the 8 rows, value = d·sc·q − dmin·m.
template <int TT>
void tileQ4_Kx8(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const int superBlocks = w.cols / 256;
  const uint8_t* group = w.interleaved + static_cast<size_t>(o / 8) * superBlocks * kQ4_Kx8Bytes;
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * (w.cols / kBlock);
  __m256 acc[TT];
  for (int u = 0; u < TT; u++) acc[u] = _mm256_setzero_ps();
  for (int sb = 0; sb < superBlocks; sb++) {
    const uint8_t* p = group + static_cast<size_t>(sb) * kQ4_Kx8Bytes;
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
    for (int j = 0; j < 8; j++) {
      const __m256 scale = _mm256_mul_ps(d, bytesAsFloats(p + 32 + 8 * j));
      const __m256 min = _mm256_mul_ps(dmin, bytesAsFloats(p + 96 + 8 * j));
      const uint8_t* pair = p + 160 + 256 * (j / 2);
      __m256i q[8];  // q[k]: values 4k..4k+3 of sub-block j, every row
      for (int k = 0; k < 8; k++) {
        const __m256i raw = load32(pair + 32 * k);
        q[k] = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(raw, 4) : raw, low4);
      }
      for (int u = 0; u < TT; u++) {
        const BlockQ8Act& xb = xs[u][sb * 8 + j];
        const __m256 dot = _mm256_cvtepi32_ps(nibbleDots(q, xb));
        const __m256 xd = _mm256_set1_ps(xb.d);
        acc[u] = _mm256_fmadd_ps(dot, _mm256_mul_ps(scale, xd), acc[u]);
        acc[u] = _mm256_fnmadd_ps(min, _mm256_set1_ps(static_cast<float>(blockSum(xb)) * xb.d), acc[u]);
      }
    }
  }
  for (int u = 0; u < TT; u++) _mm256_storeu_ps(y + static_cast<size_t>(t + u) * ldy + o, acc[u]);
}

// Lane r = Σ_{k < 4} Σ_i byte 4r + i of q[k] (0..63) · activation 4(g0 + k) + i of xb: 8 interleaved rows' dots
// with 16 values. Without VNNI two maddubs add up in int16 (at most 2 · 2 · 63 · 127 = 32,004) per madd.
inline __m256i sixBitDots(const __m256i q[4], const BlockQ8Act& xb, int g0) {
#if VELLUM_VNNI
  const __m256i even = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), q[0], group4(xb, g0)), q[2],
                                           group4(xb, g0 + 2));
  const __m256i odd = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), q[1], group4(xb, g0 + 1)), q[3],
                                          group4(xb, g0 + 3));
  return _mm256_add_epi32(even, odd);
#else
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i a = _mm256_add_epi16(_mm256_maddubs_epi16(q[0], group4(xb, g0)),
                                     _mm256_maddubs_epi16(q[1], group4(xb, g0 + 1)));
  const __m256i b = _mm256_add_epi16(_mm256_maddubs_epi16(q[2], group4(xb, g0 + 2)),
                                     _mm256_maddubs_epi16(q[3], group4(xb, g0 + 3)));
  return _mm256_add_epi32(_mm256_madd_epi16(a, ones16), _mm256_madd_epi16(b, ones16));
#endif
}

// q6_k, 8 rows × TT tokens, a 32-value chunk c = 4n + k of each super-block at a time: its 6-bit quants (4 bits
// of ql, 2 of qh, as ggml's dequantize_row_q6_K places them) are assembled once for all tokens; each 16-value
// half has its own scale per row, value = d · scale · (q − 32).
template <int TT>
void tileQ6_Kx8(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  constexpr int kGroupBlock = 8 * sizeof(BlockQ6_K);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i low2 = _mm256_set1_epi8(0x03);
  const int superBlocks = w.cols / 256;
  const uint8_t* group = w.interleaved + static_cast<size_t>(o / 8) * superBlocks * kGroupBlock;
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * (w.cols / kBlock);
  __m256 acc[TT];
  for (int u = 0; u < TT; u++) acc[u] = _mm256_setzero_ps();
  for (int sb = 0; sb < superBlocks; sb++) {
    const uint8_t* p = group + static_cast<size_t>(sb) * kGroupBlock;
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    for (int c = 0; c < 8; c++) {
      const int n = c / 4, k = c % 4;
      // d · the 8 rows' int8 scales of the chunk's two sub-blocks
      const __m256 scaleLow = _mm256_mul_ps(d, signedBytesAsFloats(p + 16 + 8 * (8 * n + 2 * k)));
      const __m256 scaleHigh = _mm256_mul_ps(d, signedBytesAsFloats(p + 16 + 8 * (8 * n + 2 * k + 1)));
      const uint8_t* ql = p + 144 + 256 * (2 * n + k % 2);
      const uint8_t* qh = p + 1168 + 256 * n;
      __m256i q[8];  // q[g]: values 4g..4g+3 of the chunk, every row
      for (int g = 0; g < 8; g++) {
        const __m256i l = load32(ql + 32 * g);
        const __m256i low = _mm256_and_si256(k < 2 ? l : _mm256_srli_epi16(l, 4), low4);
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(load32(qh + 32 * g), 2 * k), low2);
        q[g] = _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
      }
      for (int u = 0; u < TT; u++) {
        const BlockQ8Act& xb = xs[u][sb * 8 + c];
        const __m256 xd = _mm256_set1_ps(xb.d);
        // Σ (q − 32)·x = Σ q·x − 32 · Σ x, per 16-value half
        const __m256i low = _mm256_sub_epi32(sixBitDots(q, xb, 0), _mm256_set1_epi32(32 * xb.halfSums[0]));
        const __m256i high = _mm256_sub_epi32(sixBitDots(q + 4, xb, 4), _mm256_set1_epi32(32 * xb.halfSums[1]));
        acc[u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(low), _mm256_mul_ps(scaleLow, xd), acc[u]);
        acc[u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(high), _mm256_mul_ps(scaleHigh, xd), acc[u]);
      }
    }
  }
  for (int u = 0; u < TT; u++) _mm256_storeu_ps(y + static_cast<size_t>(t + u) * ldy + o, acc[u]);
}

template <DType T, int TT>
void tile8(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  if constexpr (T == DType::Q4_K)
    tileQ4_Kx8<TT>(w, x, y, ldy, o, t);
  else if constexpr (T == DType::Q6_K)
    tileQ6_Kx8<TT>(w, x, y, ldy, o, t);
  else
    tileX8<T, TT>(w, x, y, ldy, o, t);
}

#if VELLUM_VNNI
// ---- with AVX-512: two adjacent 8-row groups at once on 512-bit registers (lanes 0–7, 8–15) ----

// 32 bytes at a (lanes' bytes 0–31) and b (32–63).
inline __m512i load2x32(const uint8_t* a, const uint8_t* b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(load32(a)), load32(b), 1);
}
// 8 f16 at a and 8 at b as 16 floats.
inline __m512 halves2x8(const uint8_t* a, const uint8_t* b) {
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
  return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1));
}
// 8 unsigned bytes at a and 8 at b as 16 floats.
inline __m512 bytes2x8(const uint8_t* a, const uint8_t* b) {
  const __m128i lo = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(a));
  const __m128i hi = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b));
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi64(lo, hi)));
}
inline __m512i group4x16(const BlockQ8Act& xb, int k) {
  int32_t v;
  std::memcpy(&v, xb.q + 4 * k, 4);
  return _mm512_set1_epi32(v);
}

// tileX8 and tileQ4_Kx8 for rows o..o+15 (groups o / 8 and o / 8 + 1): acc[u] lane r = y[t + u, o + r].
// q8_0's sign trick has no 512-bit sign instruction: x is negated under a mask of w's negative bytes.
template <DType T, int TT>
void tile16(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const int nb = w.cols / blockValues(T);  // blocks (q4_k: super-blocks) per row
  const size_t groupBlock = interleavedGroupBlockBytes(T);
  const uint8_t* g0 = w.interleaved + static_cast<size_t>(o / 8) * nb * groupBlock;
  const uint8_t* g1 = g0 + nb * groupBlock;
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * (w.cols / kBlock);
  __m512 acc[TT];
  for (int u = 0; u < TT; u++) acc[u] = _mm512_setzero_ps();
  for (int b = 0; b < nb; b++) {
    const uint8_t* p0 = g0 + static_cast<size_t>(b) * groupBlock;
    const uint8_t* p1 = g1 + static_cast<size_t>(b) * groupBlock;
    const __m512 d = halves2x8(p0, p1);
    if constexpr (T == DType::Q4_K) {
      const __m512 dmin = halves2x8(p0 + 16, p1 + 16);
      for (int j = 0; j < 8; j++) {
        const __m512 scale = _mm512_mul_ps(d, bytes2x8(p0 + 32 + 8 * j, p1 + 32 + 8 * j));
        const __m512 min = _mm512_mul_ps(dmin, bytes2x8(p0 + 96 + 8 * j, p1 + 96 + 8 * j));
        const int pair = 160 + 256 * (j / 2);
        __m512i q[8];
        for (int k = 0; k < 8; k++) {
          const __m512i raw = load2x32(p0 + pair + 32 * k, p1 + pair + 32 * k);
          q[k] = _mm512_and_si512(j % 2 ? _mm512_srli_epi16(raw, 4) : raw, low4);
        }
        for (int u = 0; u < TT; u++) {
          const BlockQ8Act& xb = xs[u][b * 8 + j];
          __m512i even = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
          for (int k = 0; k < 8; k += 2) {
            even = _mm512_dpbusd_epi32(even, q[k], group4x16(xb, k));
            odd = _mm512_dpbusd_epi32(odd, q[k + 1], group4x16(xb, k + 1));
          }
          const __m512i dot = _mm512_add_epi32(even, odd);
          const __m512 xd = _mm512_set1_ps(xb.d);
          acc[u] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(scale, xd), acc[u]);
          acc[u] = _mm512_fnmadd_ps(min, _mm512_set1_ps(static_cast<float>(blockSum(xb)) * xb.d), acc[u]);
        }
      }
      continue;
    }
    __m512i q[8];  // q[k]: quants 4k..4k+3 of every row (q8_0: their absolute values)
    __mmask64 negative[8];  // q8_0: w's negative bytes
    for (int c = 0; c < 4; c++) {
      if constexpr (T == DType::Q8_0) {
        for (int h = 0; h < 2; h++) {
          const __m512i raw = load2x32(p0 + 16 + 32 * (c + 4 * h), p1 + 16 + 32 * (c + 4 * h));
          q[c + 4 * h] = _mm512_abs_epi8(raw);
          negative[c + 4 * h] = _mm512_movepi8_mask(raw);
        }
      } else {
        const __m512i raw = load2x32(p0 + 16 + 32 * c, p1 + 16 + 32 * c);
        q[c] = _mm512_and_si512(raw, low4);
        q[c + 4] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
      }
    }
    for (int u = 0; u < TT; u++) {
      const BlockQ8Act& xb = xs[u][b];
      __m512i chains[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};  // vpdpbusd's latency, halved
      for (int k = 0; k < 8; k++) {
        __m512i xk = group4x16(xb, k);
        if constexpr (T == DType::Q8_0) xk = _mm512_mask_sub_epi8(xk, negative[k], _mm512_setzero_si512(), xk);
        chains[k % 2] = _mm512_dpbusd_epi32(chains[k % 2], q[k], xk);
      }
      __m512i dot = _mm512_add_epi32(chains[0], chains[1]);
      if constexpr (T == DType::Q4_0) dot = _mm512_sub_epi32(dot, _mm512_set1_epi32(8 * blockSum(xb)));
      acc[u] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(d, _mm512_set1_ps(xb.d)), acc[u]);
    }
  }
  for (int u = 0; u < TT; u++) _mm512_storeu_ps(y + static_cast<size_t>(t + u) * ldy + o, acc[u]);
}
#endif

// Rows [o, rowEnd) from 8-row groups, as far as whole groups go; returns the first row left. With AVX-512, pairs
// of groups (not q6_k's) go through tile16.
template <DType T>
int matmulX8(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int rowEnd) {
  constexpr int kTokens = 3;
#if VELLUM_VNNI
  if constexpr (T != DType::Q6_K)
    for (; o + 16 <= rowEnd; o += 16) {
      constexpr int kWideTokens = 4;
      int t = 0;
      for (; t + kWideTokens <= x.T; t += kWideTokens) tile16<T, kWideTokens>(w, x, y, ldy, o, t);
      for (; t < x.T; t++) tile16<T, 1>(w, x, y, ldy, o, t);
    }
#endif
  for (; o + 8 <= rowEnd; o += 8) {
    int t = 0;
    for (; t + kTokens <= x.T; t += kTokens) tile8<T, kTokens>(w, x, y, ldy, o, t);
    for (; t < x.T; t++) tile8<T, 1>(w, x, y, ldy, o, t);
  }
  return o;
}

// ---- float weights (f32, f16, bf16) against f32 activations ----

template <DType T>
__m256 load8(const uint8_t* row, int i) {
  if constexpr (T == DType::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i);
  } else if constexpr (T == DType::F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
  } else {
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
  }
}

template <DType T>
float load1(const uint8_t* row, int i) {
  if constexpr (T == DType::F32) {
    float v;
    std::memcpy(&v, row + 4 * i, 4);
    return v;
  } else {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, 2);
    if constexpr (T == DType::F16) return halfToFloat(h);
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
  }
}

template <DType T, int R, int TT>
void tileFloat(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  const int n = w.cols;
  const size_t stride = rowBytes(T, n);
  __m256 acc[R][TT];
  for (int r = 0; r < R; r++)
    for (int u = 0; u < TT; u++) acc[r][u] = _mm256_setzero_ps();
  const float* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.f32 + static_cast<size_t>(t + u) * n;
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 xv[TT];
    for (int u = 0; u < TT; u++) xv[u] = _mm256_loadu_ps(xs[u] + i);
    for (int r = 0; r < R; r++) {
      prefetchNextTile<R>(w.data + stride * (o + r), stride, i * (T == DType::F32 ? 4 : 2));
      const __m256 wv = load8<T>(w.data + stride * (o + r), i);
      for (int u = 0; u < TT; u++) acc[r][u] = _mm256_fmadd_ps(wv, xv[u], acc[r][u]);
    }
  }
  for (int r = 0; r < R; r++) {
    const uint8_t* row = w.data + stride * (o + r);
    for (int u = 0; u < TT; u++) {
      float sum = hsum(acc[r][u]);
      for (int k = i; k < n; k++) sum += load1<T>(row, k) * xs[u][k];
      y[static_cast<size_t>(t + u) * ldy + o + r] = sum;
    }
  }
}

// Rows in tiles of kRowTile (then 1), tokens in tiles of kTokenTile (then 1): every row tile walks the batch.
// A single token (decode) is bandwidth-bound instead: tiles of kDecodeRowTile rows keep more of the weight
// stream in flight (registers allow it, with one accumulator per row).
constexpr int kRowTile = 4;
constexpr int kTokenTile = 3;
constexpr int kDecodeRowTile = 8;

#if VELLUM_BF16
// bf16 weights × activations rounded to bf16 (nearest-even): AVX512_BF16's vdpbf16ps does 32 products per
// instruction with f32 sums, where widening to f32 and FMA does 8. The activations' rounding (relative 2⁻⁹) is
// the price, as in llama.cpp.
template <int R, int TT>
void tileBf16(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  const int n = w.cols;
  const size_t stride = rowBytes(DType::BF16, n);
  __m512 acc[R][TT];
  for (int r = 0; r < R; r++)
    for (int u = 0; u < TT; u++) acc[r][u] = _mm512_setzero_ps();
  const float* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.f32 + static_cast<size_t>(t + u) * n;
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512bh xv[TT];
    for (int u = 0; u < TT; u++) xv[u] = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(xs[u] + i + 16), _mm512_loadu_ps(xs[u] + i));
    for (int r = 0; r < R; r++) {
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(w.data + stride * (o + r) + 2 * i);
      for (int u = 0; u < TT; u++) acc[r][u] = _mm512_dpbf16_ps(acc[r][u], wv, xv[u]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int u = 0; u < TT; u++) {
      float sum = _mm512_reduce_add_ps(acc[r][u]);
      for (int k = i; k < n; k++) sum += load1<DType::BF16>(w.data + stride * (o + r), k) * xs[u][k];
      y[static_cast<size_t>(t + u) * ldy + o + r] = sum;
    }
}
#endif

// R rows × TT tokens of a weight stored as T.
template <DType T, int R, int TT>
void tile(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  if constexpr (T >= DType::Q8_0)
    tileQuantized<T, R, TT>(w, x, y, ldy, o, t);
#if VELLUM_BF16
  else if constexpr (T == DType::BF16)
    tileBf16<R, TT>(w, x, y, ldy, o, t);
#endif
  else
    tileFloat<T, R, TT>(w, x, y, ldy, o, t);
}

template <DType T, int R>
void rowTile(const Weight& w, const MatmulInput& x, float* y, int ldy, int o) {
  int t = 0;
  for (; t + kTokenTile <= x.T; t += kTokenTile) tile<T, R, kTokenTile>(w, x, y, ldy, o, t);
  for (; t < x.T; t++) tile<T, R, 1>(w, x, y, ldy, o, t);
}

template <DType T>
void matmulTyped(const Weight& w, const MatmulInput& x, float* y, int ldy, int rowBegin, int rowEnd) {
  int o = rowBegin;
  if constexpr (T >= DType::Q8_0)
    if (w.interleaved && o % 8 == 0) o = matmulX8<T>(w, x, y, ldy, o, rowEnd);
  if (x.T == 1)
    for (; o + kDecodeRowTile <= rowEnd; o += kDecodeRowTile) rowTile<T, kDecodeRowTile>(w, x, y, ldy, o);
  for (; o + kRowTile <= rowEnd; o += kRowTile) rowTile<T, kRowTile>(w, x, y, ldy, o);
  for (; o < rowEnd; o++) rowTile<T, 1>(w, x, y, ldy, o);
}

void matmul(const Weight& w, const MatmulInput& x, float* y, int ldy, int rowBegin, int rowEnd) {
  switch (w.dtype) {
    case DType::F32:
      return matmulTyped<DType::F32>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::F16:
      return matmulTyped<DType::F16>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::BF16:
      return matmulTyped<DType::BF16>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::Q8_0:
      return matmulTyped<DType::Q8_0>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::Q4_0:
      return matmulTyped<DType::Q4_0>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::Q4_K:
      return matmulTyped<DType::Q4_K>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::Q6_K:
      return matmulTyped<DType::Q6_K>(w, x, y, ldy, rowBegin, rowEnd);
  }
}

// ---- attention over the KV cache: f32 rows, or f16 rows widened with F16C as they are read ----

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

// s[o] = scale · q·rows[o]: eight rows at a time share each load of q, and one transposing sum (sum8)
// replaces eight horizontal ones.
template <class Elem>
void dotRows(const float* q, const Elem* rows, int64_t stride, int n, int hd, float scale, float* s) {
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

// out += Σ_o s[o] · rows[o], 64 columns at a time (8 registers), the tail of hd mod 8 one value at a time.
template <class Elem>
void axpyRows(float* out, const float* s, const Elem* rows, int64_t stride, int n, int hd) {
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

// s[0, n) ← softmax(s[0, n)).
void softmax(float* s, int n) {
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

void attention(const AttentionArgs& a, int64_t begin, int64_t end, float* scores) {
  if (a.kvDtype == KvDtype::F16)
    attentionLoop<uint16_t, dotRows<uint16_t>, axpyRows<uint16_t>, softmax>(a, begin, end, scores);
  else
    attentionLoop<float, dotRows<float>, axpyRows<float>, softmax>(a, begin, end, scores);
}

void storeKv(const float* x, int n, KvDtype dtype, void* out) {
  if (dtype == KvDtype::F32) {
    std::memcpy(out, x, sizeof(float) * n);
    return;
  }
  uint16_t* h = static_cast<uint16_t*>(out);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i rounded = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(h + i), rounded);
  }
  for (; i < n; i++) h[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
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

bool interleaves(DType t) { return isQuantized(t); }

}  // namespace
}  // namespace vellum::backend
